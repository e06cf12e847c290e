"""Archive records as table rows and back, and the batch insert as one prepared statement.

SQLAlchemy's ``execute(insert(table), [dict, ...])`` builds and converts a parameter dict per
row through its generic machinery, which cost the append path more than SQLite's own insert.
A batch here is one driver-level ``executemany`` of the statement compiled once per store,
with the rows as tuples and only the columns whose type converts values (the timestamps)
converted, by the same bind processors SQLAlchemy would use: the stored values are the same.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import orjson
from sqlalchemy import Row, Table, insert
from sqlalchemy.engine import Connection, Dialect

from gateway.archive.records import Record
from gateway.archive.schema import claims, records


def _json_list(values: Sequence[Any]) -> str:
    # orjson: compact and unescaped like json.dumps(ensure_ascii=False), several times faster;
    # Entry has already replaced the lone surrogates it would refuse.
    return orjson.dumps(values).decode()


def record_row(record: Record) -> tuple[Any, ...]:
    """``record``'s values in the column order of ``archive_records``."""
    return (
        record.seq,
        record.recorded_at,
        record.prev_hash,
        record.hash,
        record.kind,
        record.outcome,
        record.occurred_at,
        record.payload,
        record.message_id,
        record.system,
        record.envelope_id,
        record.type,
        record.provider,
        record.recipient,
        record.correlation_id,
        record.reason,
        record.detail,
        record.signature,
        record.dedup_key,
        record.refers_to,
        _json_list(record.derived_from),
        _json_list(record.attachment_sha256),
        _json_list(record.headers),
    )


RECORD_COLUMNS: tuple[str, ...] = (
    "seq",
    "recorded_at",
    "prev_hash",
    "hash",
    "kind",
    "outcome",
    "occurred_at",
    "payload",
    "message_id",
    "system",
    "envelope_id",
    "type",
    "provider",
    "recipient",
    "correlation_id",
    "reason",
    "detail",
    "signature",
    "dedup_key",
    "refers_to",
    "derived_from",
    "attachment_sha256",
    "headers",
)
"""The order of :func:`record_row`'s values."""


def row_values(record: Record) -> dict[str, Any]:
    """``record``'s values by column name, for SQLAlchemy statements."""
    return dict(zip(RECORD_COLUMNS, record_row(record), strict=True))


def record_of(row: Row[Any]) -> Record:
    """The record a row of ``archive_records`` (selected with SQLAlchemy) holds."""
    m = row._mapping
    return Record(
        seq=m["seq"],
        recorded_at=m["recorded_at"],
        prev_hash=m["prev_hash"],
        hash=m["hash"],
        kind=m["kind"],
        outcome=m["outcome"],
        occurred_at=m["occurred_at"],
        payload=m["payload"],
        message_id=m["message_id"],
        system=m["system"],
        envelope_id=m["envelope_id"],
        type=m["type"],
        provider=m["provider"],
        recipient=m["recipient"],
        correlation_id=m["correlation_id"],
        reason=m["reason"],
        detail=m["detail"],
        signature=m["signature"],
        dedup_key=m["dedup_key"],
        refers_to=m["refers_to"],
        derived_from=tuple(orjson.loads(m["derived_from"])),
        attachment_sha256=tuple(orjson.loads(m["attachment_sha256"])),
        headers=tuple((k, v) for k, v in orjson.loads(m["headers"])),
    )


class PreparedInsert:
    """``INSERT INTO table (every column) VALUES (...)`` for one dialect, run with tuples."""

    def __init__(self, table: Table, columns: Sequence[str], dialect: Dialect) -> None:
        compiled = insert(table).compile(dialect=dialect)
        if list(compiled.positiontup or ()) != list(columns):
            raise ValueError(f"{table.name}: columns {columns} are not the compiled order")
        self._sql = compiled.string
        self._convert: list[tuple[int, Callable[[Any], Any]]] = []
        for index, name in enumerate(columns):
            column_type = table.c[name].type.dialect_impl(dialect)
            processor = column_type.bind_processor(dialect)
            if processor is not None:
                self._convert.append((index, processor))

    def run(self, conn: Connection, rows: Iterable[Sequence[Any]]) -> None:
        # The records of a batch share their timestamps: each is converted once.
        done: dict[tuple[int, Any], Any] = {}
        converted = []
        for row in rows:
            values = list(row)
            for index, processor in self._convert:
                value = values[index]
                key = (index, value)
                if key not in done:
                    done[key] = processor(value)
                values[index] = done[key]
            converted.append(tuple(values))
        if converted:
            conn.exec_driver_sql(self._sql, converted)


class BatchInserts:
    """The two inserts of an append: its records and the keys they claim."""

    def __init__(self, dialect: Dialect) -> None:
        self._records = PreparedInsert(records, RECORD_COLUMNS, dialect)
        self._claims = PreparedInsert(claims, ("dedup_key", "seq"), dialect)

    def run(
        self,
        conn: Connection,
        batch: Iterable[Record],
        new_claims: Sequence[tuple[str, int]],
    ) -> None:
        self._records.run(conn, map(record_row, batch))
        self._claims.run(conn, new_claims)
