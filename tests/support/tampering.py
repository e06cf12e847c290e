"""What an intruder with write access to the archive database can do: cut its end off and move
the head back, or remove records and recompute the chain with the project's own hash."""

from __future__ import annotations

import dataclasses

from sqlalchemy import delete, insert, select, update

from gateway.archive import GENESIS, ArchiveStore, Record, record_hash
from gateway.archive.rows import row_values
from gateway.archive.schema import HEAD_ID, claims, head, records


async def truncate(store: ArchiveStore, keep: int) -> None:
    """Delete every record after ``keep`` and point the head at record ``keep``."""
    last = await store.get(keep) if keep else None
    async with store.engine.begin() as conn:
        await conn.execute(delete(records).where(records.c.seq > keep))
        await conn.execute(delete(claims).where(claims.c.seq > keep))
        await conn.execute(
            update(head)
            .where(head.c.id == HEAD_ID)
            .values(
                seq=keep,
                hash=last.hash if last else GENESIS,
                recorded_at=last.recorded_at if last else None,
            )
        )


async def rechain_without(store: ArchiveStore, removed: set[int]) -> None:
    """Remove the records ``removed`` and renumber and re-hash every later one, so that the
    chain and the head are consistent again."""
    first = min(removed)
    kept = [r async for r in store.iter_records(after_seq=first - 1) if r.seq not in removed]
    before = await store.get(first - 1) if first > 1 else None
    prev, seq = (before.hash if before else GENESIS), first - 1
    rewritten: list[Record] = []
    for record in kept:
        seq += 1
        digest = record_hash(prev, seq, record.recorded_at, record)
        rewritten.append(dataclasses.replace(record, seq=seq, prev_hash=prev, hash=digest))
        prev = digest
    async with store.engine.begin() as conn:
        moved = (await conn.execute(select(claims).where(claims.c.seq >= first))).all()
        await conn.execute(delete(claims).where(claims.c.seq >= first))
        await conn.execute(delete(records).where(records.c.seq >= first))
        if rewritten:
            await conn.execute(insert(records), [row_values(r) for r in rewritten])
        renumbered = {old.seq: new.seq for old, new in zip(kept, rewritten, strict=True)}
        kept_claims = [
            {"dedup_key": c.dedup_key, "seq": renumbered[c.seq]}
            for c in moved
            if c.seq in renumbered
        ]
        if kept_claims:
            await conn.execute(insert(claims), kept_claims)
        await conn.execute(update(head).where(head.c.id == HEAD_ID).values(seq=seq, hash=prev))


async def edit_payload(store: ArchiveStore, seq: int, payload: bytes) -> None:
    """Change record ``seq``'s payload in place, leaving its hash (and the chain) as it was."""
    async with store.engine.begin() as conn:
        await conn.execute(update(records).where(records.c.seq == seq).values(payload=payload))
