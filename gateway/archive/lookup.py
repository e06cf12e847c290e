"""Many archive records by seq in one read: a replay names thousands of records, and reading
them one query each cost a control request more than deciding it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from sqlalchemy import select

from gateway.archive.records import Record
from gateway.archive.rows import record_of
from gateway.archive.schema import records
from gateway.archive.store import ArchiveStore

# Below SQLite's default limit of host parameters in one statement, with room to spare.
CHUNK: Final = 900


async def records_at(store: ArchiveStore, seqs: Iterable[int]) -> dict[int, Record]:
    """The records of ``seqs`` that exist, by seq."""
    wanted = sorted(set(seqs))
    found: dict[int, Record] = {}
    async with store.engine.connect() as conn:
        for start in range(0, len(wanted), CHUNK):
            query = select(records).where(records.c.seq.in_(wanted[start : start + CHUNK]))
            found.update((r.seq, r) for r in map(record_of, await conn.execute(query)))
    return found
