"""The prepared batch insert stores exactly what SQLAlchemy's insert of the same record would."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

from sqlalchemy import insert

from gateway.archive import ArchiveStore, Entry
from gateway.archive.rows import record_row, row_values
from gateway.archive.schema import records

from .helpers import T0


async def _stored(store: ArchiveStore, seq: int) -> tuple[object, ...]:
    # Raw driver values (timestamps as the backend stores them), seq left out.
    async with store.engine.connect() as conn:
        result = await conn.exec_driver_sql(f"SELECT * FROM archive_records WHERE seq = {seq}")
        return tuple(result.one())[1:]


async def test_a_prepared_row_is_stored_as_sqlalchemy_stores_it(store: ArchiveStore) -> None:
    entry = Entry(
        kind="envelope.in",
        outcome="delivered",
        occurred_at=T0 + timedelta(microseconds=7),
        payload=b"\x00\xff{}",
        message_id="m-\u00fc",
        detail="line\nbreak \u2028",
        derived_from=("a", "\u00e9"),
        headers=(("x-h", "v"),),
    )
    (appended,) = await store.append([entry])
    prepared = appended.record
    assert record_row(prepared)[0] == prepared.seq
    through_sqlalchemy = dataclasses.replace(prepared, seq=prepared.seq + 1)
    async with store.engine.begin() as conn:
        await conn.execute(insert(records).values(row_values(through_sqlalchemy)))
    assert await _stored(store, prepared.seq) == await _stored(store, prepared.seq + 1)
