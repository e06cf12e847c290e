from __future__ import annotations

import dataclasses
import json

from sqlalchemy import insert, update

from gateway.archive import ArchiveStore, Record
from gateway.archive.chain import HASH_MISMATCH, PREV_HASH_MISMATCH, SEQ_GAP, record_hash
from gateway.archive.rows import row_values
from gateway.archive.schema import HEAD_ID, head, records
from gateway.archive.verify import verify_archive

from .helpers import Party, envelope, envelope_entry, keyring, plain_entry, sql

CICA, SCO = Party("CICA"), Party("SCO-RATS")


async def five_records(store: ArchiveStore) -> list[Record]:
    batch = [
        envelope_entry(CICA, 1),
        envelope_entry(SCO, 2, kind="envelope.in", outcome="delivered"),
        envelope_entry(CICA, 3),
        plain_entry(4, kind="decision", outcome="quarantined", reason="consent.missing"),
        envelope_entry(CICA, 5),
    ]
    return [a.record for a in await store.append(batch)]


async def test_intact_archive_verifies_with_signatures(store: ArchiveStore) -> None:
    written = await five_records(store)
    report = await verify_archive(store, keyring(CICA, SCO))
    assert report.ok, report.broken
    assert (report.records, report.head_seq, report.head_hash) == (5, 5, written[-1].hash)
    assert report.signatures_checked == 4
    unsigned = await verify_archive(store, None)
    assert unsigned.ok
    assert unsigned.signatures_checked == 0


async def test_empty_archive_verifies(store: ArchiveStore) -> None:
    report = await verify_archive(store, keyring(CICA))
    assert report.ok
    assert report.records == 0


async def test_edited_payload_is_found(store: ArchiveStore) -> None:
    await five_records(store)
    await sql(store, "UPDATE archive_records SET payload = :p WHERE seq = 3", p=b'{"edited": 1}')
    report = await verify_archive(store, None)
    assert report.broken is not None
    assert (report.broken.seq, report.broken.kind) == (3, "envelope.out")
    assert report.broken.why.startswith(HASH_MISMATCH)
    assert report.records == 2


async def test_edited_metadata_is_found(store: ArchiveStore) -> None:
    await five_records(store)
    await sql(store, "UPDATE archive_records SET outcome = 'released' WHERE seq = 4")
    report = await verify_archive(store, None)
    assert report.broken is not None
    assert report.broken.seq == 4
    assert report.broken.why.startswith(HASH_MISMATCH)


async def test_deleted_record_is_found(store: ArchiveStore) -> None:
    await five_records(store)
    await sql(store, "DELETE FROM archive_records WHERE seq = 3")
    report = await verify_archive(store, None)
    assert report.broken is not None
    assert report.broken.seq == 4
    assert report.broken.why.startswith(SEQ_GAP)


async def test_deleted_last_record_is_found_by_the_head(store: ArchiveStore) -> None:
    await five_records(store)
    await sql(store, "DELETE FROM archive_records WHERE seq = 5")
    report = await verify_archive(store, None)
    assert report.broken is not None
    assert report.broken.seq == 5
    assert report.broken.why.startswith("record missing")


async def test_reordered_pair_is_found(store: ArchiveStore) -> None:
    await five_records(store)
    await sql(store, "UPDATE archive_records SET seq = -3 WHERE seq = 3")
    await sql(store, "UPDATE archive_records SET seq = 3 WHERE seq = 4")
    await sql(store, "UPDATE archive_records SET seq = 4 WHERE seq = -3")
    report = await verify_archive(store, None)
    assert report.broken is not None
    assert report.broken.seq == 3
    assert report.broken.kind == "decision"
    assert report.broken.why.startswith(PREV_HASH_MISMATCH)


async def test_inserted_record_is_found(store: ArchiveStore) -> None:
    written = await five_records(store)
    # Make room at seq 3, then insert a record that links perfectly to record 2.
    await sql(store, "UPDATE archive_records SET seq = -(seq + 1) WHERE seq >= 3")
    await sql(store, "UPDATE archive_records SET seq = -seq WHERE seq < 0")
    entry = plain_entry(99, kind="decision", outcome="released")
    at = written[1].recorded_at
    forged = Record.chained(
        entry,
        seq=3,
        recorded_at=at,
        prev_hash=written[1].hash,
        hash=record_hash(written[1].hash, 3, at, entry),
    )
    async with store.engine.begin() as conn:
        await conn.execute(insert(records).values(row_values(forged)))
    report = await verify_archive(store, None)
    assert report.broken is not None
    assert report.broken.seq == 4
    assert report.broken.why.startswith(PREV_HASH_MISMATCH)


async def test_rewritten_chain_is_caught_by_the_envelope_signature(store: ArchiveStore) -> None:
    """An intruder who edits an envelope and recomputes every hash cannot forge its signature."""
    written = await five_records(store)
    doc = json.loads(written[2].payload)
    doc["body"]["text"]["en"] = "something else"
    edited = {3: json.dumps(doc).encode()}
    prev = written[1].hash
    async with store.engine.begin() as conn:
        for record in written[2:]:
            changed = dataclasses.replace(record, payload=edited.get(record.seq, record.payload))
            digest = record_hash(prev, record.seq, record.recorded_at, changed)
            await conn.execute(
                update(records)
                .where(records.c.seq == record.seq)
                .values(payload=changed.payload, prev_hash=prev, hash=digest)
            )
            prev = digest
        await conn.execute(update(head).where(head.c.id == HEAD_ID).values(hash=prev))
    assert (await verify_archive(store, None)).ok
    report = await verify_archive(store, keyring(CICA, SCO))
    assert report.broken is not None
    assert report.broken.seq == 3
    assert report.broken.why.startswith("signature.bad")


async def test_edited_head_is_found(store: ArchiveStore) -> None:
    await five_records(store)
    await sql(store, "UPDATE archive_head SET hash = :h", h="f" * 64)
    report = await verify_archive(store, None)
    assert report.broken is not None
    assert report.broken.why.startswith("head mismatch")


async def test_unknown_signing_key_is_reported(store: ArchiveStore) -> None:
    await five_records(store)
    report = await verify_archive(store, keyring(CICA))
    assert report.broken is not None
    assert report.broken.seq == 2
    assert report.broken.why.startswith("signature.unknown_key")


async def test_rejected_envelopes_are_kept_without_judging_their_signature(
    store: ArchiveStore,
) -> None:
    forged = envelope(SCO, 7)
    forged["body"] = {"tampered": True}
    rejected = plain_entry(
        7,
        kind="envelope.in",
        outcome="rejected",
        reason="signature.bad",
        payload=json.dumps(forged).encode(),
    )
    await store.append([rejected, plain_entry(8, kind="envelope.in", payload=b"not json")])
    report = await verify_archive(store, keyring(CICA, SCO))
    assert report.ok, report.broken
    assert report.signatures_checked == 0


async def test_signature_field_must_match_the_payload(store: ArchiveStore) -> None:
    await store.append([envelope_entry(CICA, 1, signature="AAAA")])
    report = await verify_archive(store, keyring(CICA))
    assert report.broken is not None
    assert report.broken.why.startswith("signature field differs")
