"""The archive store: one SQLAlchemy Core implementation for SQLite and PostgreSQL.

SQLite (a file per Party, WAL, on a thread of its own) is the embedded default with a single
writer; PostgreSQL (asyncpg) lets several gateway replicas share one archive. Either way the
archive is append-only: ``gateway.archive.queries`` never updates or deletes a record. Each
method here is one transaction of those queries, run by ``gateway.archive.connections``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Sequence
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from types import TracebackType

import structlog
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from gateway.archive import queries
from gateway.archive.chain import GENESIS
from gateway.archive.connections import (
    AsyncTransactions,
    SQLiteThread,
    Transactions,
    sqlite_events,
)
from gateway.archive.migrations import migrate
from gateway.archive.queries import Clock
from gateway.archive.records import Appended, Entry, Record, clean_text
from gateway.archive.rows import BatchInserts
from gateway.archive.search import SearchFilter
from gateway.files import private_database

__all__ = ["ArchiveStore", "SearchFilter", "async_url", "open_archive"]

log = structlog.get_logger(__name__)


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
        self._tx: Transactions
        if self._is_sqlite:
            # The async engine is for callers running their own statements (the tests); the
            # store's own transactions run on its thread.
            self.engine: AsyncEngine = create_async_engine(url)
            sqlite_events(self.engine.sync_engine)
            self._tx = SQLiteThread(url)
        else:
            # pre_ping: after a database restart the first append gets a live connection instead
            # of failing a batch on a dead pooled one.
            self.engine = create_async_engine(url, pool_size=5, max_overflow=5, pool_pre_ping=True)
            self._tx = AsyncTransactions(self.engine)
        # One append at a time per process: the database serialises appenders anyway, and
        # queueing here costs no connection and no lock wait on the server.
        self._append_lock = asyncio.Lock()
        self._inserts = BatchInserts(self._tx.dialect)

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
        applied = await self._tx.write(migrate)
        log.info(
            "archive.opened",
            backend=self.backend,
            url=self.url.render_as_string(hide_password=True),
            migrated=applied,
        )

    async def close(self) -> None:
        await self._tx.close()
        await self.engine.dispose()

    async def ping(self) -> None:
        """Raise when the archive cannot be reached (used by /readyz)."""
        await self._tx.read(queries.head_of)

    async def append(self, entries: Sequence[Entry]) -> list[Appended]:
        """Append ``entries`` in order, in one transaction, chaining each to the one before.

        An entry whose ``dedup_key`` is already claimed (by an earlier record, or earlier in
        this batch) is still recorded, as ``outcome="duplicate"`` referring to the claim; any
        other entry with a ``dedup_key`` claims it, unless the caller already marked it a
        duplicate (a duplicate must never become the original that later messages refer to).
        """
        if not entries:
            return []
        async with self._append_lock:
            return await self._tx.write(
                partial(queries.append, entries=entries, inserts=self._inserts, clock=self._clock)
            )

    async def get(self, seq: int) -> Record | None:
        return await self._tx.read(partial(queries.get, seq=seq))

    async def get_many(self, seqs: Iterable[int]) -> dict[int, Record]:
        """The records of ``seqs`` that exist, by seq, in one read."""
        return await self._tx.read(partial(queries.records_at, seqs=list(seqs)))

    async def hash_at(self, seq: int) -> str | None:
        """The chain hash of record ``seq`` (the genesis hash for 0), None if there is none."""
        if seq == 0:
            return GENESIS
        return await self._tx.read(partial(queries.hash_at, seq=seq))

    async def claimed(self, dedup_key: str) -> Record | None:
        """The record that holds ``dedup_key``, if any."""
        return (await self.claimed_many([dedup_key])).get(clean_text(dedup_key))

    async def claimed_many(self, dedup_keys: Iterable[str]) -> dict[str, Record]:
        """The claiming record of each of ``dedup_keys`` that is claimed (one round trip per
        thousand keys); keys not claimed are absent."""
        keys = list(dict.fromkeys(map(clean_text, dedup_keys)))
        if not keys:
            return {}
        return await self._tx.read(partial(queries.claimed, keys=keys))

    async def history(self, key: str) -> list[Record]:
        """Records whose message_id or envelope_id is ``key``, and those referring to them."""
        return await self._tx.read(partial(queries.history, key=clean_text(key)))

    async def search(self, f: SearchFilter, limit: int | None = None) -> list[Record]:
        """Records matching ``f`` in seq order, at most ``limit`` of them."""
        return await self._tx.read(partial(queries.search, f=f, limit=limit))

    async def iter_records(self, after_seq: int = 0, batch: int = 1000) -> AsyncIterator[Record]:
        """Every record after ``after_seq`` in seq order, read ``batch`` at a time.

        Each page is its own short read, so a long export does not pin a transaction open.
        """
        while True:
            page = await self._tx.read(partial(queries.page, after_seq=after_seq, size=batch))
            for record in page:
                yield record
            if len(page) < batch:
                return
            after_seq = page[-1].seq

    async def head(self) -> tuple[int, str]:
        """(seq, hash) of the last record; (0, GENESIS) for an empty archive."""
        return await self._tx.read(queries.head_of)

    async def first_seq_at(self, instant: datetime) -> int:
        """The seq of the first record recorded at or after ``instant`` (head + 1 if none)."""
        return await self._tx.read(partial(queries.first_seq_at, instant=instant))
