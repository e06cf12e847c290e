"""verify_archive against its anchors: checkpoints archived and export bundles kept elsewhere."""

from __future__ import annotations

import itertools
import json
from datetime import timedelta
from pathlib import Path

from gateway.archive import ArchiveStore, Entry
from gateway.archive.bundle import export_bundle, verify_bundle
from gateway.archive.verify import Anchor, verify_archive
from gateway.core.checkpoints import ChainPoint, Checkpoint, checkpoint_envelope
from gateway.workers.checkpoints import checkpoint_entry
from tests.support.tampering import rechain_without, truncate

from .helpers import T0, Party, envelope_entry, keyring, plain_entry

CICA, SCO = Party("CICA"), Party("SCO-RATS")
_ids = itertools.count(1)


def new_id() -> str:
    return f"01960f7e-0000-7000-8000-{next(_ids):012x}"


async def own_checkpoint(store: ArchiveStore) -> ChainPoint:
    """CICA's checkpoint of its head to SCO-RATS, archived as the sender does."""
    head = ChainPoint(*await store.head())
    envelope = checkpoint_envelope(
        Checkpoint(head, None, None),
        party="CICA",
        recipient="SCO-RATS",
        now=T0,
        new_id=new_id,
        key=CICA.key,
    )
    await store.append([checkpoint_entry(envelope, T0)])
    return head


async def peer_checkpoint(store: ArchiveStore, acknowledged: ChainPoint) -> None:
    """SCO-RATS's checkpoint, acknowledging one of CICA's, archived as the receiver does."""
    envelope = checkpoint_envelope(
        Checkpoint(ChainPoint(3, "c" * 64), None, acknowledged),
        party="SCO-RATS",
        recipient="CICA",
        now=T0,
        new_id=new_id,
        key=SCO.key,
    )
    entry = Entry(
        kind="checkpoint.in",
        outcome="archived",
        occurred_at=T0,
        payload=json.dumps(envelope).encode(),
        envelope_id=envelope["id"],
        type="checkpoint",
        provider="SCO-RATS",
        recipient="CICA",
        signature=envelope["signature"]["value"],
    )
    await store.append([entry])


async def exchange(store: ArchiveStore) -> ChainPoint:
    """Records 1-5, CICA's checkpoint of seq 5 (6), a record (7), SCO-RATS's echo (8), 9-10."""
    await store.append([envelope_entry(CICA, n) for n in range(1, 6)])
    checkpointed = await own_checkpoint(store)
    await store.append([plain_entry(7)])
    await peer_checkpoint(store, checkpointed)
    await store.append([plain_entry(9), plain_entry(10)])
    return checkpointed


async def test_checkpoints_of_an_intact_archive_hold(store: ArchiveStore) -> None:
    await exchange(store)
    report = await verify_archive(store, keyring(CICA, SCO))
    assert report.ok, report.broken
    assert report.anchors_checked == 2
    assert report.signatures_checked == 7


async def test_removed_records_and_a_recomputed_chain_are_caught(store: ArchiveStore) -> None:
    """The intruder removes record 3 and rechains: every hash and signature is right again,
    but the record the peer acknowledged (seq 5) is no longer the one it signed for."""
    await exchange(store)
    await rechain_without(store, {3})
    report = await verify_archive(store, keyring(CICA, SCO))
    assert report.broken is not None
    assert report.broken.seq == 5
    assert "checkpoint archived at seq" in report.broken.why
    assert "the chain was rewritten" in report.broken.why


async def test_forged_peer_checkpoint_breaks_the_archive(store: ArchiveStore) -> None:
    """Anchors only count when the peer signed them: an intruder cannot plant a new one."""
    await exchange(store)
    forger = Party("SCO-RATS")  # a key of the right name, not the pinned one
    envelope = checkpoint_envelope(
        Checkpoint(ChainPoint(1, "d" * 64), None, ChainPoint(1, "d" * 64)),
        party="SCO-RATS",
        recipient="CICA",
        now=T0,
        new_id=new_id,
        key=forger.key,
    )
    forged = plain_entry(11, kind="checkpoint.in", payload=json.dumps(envelope).encode())
    await store.append([forged])
    report = await verify_archive(store, keyring(CICA, SCO))
    assert report.broken is not None
    assert report.broken.seq == 11
    assert report.broken.why.startswith("signature.bad")


async def test_truncation_hidden_from_the_chain_is_caught_by_the_last_bundle(
    store: ArchiveStore, tmp_path: Path
) -> None:
    await exchange(store)
    bundle = tmp_path / "bundle.jsonl"
    await export_bundle(store, T0 - timedelta(days=1), T0 + timedelta(days=1), CICA.key, bundle)
    checked = verify_bundle(bundle, keyring(CICA, SCO))
    assert checked.ok, checked.problem
    assert checked.head_seq == 10
    anchor = Anchor(ChainPoint(10, str(checked.head_hash)), "export bundle bundle.jsonl")

    await truncate(store, 8)
    # The chain alone cannot tell: the head was moved back with the records.
    assert (await verify_archive(store, keyring(CICA, SCO))).ok
    report = await verify_archive(store, keyring(CICA, SCO), [anchor])
    assert report.broken is not None
    assert report.broken.seq == 10
    assert report.broken.why.startswith("export bundle bundle.jsonl holds seq 10")
    assert "the archive ends at seq 8" in report.broken.why
