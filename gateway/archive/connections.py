"""Where the archive meets its database: each transaction is one synchronous function.

The store's queries (``gateway.archive.queries``) are plain SQLAlchemy Core over a synchronous
:class:`~sqlalchemy.engine.Connection`; a :class:`Transactions` runs one of them in a
transaction, without blocking the event loop:

- SQLite: :class:`SQLiteThread`, the standard library's driver on one thread of its own that
  holds one connection. aiosqlite made every statement its own hop to its thread through
  SQLAlchemy's greenlet adapter (begin, the head, the claims, two inserts, the head again,
  commit, and the pool's rollback on return): an append of one record cost 2.5-3 ms of CPU.
  Here a transaction is one hop, and the connection is not checked out and reset each time.
- PostgreSQL: :class:`AsyncTransactions`, asyncpg under SQLAlchemy's async engine, the same
  function run through ``AsyncConnection.run_sync`` (its round trips are network ones anyway).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Final, Protocol, TypeVar

from sqlalchemy import create_engine, event
from sqlalchemy.engine import URL, Connection, Dialect
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import ConnectionPoolEntry

T = TypeVar("T")

BUSY_TIMEOUT_MS: Final = 30_000
WRITE_OPTION: Final = "archive_write"


class Transactions(Protocol):
    """Runs ``work`` in one transaction: committed if it returns, rolled back if it raises."""

    @property
    def dialect(self) -> Dialect: ...

    async def write(self, work: Callable[[Connection], T]) -> T: ...

    async def read(self, work: Callable[[Connection], T]) -> T: ...

    async def close(self) -> None: ...


def sqlite_on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
    # Take transaction control away from the driver, so that sqlite_on_begin decides how each
    # transaction begins (the documented SQLAlchemy recipe for the SQLite drivers).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    # First: switching to WAL needs a lock, and a replica opening the same file at the same
    # moment must make this one wait, not fail with "database is locked".
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    _use_wal(cursor)
    # FULL: a commit is on disk before append returns, which is what allows the ack.
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.close()


def _use_wal(cursor: Any) -> None:
    cursor.execute("PRAGMA journal_mode")
    if cursor.fetchone()[0] == "wal":
        return
    # Two replicas creating the archive at once both switch it to WAL, and SQLite may answer
    # one of them "database is locked" at once instead of through the busy handler.
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except Exception as exc:  # the driver's OperationalError, sqlite3's or aiosqlite's
            if "database is locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def sqlite_on_begin(conn: Connection) -> None:
    # IMMEDIATE takes the write lock up front: the chain tail read at the start of an append
    # cannot change before it commits, and there is no deferred-lock upgrade deadlock.
    immediate = conn.get_execution_options().get(WRITE_OPTION, False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def sqlite_events(engine: Any) -> None:
    """Install the pragmas and the transaction start on a (sync) SQLite engine."""
    event.listen(engine, "connect", sqlite_on_connect)
    event.listen(engine, "begin", sqlite_on_begin)


class SQLiteThread:
    """One SQLite connection, used by one thread only, one transaction at a time."""

    def __init__(self, url: URL) -> None:
        self._engine = create_engine(url.set(drivername="sqlite"))
        sqlite_events(self._engine)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="archive-sqlite")
        self._conn: Connection | None = None

    @property
    def dialect(self) -> Dialect:
        return self._engine.dialect

    async def write(self, work: Callable[[Connection], T]) -> T:
        return await self._run(work, write=True)

    async def read(self, work: Callable[[Connection], T]) -> T:
        return await self._run(work, write=False)

    async def _run(self, work: Callable[[Connection], T], *, write: bool) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._transaction, work, write)

    def _transaction(self, work: Callable[[Connection], T], write: bool) -> T:
        if self._conn is None:
            self._conn = self._engine.connect()
        conn = self._conn.execution_options(**{WRITE_OPTION: write})
        try:
            with conn.begin():
                return work(conn)
        except Exception:
            if conn.invalidated or conn.closed:
                # A broken connection (the file gone, a disk error): the next call opens anew.
                self._drop()
            raise

    def _drop(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    async def close(self) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self._drop)
        self._executor.shutdown(wait=True)
        self._engine.dispose()


class AsyncTransactions:
    """An async engine's pooled connections; the work runs through ``run_sync``."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    @property
    def dialect(self) -> Dialect:
        return self._engine.dialect

    async def write(self, work: Callable[[Connection], T]) -> T:
        async with self._engine.connect() as conn, conn.begin():
            return await conn.run_sync(work)

    async def read(self, work: Callable[[Connection], T]) -> T:
        return await self.write(work)

    async def close(self) -> None:
        await self._engine.dispose()
