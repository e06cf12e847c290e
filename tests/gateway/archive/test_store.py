from __future__ import annotations

import asyncio
import itertools
import random
import time
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from gateway.archive import GENESIS, ArchiveStore, Entry, SearchFilter, open_archive, verify_chain
from gateway.archive.chain import record_hash
from gateway.archive.schema import claims, records
from gateway.archive.store import async_url

from .helpers import T0, ManualClock, Party, envelope_entry, plain_entry


async def all_records(store: ArchiveStore) -> list:  # type: ignore[type-arg]
    return [r async for r in store.iter_records()]


async def test_append_numbers_and_chains_records(store: ArchiveStore) -> None:
    assert await store.head() == (0, GENESIS)
    first = await store.append([plain_entry(1), plain_entry(2)])
    second = await store.append([plain_entry(3)])
    appended = [a.record for a in first + second]
    assert [r.seq for r in appended] == [1, 2, 3]
    assert appended[0].prev_hash == GENESIS
    assert [r.prev_hash for r in appended[1:]] == [r.hash for r in appended[:-1]]
    for record in appended:
        assert record.hash == record_hash(record.prev_hash, record.seq, record.recorded_at, record)
    assert await store.head() == (3, appended[-1].hash)
    assert await all_records(store) == appended
    assert await store.append([]) == []


async def test_every_field_survives_the_round_trip(store: ArchiveStore) -> None:
    entry = Entry(
        kind="envelope.in",
        outcome="delivered",
        occurred_at=T0 + timedelta(microseconds=123456),
        payload=bytes(range(256)),
        message_id="m-ü",
        system="case-desk",
        envelope_id="env-1",
        type="information.share",
        provider="SCO-RATS",
        recipient="CICA",
        correlation_id="thread-9",
        reason="consent.missing",
        detail="multi\nline «detail» \x00",
        signature="c2ln",
        dedup_key="SCO-RATS/env-1",
        refers_to=None,
        derived_from=("env-0", "env-00"),
        attachment_sha256=("ab" * 32,),
        headers=(("x-gw-replay-of", "env-0"), ("x-empty", "")),
    )
    [appended] = await store.append([entry])
    stored = await store.get(appended.record.seq)
    assert stored == appended.record
    assert stored is not None
    assert stored.occurred_at == entry.occurred_at
    assert stored.payload == entry.payload
    assert stored.detail == "multi\nline «detail» \ufffd"
    assert await store.get(99) is None


async def test_hostile_text_does_not_fail_the_batch(store: ArchiveStore) -> None:
    """NUL and lone surrogates cannot be stored as text; the exact bytes stay in the payload."""
    payload = b'{"id": "\\u0000\\ud800"}'
    hostile = "e\x00v\ud800"
    [appended] = await store.append(
        [
            plain_entry(
                1,
                payload=payload,
                envelope_id=hostile,
                dedup_key=hostile,
                headers=((hostile, hostile),),
            )
        ]
    )
    assert appended.record.envelope_id == "e\ufffdv\ufffd"
    assert appended.record.headers == (("e\ufffdv\ufffd", "e\ufffdv\ufffd"),)
    assert await store.get(1) == appended.record
    assert (await store.get(1)).payload == payload  # type: ignore[union-attr]
    assert await store.claimed(hostile) == appended.record
    assert [r.seq for r in await store.history(hostile)] == [1]
    assert len(await store.search(SearchFilter(envelope_ids=[hostile]))) == 1


async def test_redelivered_key_is_recorded_as_duplicate(store: ArchiveStore) -> None:
    [claim] = await store.append([plain_entry(1, dedup_key="case-desk/m-1")])
    assert claim.original is None
    assert not claim.is_duplicate
    [again] = await store.append([plain_entry(1, dedup_key="case-desk/m-1")])
    assert again.original == claim.record
    assert again.record.outcome == "duplicate"
    assert again.record.refers_to == claim.record.seq
    assert again.record.seq == 2
    assert await store.claimed("case-desk/m-1") == claim.record
    assert await store.claimed("case-desk/m-2") is None


async def test_duplicate_within_one_batch(store: ArchiveStore) -> None:
    batch = [
        plain_entry(1, dedup_key="k1"),
        plain_entry(2, dedup_key="k2"),
        plain_entry(1, dedup_key="k1"),
        plain_entry(3),
        plain_entry(1, dedup_key="k1"),
    ]
    results = await store.append(batch)
    assert [r.record.outcome for r in results] == ["sent", "sent", "duplicate", "sent", "duplicate"]
    assert results[2].original == results[0].record
    assert results[4].original == results[0].record
    assert results[4].record.refers_to == 1
    assert verify_chain(await all_records(store)).ok
    found = await store.claimed_many(["k1", "k2", "k3", "k1"])
    assert {k: r.seq for k, r in found.items()} == {"k1": 1, "k2": 2}
    assert await store.claimed_many([]) == {}


async def test_an_entry_marked_duplicate_never_claims(store: ArchiveStore) -> None:
    [marked] = await store.append([plain_entry(1, outcome="duplicate", dedup_key="k")])
    assert marked.original is None
    assert await store.claimed("k") is None
    [real] = await store.append([plain_entry(1, dedup_key="k")])
    assert real.record.outcome == "sent"
    assert await store.claimed("k") == real.record


async def test_history_follows_ids_and_references(store: ArchiveStore) -> None:
    cica = Party("CICA")
    await store.append(
        [
            envelope_entry(cica, 1),  # message msg-00001, envelope env-CICA-00001
            envelope_entry(cica, 2),
            plain_entry(9, kind="receipt.in", outcome="delivered", envelope_id="rcpt-1"),
        ]
    )
    [dup] = await store.append([envelope_entry(cica, 1, message_id="other-message")])
    await store.append([plain_entry(10, kind="replay", outcome="replayed", refers_to=1)])
    by_message = await store.history("msg-00001")
    assert [r.seq for r in by_message] == [1, 4, 5]
    by_envelope = await store.history("env-CICA-00001")
    assert [r.seq for r in by_envelope] == [1, 4, 5]
    assert dup.record.refers_to == 1
    assert [r.seq for r in await store.history("rcpt-1")] == [3]
    assert await store.history("nothing") == []


async def test_search_filters(store: ArchiveStore, clock: ManualClock) -> None:
    cica, sco = Party("CICA"), Party("SCO-RATS")
    await store.append([envelope_entry(cica, 1, correlation_id="thread-1")])
    clock.advance(60)
    await store.append(
        [
            envelope_entry(sco, 2, kind="envelope.in", outcome="delivered"),
            envelope_entry(
                cica, 3, outcome="quarantined", reason="consent.missing", recipient="UNOCT"
            ),
        ]
    )
    clock.advance(60)
    await store.append(
        [
            plain_entry(4, kind="envelope.in", outcome="rejected", type="meeting.minutes"),
            envelope_entry(cica, 5, correlation_id="thread-1"),
        ]
    )

    async def seqs(**criteria: object) -> list[int]:
        return [r.seq for r in await store.search(SearchFilter(**criteria))]  # type: ignore[arg-type]

    assert await seqs() == [1, 2, 3, 4, 5]
    assert await seqs(since=T0 + timedelta(seconds=60)) == [2, 3, 4, 5]
    assert await seqs(until=T0 + timedelta(seconds=60)) == [1]
    assert await seqs(since=T0 + timedelta(seconds=60), until=T0 + timedelta(seconds=120)) == [2, 3]
    assert await seqs(kinds=["envelope.in"]) == [2, 4]
    assert await seqs(types=["meeting.minutes"]) == [4]
    assert await seqs(provider="SCO-RATS") == [2]
    assert await seqs(recipient="UNOCT") == [3]
    assert await seqs(correlation_id="thread-1") == [1, 5]
    assert await seqs(outcomes=["quarantined", "rejected"]) == [3, 4]
    assert await seqs(envelope_ids=["env-CICA-00005", "env-SCO-RATS-00002"]) == [2, 5]
    assert await seqs(message_ids=["m-4"]) == [4]
    assert await seqs(provider="CICA", outcomes=["sent"]) == [1, 5]
    limited = await store.search(SearchFilter(provider="CICA"), limit=2)
    assert [r.seq for r in limited] == [1, 3]


async def test_recorded_at_never_goes_backwards(store: ArchiveStore, clock: ManualClock) -> None:
    [first] = await store.append([plain_entry(1)])
    clock.advance(-3600)  # this replica's clock is an hour behind
    [second] = await store.append([plain_entry(2)])
    assert second.record.recorded_at == first.record.recorded_at
    clock.advance(7200)
    [third] = await store.append([plain_entry(3)])
    assert third.record.recorded_at == T0 + timedelta(seconds=3600)


async def test_iter_records_pages_in_seq_order(store: ArchiveStore) -> None:
    await store.append([plain_entry(n) for n in range(25)])
    seqs = [r.seq async for r in store.iter_records(batch=7)]
    assert seqs == list(range(1, 26))
    assert [r.seq async for r in store.iter_records(after_seq=20, batch=2)] == [21, 22, 23, 24, 25]
    assert [r.seq async for r in store.iter_records(after_seq=25)] == []


async def test_first_seq_at(store: ArchiveStore, clock: ManualClock) -> None:
    await store.append([plain_entry(1)])
    clock.advance(10)
    await store.append([plain_entry(2), plain_entry(3)])
    assert await store.first_seq_at(T0) == 1
    assert await store.first_seq_at(T0 + timedelta(seconds=1)) == 2
    assert await store.first_seq_at(T0 + timedelta(seconds=11)) == 4


async def test_ping_answers_for_a_readable_archive_only(
    store: ArchiveStore, tmp_path: Path
) -> None:
    await store.ping()
    # An archive without its schema must fail the ping: it reads the head, not just connects.
    blank = open_archive(f"sqlite:///{tmp_path / 'blank.db'}")
    try:
        with pytest.raises(OperationalError, match="no such table"):
            await blank.ping()
    finally:
        await blank.close()


async def test_ping_raises_when_the_database_is_unreachable() -> None:
    store = open_archive("postgresql://postgres@127.0.0.1:1/gw_test_archive_none")
    try:
        with pytest.raises(OSError, match=r"(?i)connect"):
            await store.ping()
    finally:
        await store.close()


def test_archive_urls_map_to_async_drivers(tmp_path: object) -> None:
    assert async_url("sqlite:////var/lib/gw/a.db").render_as_string() == (
        "sqlite+aiosqlite:////var/lib/gw/a.db"
    )
    pg = async_url("postgresql://gw:secret@db:5433/archive")
    assert pg.drivername == "postgresql+asyncpg"
    assert (pg.username, pg.password, pg.host, pg.port, pg.database) == (
        "gw",
        "secret",
        "db",
        5433,
        "archive",
    )
    with pytest.raises(ValueError, match="file path"):
        async_url("sqlite://")
    with pytest.raises(ValueError, match="unsupported"):
        async_url("mysql://x@y/z")


async def test_throughput_batches_of_256(
    store: ArchiveStore, capsys: pytest.CaptureFixture[str]
) -> None:
    cica = Party("CICA")
    template = envelope_entry(cica, 0)
    batches = [
        [
            Entry(
                kind="envelope.out",
                outcome="sent",
                occurred_at=T0,
                payload=template.payload,
                envelope_id=f"env-{b}-{i}",
                message_id=f"msg-{b}-{i}",
                dedup_key=f"case-desk/msg-{b}-{i}",
                signature=template.signature,
            )
            for i in range(256)
        ]
        for b in range(12)
    ]
    started = time.perf_counter()
    for batch in batches:
        await store.append(batch)
    elapsed = time.perf_counter() - started
    count = sum(len(b) for b in batches)
    assert (await store.head())[0] == count
    with capsys.disabled():
        print(
            f"\n[archive {store.backend}] {count} entries in batches of 256: "
            f"{count / elapsed:,.0f} entries/s ({len(template.payload)}-byte payloads)"
        )


async def test_two_replicas_keep_one_chain_and_claim_each_key_once(archive_url: str) -> None:
    """Two stores on one database (two engines, like two gateway replicas) append at once."""
    replicas = [open_archive(archive_url), open_archive(archive_url)]
    await asyncio.gather(*(r.open() for r in replicas))
    per_replica, shared_keys = 2500, 1500
    rng = random.Random(7)

    def entries(replica: int) -> list[Entry]:
        out = []
        for i in range(per_replica):
            # Keys overlap across replicas and repeat within a replica.
            key = f"case-desk/m-{rng.randrange(shared_keys)}" if i % 5 else None
            out.append(plain_entry(i, message_id=f"r{replica}-{i}", dedup_key=key))
        return out

    async def run(replica: int, store: ArchiveStore) -> list:  # type: ignore[type-arg]
        todo, results = entries(replica), []
        while todo:
            size = rng.randint(1, 120)
            batch, todo = todo[:size], todo[size:]
            results += await store.append(batch)
        return results

    try:
        outcomes = await asyncio.gather(*(run(n, s) for n, s in enumerate(replicas)))
        every = await all_records(replicas[0])
        report = verify_chain(every)
        assert report.ok, report
        assert report.count == 2 * per_replica
        assert await replicas[1].head() == (report.head_seq, report.head_hash)
        if replicas[0].backend == "postgresql":
            # SQLite has one writer at a time and may let one replica finish first; PostgreSQL
            # must show the two replicas' batches interleaved in the one chain.
            writers = [str(r.message_id)[:2] for r in every]
            switches = sum(1 for a, b in itertools.pairwise(writers) if a != b)
            assert switches > 10, f"the replicas did not append at the same time ({switches})"
        claimers: dict[str, list[int]] = {}
        for record in every:
            if record.dedup_key is not None and record.outcome != "duplicate":
                claimers.setdefault(record.dedup_key, []).append(record.seq)
        assert all(len(seqs) == 1 for seqs in claimers.values())
        by_seq = {r.seq: r for r in every}
        for record in every:
            if record.outcome == "duplicate":
                assert record.refers_to is not None
                assert claimers[str(record.dedup_key)] == [record.refers_to]
                assert by_seq[record.refers_to].seq < record.seq
        results = outcomes[0] + outcomes[1]
        assert sum(1 for a in results if a.original is None and a.record.dedup_key) == len(claimers)
        async with replicas[0].engine.connect() as conn:
            stored_claims = (await conn.execute(select(func.count()).select_from(claims))).scalar()
            rows = (await conn.execute(select(func.count()).select_from(records))).scalar()
        assert stored_claims == len(claimers)
        assert rows == 2 * per_replica
    finally:
        await asyncio.gather(*(r.close() for r in replicas))
