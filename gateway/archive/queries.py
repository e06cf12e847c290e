"""The archive's statements: each function is one transaction's work on a sync Connection.

``ArchiveStore`` runs them through a ``gateway.archive.connections.Transactions``; they never
update or delete a record.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Final, TypeVar

from sqlalchemy import ColumnElement, any_, bindparam, or_, select, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Connection
from sqlalchemy.types import String

from gateway.archive.linking import link
from gateway.archive.records import Appended, Entry, Record, clean_text
from gateway.archive.rows import BatchInserts, record_of
from gateway.archive.schema import HEAD_ID, claims, head, records
from gateway.archive.search import SearchFilter

Clock = Callable[[], datetime]
T = TypeVar("T")

# Bounded so that an IN list stays well inside every backend's parameter limit.
KEY_CHUNK: Final = 1000
# Below SQLite's default limit of host parameters in one statement, with room to spare.
SEQ_CHUNK: Final = 900


# Built once: constructing a statement and its cache key cost more than SQLite running it.
_HEAD = select(head.c.seq, head.c.hash, head.c.recorded_at).where(head.c.id == HEAD_ID)
# Serialising appenders on PostgreSQL: a row lock on the head row rather than
# pg_advisory_xact_lock. The lock and the read of the tail are one statement (one round trip
# per batch), it is tied to the data it protects instead of to a magic number in a
# database-wide namespace, and under READ COMMITTED every later statement of the transaction
# sees what the previous holder committed, so the claims lookup is current. SQLite needs
# nothing: BEGIN IMMEDIATE.
_HEAD_LOCKED = _HEAD.with_for_update()
_MOVE_HEAD = (
    update(head)
    .where(head.c.id == HEAD_ID)
    .values(seq=bindparam("new_seq"), hash=bindparam("new_hash"), recorded_at=bindparam("at"))
)
_CLAIMED = select(claims.c.dedup_key, records).join(records, records.c.seq == claims.c.seq)
_CLAIMED_SQLITE = _CLAIMED.where(claims.c.dedup_key.in_(bindparam("keys", expanding=True)))
# One array parameter on PostgreSQL, so batches of any size share one prepared statement.
_CLAIMED_ARRAY = _CLAIMED.where(claims.c.dedup_key == any_(bindparam("keys", type_=ARRAY(String))))
_BY_SEQ = select(records).where(records.c.seq == bindparam("seq"))
_AT_SEQS = select(records).where(records.c.seq.in_(bindparam("seqs", expanding=True)))


def chunks(values: Sequence[T], size: int = KEY_CHUNK) -> Iterable[Sequence[T]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def append(
    conn: Connection, entries: Sequence[Entry], inserts: BatchInserts, clock: Clock
) -> list[Appended]:
    """Append ``entries`` after the chain's tail (see ``ArchiveStore.append``)."""
    seq, prev_hash, last_time = _lock_head(conn)
    keys = list({e.dedup_key for e in entries if e.dedup_key is not None})
    # The archive's clock never goes backwards along the chain, even across replicas whose
    # clocks disagree: time ranges then map to contiguous seq ranges.
    now = clock().astimezone(UTC)
    recorded_at = now if last_time is None else max(now, last_time)
    linked = link(
        entries,
        seq=seq,
        prev_hash=prev_hash,
        recorded_at=recorded_at,
        claimed=claimed(conn, keys),
    )
    inserts.run(conn, linked.records, linked.new_claims)
    conn.execute(_MOVE_HEAD, {"new_seq": linked.seq, "new_hash": linked.hash, "at": recorded_at})
    return linked.appended


def _lock_head(conn: Connection) -> tuple[int, str, datetime | None]:
    row = conn.execute(_HEAD if conn.dialect.name == "sqlite" else _HEAD_LOCKED).one()
    return int(row.seq), str(row.hash), row.recorded_at


def claimed(conn: Connection, keys: Sequence[str]) -> dict[str, Record]:
    """The claiming record of each of ``keys`` that is claimed (keys already cleaned)."""
    query = _CLAIMED_SQLITE if conn.dialect.name == "sqlite" else _CLAIMED_ARRAY
    found: dict[str, Record] = {}
    for chunk in chunks(keys):
        for row in conn.execute(query, {"keys": list(chunk)}):
            found[row.dedup_key] = record_of(row)
    return found


def get(conn: Connection, seq: int) -> Record | None:
    row = conn.execute(_BY_SEQ, {"seq": seq}).first()
    return None if row is None else record_of(row)


def records_at(conn: Connection, seqs: Sequence[int]) -> dict[int, Record]:
    """The records of ``seqs`` that exist, by seq: a replay names thousands of records, and
    reading them one query each cost a control request more than deciding it."""
    found: dict[int, Record] = {}
    for chunk in chunks(sorted(set(seqs)), SEQ_CHUNK):
        rows = conn.execute(_AT_SEQS, {"seqs": list(chunk)})
        found.update((r.seq, r) for r in map(record_of, rows))
    return found


def hash_at(conn: Connection, seq: int) -> str | None:
    found = conn.execute(select(records.c.hash).where(records.c.seq == seq)).scalar()
    return None if found is None else str(found)


def history(conn: Connection, key: str) -> list[Record]:
    """Records whose message_id or envelope_id is ``key``, and those referring to them."""
    direct = [
        record_of(row)
        for row in conn.execute(
            select(records).where(or_(records.c.message_id == key, records.c.envelope_id == key))
        )
    ]
    # Two indexed queries rather than one OR with a sub-select, which PostgreSQL can only
    # answer by scanning the whole table.
    found = {r.seq: r for r in direct}
    for chunk in chunks([r.seq for r in direct]):
        rows = conn.execute(select(records).where(records.c.refers_to.in_(chunk)))
        found.update((r.seq, r) for r in map(record_of, rows))
    return [found[seq] for seq in sorted(found)]


def search(conn: Connection, f: SearchFilter, limit: int | None) -> list[Record]:
    """Records matching ``f`` in seq order, at most ``limit`` of them."""
    conditions: list[ColumnElement[bool]] = []
    if f.after_seq:
        conditions.append(records.c.seq > f.after_seq)
    if f.since is not None:
        conditions.append(records.c.recorded_at >= f.since)
    if f.until is not None:
        conditions.append(records.c.recorded_at < f.until)
    for column, values in (
        (records.c.kind, f.kinds),
        (records.c.type, f.types),
        (records.c.outcome, f.outcomes),
        (records.c.envelope_id, f.envelope_ids),
        (records.c.message_id, f.message_ids),
    ):
        if values:
            conditions.append(column.in_([clean_text(v) for v in values]))
    for column, value in (
        (records.c.provider, f.provider),
        (records.c.recipient, f.recipient),
        (records.c.correlation_id, f.correlation_id),
    ):
        if value is not None:
            conditions.append(column == clean_text(value))
    query = select(records).where(*conditions).order_by(records.c.seq)
    if limit is not None:
        query = query.limit(limit)
    return [record_of(row) for row in conn.execute(query)]


def page(conn: Connection, after_seq: int, size: int) -> list[Record]:
    """Up to ``size`` records after ``after_seq``, in seq order."""
    query = select(records).where(records.c.seq > after_seq).order_by(records.c.seq).limit(size)
    return [record_of(row) for row in conn.execute(query)]


def head_of(conn: Connection) -> tuple[int, str]:
    row = conn.execute(select(head.c.seq, head.c.hash).where(head.c.id == HEAD_ID)).one()
    return int(row.seq), str(row.hash)


def first_seq_at(conn: Connection, instant: datetime) -> int:
    found = conn.execute(
        select(records.c.seq)
        .where(records.c.recorded_at >= instant)
        .order_by(records.c.seq)
        .limit(1)
    ).scalar()
    if found is not None:
        return int(found)
    last = conn.execute(select(head.c.seq).where(head.c.id == HEAD_ID)).scalar()
    return int(last or 0) + 1
