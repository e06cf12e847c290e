"""Transactions: work that raises leaves nothing behind and the next one runs; the WAL switch
waits out a concurrent creator; SQLite's transactions run on the store's own thread."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Connection

from gateway.archive import ArchiveStore
from gateway.archive.connections import SQLiteThread, sqlite_on_connect
from gateway.archive.store import async_url

from .helpers import plain_entry


class Boom(Exception):
    pass


async def test_work_that_raises_is_rolled_back_and_the_next_transaction_runs(
    store: ArchiveStore,
) -> None:
    await store.append([plain_entry(1)])

    def half_then_fail(conn: Connection) -> None:
        conn.execute(text("UPDATE archive_head SET seq = 999"))
        raise Boom

    with pytest.raises(Boom):
        await store._tx.write(half_then_fail)
    assert (await store.head())[0] == 1
    (appended,) = await store.append([plain_entry(2)])
    assert appended.record.seq == 2


async def test_sqlite_transactions_run_on_one_thread_of_their_own(tmp_path: Path) -> None:
    transactions = SQLiteThread(async_url(f"sqlite:///{tmp_path / 'a.db'}"))

    def thread_of(_: Connection) -> int:
        return threading.get_ident()

    try:
        seen = {await transactions.read(thread_of), await transactions.write(thread_of)}
    finally:
        await transactions.close()
    assert len(seen) == 1
    assert seen != {threading.get_ident()}


class LockedCursor:
    """A cursor whose database is locked for the first ``busy`` attempts to switch to WAL."""

    def __init__(self, busy: int, error: str = "database is locked") -> None:
        self.busy = busy
        self.error = error
        self.mode = "delete"
        self.executed: list[str] = []

    def execute(self, sql: str) -> None:
        self.executed.append(sql)
        if sql == "PRAGMA journal_mode=WAL":
            if self.busy:
                self.busy -= 1
                raise RuntimeError(self.error)
            self.mode = "wal"

    def fetchone(self) -> tuple[str]:
        return (self.mode,)

    def close(self) -> None:
        pass


class Driver:
    def __init__(self, cursor: LockedCursor) -> None:
        self._cursor = cursor
        self.isolation_level: Any = "DEFERRED"

    def cursor(self) -> LockedCursor:
        return self._cursor


def test_the_wal_switch_waits_out_a_concurrent_creator() -> None:
    cursor = LockedCursor(busy=2)
    sqlite_on_connect(Driver(cursor), None)  # type: ignore[arg-type]
    assert cursor.mode == "wal"
    assert cursor.executed.count("PRAGMA journal_mode=WAL") == 3
    assert "PRAGMA synchronous=FULL" in cursor.executed


def test_a_file_in_wal_already_is_not_switched_again() -> None:
    cursor = LockedCursor(busy=0)
    cursor.mode = "wal"
    sqlite_on_connect(Driver(cursor), None)  # type: ignore[arg-type]
    assert "PRAGMA journal_mode=WAL" not in cursor.executed


def test_other_errors_of_the_wal_switch_are_raised() -> None:
    cursor = LockedCursor(busy=1, error="disk I/O error")
    with pytest.raises(RuntimeError, match="disk I/O error"):
        sqlite_on_connect(Driver(cursor), None)  # type: ignore[arg-type]
