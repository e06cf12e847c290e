from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import Connection, inspect, select, text

from gateway.archive import GENESIS, ArchiveStore, open_archive
from gateway.archive.migrations import MIGRATIONS
from gateway.archive.schema import metadata, schema_migrations

from .helpers import plain_entry, sql


async def applied_versions(store: ArchiveStore) -> list[int]:
    async with store.engine.connect() as conn:
        rows = await conn.execute(select(schema_migrations.c.version))
        return sorted(rows.scalars())


async def test_opening_again_changes_nothing(store: ArchiveStore, archive_url: str) -> None:
    await store.append([plain_entry(1), plain_entry(2)])
    head = await store.head()
    again = open_archive(archive_url)
    try:
        await again.open()
        await again.open()
        assert await again.head() == head
        assert await applied_versions(again) == [m.version for m in MIGRATIONS]
        [third] = await again.append([plain_entry(3)])
        assert third.record.prev_hash == head[1]
    finally:
        await again.close()


async def test_processes_opening_at_once_migrate_once(archive_url: str) -> None:
    stores = [open_archive(archive_url) for _ in range(4)]
    try:
        await asyncio.gather(*(s.open() for s in stores))
        assert await applied_versions(stores[0]) == [m.version for m in MIGRATIONS]
        assert await stores[3].head() == (0, GENESIS)
    finally:
        await asyncio.gather(*(s.close() for s in stores))


async def test_schema_from_migrations_matches_the_store_tables(store: ArchiveStore) -> None:
    def describe(conn: Connection) -> dict[str, object]:
        inspector = inspect(conn)
        found: dict[str, object] = {}
        for table in metadata.sorted_tables:
            columns = {c["name"]: c["nullable"] for c in inspector.get_columns(table.name)}
            indexes = {tuple(i["column_names"]) for i in inspector.get_indexes(table.name)}
            primary = tuple(inspector.get_pk_constraint(table.name)["constrained_columns"])
            found[table.name] = (columns, indexes, primary)
        return found

    async with store.engine.connect() as conn:
        actual = await conn.run_sync(describe)
    expected = {
        table.name: (
            {c.name: c.nullable for c in table.columns},
            {tuple(c.name for c in i.columns) for i in table.indexes},
            tuple(c.name for c in table.primary_key.columns),
        )
        for table in metadata.sorted_tables
    }
    assert actual == expected


async def test_a_newer_schema_is_refused(store: ArchiveStore, archive_url: str) -> None:
    await sql(
        store,
        "INSERT INTO schema_migrations (version, name, applied_at) "
        "VALUES (999, 'from the future', CURRENT_TIMESTAMP)",
    )
    older = open_archive(archive_url)
    try:
        with pytest.raises(RuntimeError, match="newer release"):
            await older.open()
    finally:
        await older.close()


async def test_sqlite_archive_runs_in_wal_mode(tmp_path: object) -> None:
    store = open_archive(f"sqlite:///{tmp_path}/deeper/dir/a.db")
    try:
        await store.open()
        async with store.engine.connect() as conn:
            mode = (await conn.execute(text("PRAGMA journal_mode"))).scalar()
            sync = (await conn.execute(text("PRAGMA synchronous"))).scalar()
        assert mode == "wal"
        assert sync == 2  # FULL
    finally:
        await store.close()
