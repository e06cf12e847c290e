"""Archives and export bundles are evidence: owner-only files, in an owner-only directory."""

from __future__ import annotations

import stat
from datetime import timedelta
from pathlib import Path

from gateway.archive import open_archive
from gateway.archive.bundle import export_bundle

from .helpers import T0, ManualClock, Party, envelope_entry

CICA = Party("CICA")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_a_new_sqlite_archive_and_its_wal_are_owner_only(tmp_path: Path) -> None:
    directory = tmp_path / "state" / "cica"
    database = directory / "archive.db"
    async with open_archive(f"sqlite:///{database}", clock=ManualClock(T0)) as store:
        await store.append([envelope_entry(CICA, 1)])
        wal = database.with_name("archive.db-wal")
        shm = database.with_name("archive.db-shm")
        assert wal.exists()
        assert shm.exists()
        assert {mode(database), mode(wal), mode(shm)} == {0o600}
    assert mode(directory) == 0o700


async def test_an_archive_created_readable_by_others_is_tightened(tmp_path: Path) -> None:
    database = tmp_path / "archive.db"
    database.touch(mode=0o644)
    database.chmod(0o644)
    async with open_archive(f"sqlite:///{database}") as store:
        await store.ping()
    assert mode(database) == 0o600


async def test_an_export_bundle_is_owner_only_even_over_a_readable_file(tmp_path: Path) -> None:
    clock = ManualClock(T0)
    out = tmp_path / "bundle.jsonl"
    out.write_bytes(b"old")
    out.chmod(0o644)
    async with open_archive(f"sqlite:///{tmp_path / 'a.db'}", clock=clock) as store:
        await store.append([envelope_entry(CICA, 1)])
        summary = await export_bundle(store, T0, T0 + timedelta(hours=1), CICA.key, out)
    assert summary.records == 1
    assert mode(out) == 0o600
