"""The archive tests run on both backends: SQLite in a temporary file, PostgreSQL in a database
of their own (``gw_test_archive_*``, created and dropped here). Under CI=true a PostgreSQL that
does not answer fails the tests; elsewhere they are skipped with the reason."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
import pytest

from gateway.archive import ArchiveStore, open_archive

from .helpers import ManualClock

PG_HOST, PG_PORT, PG_USER = "127.0.0.1", 5432, "postgres"


async def _admin() -> asyncpg.Connection:
    try:
        return await asyncpg.connect(
            host=PG_HOST, port=PG_PORT, user=PG_USER, database="postgres", timeout=5
        )
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        message = f"PostgreSQL is not answering on {PG_HOST}:{PG_PORT} as {PG_USER}: {exc}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)


@asynccontextmanager
async def postgres_database() -> AsyncIterator[str]:
    """A fresh database of our own for one test, dropped afterwards."""
    name = f"gw_test_archive_{uuid.uuid4().hex[:16]}"
    admin = await _admin()
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield f"postgresql://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}"
        finally:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=BACKENDS)
async def archive_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'archive.db'}"
        return
    async with postgres_database() as url:
        yield url


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def store(archive_url: str, clock: ManualClock) -> AsyncIterator[ArchiveStore]:
    opened = open_archive(archive_url, clock=clock)
    await opened.open()
    try:
        yield opened
    finally:
        await opened.close()
