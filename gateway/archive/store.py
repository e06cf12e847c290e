"""The archive store: one SQLAlchemy Core (async) implementation for SQLite and PostgreSQL.

SQLite (aiosqlite, WAL, a file per Party) is the embedded default with a single writer;
PostgreSQL (asyncpg) lets several gateway replicas share one archive. Either way the archive
is append-only: this module never updates or deletes a record.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import structlog
from sqlalchemy import (
    ColumnElement,
    any_,
    bindparam,
    event,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry
from sqlalchemy.types import String

from gateway.archive.chain import GENESIS
from gateway.archive.linking import link
from gateway.archive.migrations import migrate
from gateway.archive.records import Appended, Entry, Record, clean_text
from gateway.archive.rows import BatchInserts, record_of
from gateway.archive.schema import HEAD_ID, claims, head, records
from gateway.files import private_database

log = structlog.get_logger(__name__)

Clock = Callable[[], datetime]

_SQLITE_BUSY_TIMEOUT_MS = 30_000
# Bounded so that an IN list stays well inside every backend's parameter limit.
_KEY_CHUNK = 1000
_WRITE_OPTION = "archive_write"


@dataclass(frozen=True)
class SearchFilter:
    """Conditions that must all hold; an empty sequence or None means "any".

    ``since`` (inclusive) and ``until`` (exclusive) bound ``recorded_at``, the archive's own
    clock, which never goes backwards along the chain: a time range is a contiguous seq range.
    """

    since: datetime | None = None
    until: datetime | None = None
    kinds: Sequence[str] = ()
    types: Sequence[str] = ()
    provider: str | None = None
    recipient: str | None = None
    correlation_id: str | None = None
    outcomes: Sequence[str] = ()
    envelope_ids: Sequence[str] = ()
    message_ids: Sequence[str] = ()
    after_seq: int = 0  # only records after this one: a reader pages through with it


def _chunks(values: Sequence[str], size: int = _KEY_CHUNK) -> Iterable[Sequence[str]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _sqlite_on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
    # Take transaction control away from the driver, so that _sqlite_on_begin decides how each
    # transaction begins (the documented SQLAlchemy recipe for aiosqlite).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    # First: switching to WAL needs a lock, and a replica opening the same file at the same
    # moment must make this one wait, not fail with "database is locked".
    cursor.execute(f"PRAGMA busy_timeout={_SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA journal_mode=WAL")
    # FULL: a commit is on disk before append returns, which is what allows the ack.
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.close()


def _sqlite_on_begin(conn: Connection) -> None:
    # IMMEDIATE takes the write lock up front: the chain tail read at the start of an append
    # cannot change before it commits, and there is no deferred-lock upgrade deadlock.
    immediate = conn.get_execution_options().get(_WRITE_OPTION, False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def async_url(url: str) -> URL:
    """The async-driver URL for an archive URL (``sqlite:///path`` or ``postgresql://...``)."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        database = parsed.database
        if not database or database == ":memory:":
            raise ValueError("a SQLite archive needs a file path: sqlite:////abs/path.db")
        return parsed.set(drivername="sqlite+aiosqlite", database=str(Path(database).resolve()))
    if backend in ("postgresql", "postgres"):
        return parsed.set(drivername="postgresql+asyncpg")
    raise ValueError(f"unsupported archive URL scheme {parsed.drivername!r}")


def open_archive(url: str, *, clock: Clock | None = None) -> ArchiveStore:
    """An :class:`ArchiveStore` for ``url``; call ``await store.open()`` (or use ``async with``)."""
    return ArchiveStore(async_url(url), clock=clock)


class ArchiveStore:
    """Append-only, hash-chained archive over SQLite or PostgreSQL."""

    def __init__(self, url: URL, *, clock: Clock | None = None) -> None:
        self.url = url
        self._clock: Clock = clock or (lambda: datetime.now(UTC))
        self._is_sqlite = url.get_backend_name() == "sqlite"
        if self._is_sqlite:
            self.engine: AsyncEngine = create_async_engine(url)
            event.listen(self.engine.sync_engine, "connect", _sqlite_on_connect)
            event.listen(self.engine.sync_engine, "begin", _sqlite_on_begin)
        else:
            # pre_ping: after a database restart the first append gets a live connection instead
            # of failing a batch on a dead pooled one.
            self.engine = create_async_engine(url, pool_size=5, max_overflow=5, pool_pre_ping=True)
        # One append at a time per process: the database serialises appenders anyway, and
        # queueing here costs no connection and no lock wait on the server.
        self._append_lock = asyncio.Lock()
        self._inserts = BatchInserts(self.engine.dialect)

    @property
    def backend(self) -> str:
        return "sqlite" if self._is_sqlite else "postgresql"

    async def __aenter__(self) -> ArchiveStore:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def open(self) -> None:
        """Create or migrate the schema; safe to run from several processes at once."""
        if self._is_sqlite and self.url.database:
            private_database(Path(self.url.database))
        async with self._write() as conn:
            applied = await conn.run_sync(migrate)
        log.info(
            "archive.opened",
            backend=self.backend,
            url=self.url.render_as_string(hide_password=True),
            migrated=applied,
        )

    async def close(self) -> None:
        await self.engine.dispose()

    async def ping(self) -> None:
        """Raise when the archive cannot be reached (used by /readyz)."""
        async with self.engine.connect() as conn:
            await conn.execute(select(head.c.seq).where(head.c.id == HEAD_ID))

    @asynccontextmanager
    async def _write(self) -> AsyncIterator[AsyncConnection]:
        async with self.engine.connect() as conn:
            if self._is_sqlite:
                await conn.execution_options(**{_WRITE_OPTION: True})
            async with conn.begin():
                yield conn

    async def append(self, entries: Sequence[Entry]) -> list[Appended]:
        """Append ``entries`` in order, in one transaction, chaining each to the one before.

        An entry whose ``dedup_key`` is already claimed (by an earlier record, or earlier in
        this batch) is still recorded, as ``outcome="duplicate"`` referring to the claim; any
        other entry with a ``dedup_key`` claims it, unless the caller already marked it a
        duplicate (a duplicate must never become the original that later messages refer to).
        """
        if not entries:
            return []
        async with self._append_lock, self._write() as conn:
            seq, prev_hash, last_time = await self._lock_head(conn)
            keys = list({e.dedup_key for e in entries if e.dedup_key is not None})
            # The archive's clock never goes backwards along the chain, even across replicas
            # whose clocks disagree: time ranges then map to contiguous seq ranges.
            now = self._clock().astimezone(UTC)
            recorded_at = now if last_time is None else max(now, last_time)
            linked = link(
                entries,
                seq=seq,
                prev_hash=prev_hash,
                recorded_at=recorded_at,
                claimed=await self._claimed(conn, keys),
            )
            await self._inserts.run(conn, linked.records, linked.new_claims)
            await conn.execute(
                update(head)
                .where(head.c.id == HEAD_ID)
                .values(seq=linked.seq, hash=linked.hash, recorded_at=recorded_at)
            )
        return linked.appended

    async def _lock_head(self, conn: AsyncConnection) -> tuple[int, str, datetime | None]:
        query = select(head.c.seq, head.c.hash, head.c.recorded_at).where(head.c.id == HEAD_ID)
        if not self._is_sqlite:
            # Serialising appenders on PostgreSQL: a row lock on the head row rather than
            # pg_advisory_xact_lock. The lock and the read of the tail are one statement (one
            # round trip per batch), it is tied to the data it protects instead of to a magic
            # number in a database-wide namespace, and under READ COMMITTED every later
            # statement of this transaction sees what the previous holder committed, so the
            # claims lookup below is current. SQLite needs nothing: BEGIN IMMEDIATE.
            query = query.with_for_update()
        row = (await conn.execute(query)).one()
        return int(row.seq), str(row.hash), row.recorded_at

    def _key_in(self, keys: Sequence[str]) -> ColumnElement[bool]:
        if self._is_sqlite:
            return claims.c.dedup_key.in_(keys)
        # One array parameter, so batches of any size share one prepared statement.
        return claims.c.dedup_key == any_(bindparam("keys", list(keys), type_=ARRAY(String)))

    async def _claimed(self, conn: AsyncConnection, keys: Sequence[str]) -> dict[str, Record]:
        found: dict[str, Record] = {}
        for chunk in _chunks(keys):
            rows = await conn.execute(
                select(claims.c.dedup_key, records)
                .join(records, records.c.seq == claims.c.seq)
                .where(self._key_in(chunk))
            )
            for row in rows:
                found[row.dedup_key] = record_of(row)
        return found

    async def get(self, seq: int) -> Record | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(records).where(records.c.seq == seq))).first()
        return None if row is None else record_of(row)

    async def hash_at(self, seq: int) -> str | None:
        """The chain hash of record ``seq`` (the genesis hash for 0), None if there is none."""
        if seq == 0:
            return GENESIS
        async with self.engine.connect() as conn:
            found = (
                await conn.execute(select(records.c.hash).where(records.c.seq == seq))
            ).scalar()
        return None if found is None else str(found)

    async def claimed(self, dedup_key: str) -> Record | None:
        """The record that holds ``dedup_key``, if any."""
        return (await self.claimed_many([dedup_key])).get(clean_text(dedup_key))

    async def claimed_many(self, dedup_keys: Iterable[str]) -> dict[str, Record]:
        """The claiming record of each of ``dedup_keys`` that is claimed (one round trip per
        thousand keys); keys not claimed are absent."""
        keys = list(dict.fromkeys(map(clean_text, dedup_keys)))
        if not keys:
            return {}
        async with self.engine.connect() as conn:
            return await self._claimed(conn, keys)

    async def history(self, key: str) -> list[Record]:
        """Records whose message_id or envelope_id is ``key``, and those referring to them."""
        key = clean_text(key)
        async with self.engine.connect() as conn:
            direct = [
                record_of(row)
                for row in await conn.execute(
                    select(records).where(
                        or_(records.c.message_id == key, records.c.envelope_id == key)
                    )
                )
            ]
            # Two indexed queries rather than one OR with a sub-select, which PostgreSQL can
            # only answer by scanning the whole table.
            found = {r.seq: r for r in direct}
            seqs = [r.seq for r in direct]
            for start in range(0, len(seqs), _KEY_CHUNK):
                rows = await conn.execute(
                    select(records).where(records.c.refers_to.in_(seqs[start : start + _KEY_CHUNK]))
                )
                found.update((r.seq, r) for r in map(record_of, rows))
        return [found[seq] for seq in sorted(found)]

    async def search(self, f: SearchFilter, limit: int | None = None) -> list[Record]:
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
        async with self.engine.connect() as conn:
            return [record_of(row) for row in await conn.execute(query)]

    async def iter_records(self, after_seq: int = 0, batch: int = 1000) -> AsyncIterator[Record]:
        """Every record after ``after_seq`` in seq order, read ``batch`` at a time.

        Each page is its own short read, so a long export does not pin a transaction open.
        """
        while True:
            query = (
                select(records)
                .where(records.c.seq > after_seq)
                .order_by(records.c.seq)
                .limit(batch)
            )
            async with self.engine.connect() as conn:
                page = [record_of(row) for row in await conn.execute(query)]
            for record in page:
                yield record
            if len(page) < batch:
                return
            after_seq = page[-1].seq

    async def head(self) -> tuple[int, str]:
        """(seq, hash) of the last record; (0, GENESIS) for an empty archive."""
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(select(head.c.seq, head.c.hash).where(head.c.id == HEAD_ID))
            ).one()
        return int(row.seq), str(row.hash)

    async def first_seq_at(self, instant: datetime) -> int:
        """The seq of the first record recorded at or after ``instant`` (head + 1 if none)."""
        async with self.engine.connect() as conn:
            found = (
                await conn.execute(
                    select(records.c.seq)
                    .where(records.c.recorded_at >= instant)
                    .order_by(records.c.seq)
                    .limit(1)
                )
            ).scalar()
            if found is not None:
                return int(found)
            last = (await conn.execute(select(head.c.seq).where(head.c.id == HEAD_ID))).scalar()
        return int(last or 0) + 1
