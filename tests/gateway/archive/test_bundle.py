from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import rfc8785

from gateway.archive import ArchiveStore
from gateway.archive.bundle import BundleError, export_bundle, verify_bundle
from gateway.archive.chain import GENESIS

from .helpers import T0, ManualClock, Party, envelope_entry, keyring, plain_entry, sql

CICA, SCO = Party("CICA"), Party("SCO-RATS")
ALL = keyring(CICA, SCO)


async def three_hours(store: ArchiveStore, clock: ManualClock) -> None:
    """Records at T0, T0+1h and T0+2h (two, three and two of them)."""
    await store.append([envelope_entry(CICA, 1), envelope_entry(SCO, 2, kind="envelope.in")])
    clock.advance(3600)
    await store.append([envelope_entry(CICA, 3), plain_entry(4), envelope_entry(CICA, 5)])
    clock.advance(3600)
    await store.append([envelope_entry(CICA, 6), plain_entry(7, kind="decision")])


def files_in(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_bytes().splitlines()]


def write(path: Path, docs: list[dict[str, Any]]) -> None:
    path.write_bytes(b"".join(json.dumps(d).encode() + b"\n" for d in docs))


def resign(docs: list[dict[str, Any]], party: Party) -> list[dict[str, Any]]:
    """Recompute the manifest digest and signature as ``party`` would after changing ``docs``."""
    body = b"".join(json.dumps(d).encode() + b"\n" for d in docs[:-1])
    manifest = {k: v for k, v in docs[-1]["manifest"].items() if k != "signature"}
    manifest["sha256"] = hashlib.sha256(body).hexdigest()
    manifest["key_id"] = party.key.key_id
    signature = party.key.private_key.sign(rfc8785.dumps(manifest))
    manifest["signature"] = base64.b64encode(signature).decode()
    return [*docs[:-1], {"manifest": manifest}]


async def test_round_trip_of_a_middle_range(
    store: ArchiveStore, clock: ManualClock, tmp_path: Path
) -> None:
    await three_hours(store, clock)
    out = tmp_path / "exports" / "bundle.jsonl"
    out.parent.mkdir()
    hour = timedelta(hours=1)
    summary = await export_bundle(store, T0 + hour, T0 + 2 * hour, CICA.key, out)
    assert (summary.records, summary.first_seq, summary.last_seq) == (3, 3, 5)
    record_two = await store.get(2)
    assert record_two is not None
    docs = lines(out)
    assert docs[0]["header"]["prev_hash"] == record_two.hash
    assert [d["record"]["seq"] for d in docs[1:-1]] == [3, 4, 5]
    report = verify_bundle(out, ALL)
    assert report.ok, report.problem
    assert (report.records, report.first_seq, report.last_seq) == (3, 3, 5)
    assert (report.party, report.key_id) == ("CICA", CICA.key.key_id)
    assert files_in(out.parent) == ["bundle.jsonl"]


async def test_whole_archive_and_empty_range(
    store: ArchiveStore, clock: ManualClock, tmp_path: Path
) -> None:
    await three_hours(store, clock)
    everything = tmp_path / "all.jsonl"
    summary = await export_bundle(
        store, T0 - timedelta(days=1), T0 + timedelta(days=1), CICA.key, everything
    )
    assert summary.records == 7
    assert summary.head_hash == (await store.head())[1]
    assert lines(everything)[0]["header"]["prev_hash"] == GENESIS
    assert verify_bundle(everything, ALL).ok
    empty = tmp_path / "empty.jsonl"
    later = T0 + timedelta(days=2)
    assert (
        await export_bundle(store, later, later + timedelta(hours=1), CICA.key, empty)
    ).records == 0
    report = verify_bundle(empty, ALL)
    assert report.ok, report.problem
    assert report.records == 0


async def test_tampered_bundles_fail(
    store: ArchiveStore, clock: ManualClock, tmp_path: Path
) -> None:
    await three_hours(store, clock)
    out = tmp_path / "bundle.jsonl"
    await export_bundle(store, T0, T0 + timedelta(days=1), CICA.key, out)
    docs = lines(out)

    # 1. An edited payload: the manifest digest no longer matches.
    edited = json.loads(json.dumps(docs))
    edited[3]["record"]["payload"] = base64.b64encode(b'{"edited": true}').decode()
    write(tmp_path / "edited.jsonl", edited)
    report = verify_bundle(tmp_path / "edited.jsonl", ALL)
    assert not report.ok
    assert "sha256" in str(report.problem)

    # 2. The same edit with a recomputed digest: the signature no longer verifies.
    redigested = resign(edited, CICA)
    redigested[-1]["manifest"]["signature"] = docs[-1]["manifest"]["signature"]
    write(tmp_path / "redigested.jsonl", redigested)
    assert "signature does not verify" in str(
        verify_bundle(tmp_path / "redigested.jsonl", ALL).problem
    )

    # 3. Re-signed by someone whose key the verifier does not hold.
    intruder = Party("CICA", dataclasses.replace(Party("CICA").key, key_id="CICA-intruder"))
    docs_intruder = json.loads(json.dumps(edited))
    docs_intruder[0]["header"]["key_id"] = "CICA-intruder"
    write(tmp_path / "intruder.jsonl", resign(docs_intruder, intruder))
    assert "no public key" in str(verify_bundle(tmp_path / "intruder.jsonl", ALL).problem)

    # 4. Even the exporting Party cannot sign a broken chain into a valid bundle.
    write(tmp_path / "resigned.jsonl", resign(edited, CICA))
    report = verify_bundle(tmp_path / "resigned.jsonl", ALL)
    assert report.line == 4
    assert "hash mismatch" in str(report.problem)

    # 5. A deleted record line, re-signed: the next record does not follow.
    write(tmp_path / "deleted.jsonl", resign([*docs[:2], *docs[3:]], CICA))
    report = verify_bundle(tmp_path / "deleted.jsonl", ALL)
    assert "seq gap" in str(report.problem)

    # 6. Truncated file: no manifest at all.
    (tmp_path / "cut.jsonl").write_bytes(out.read_bytes()[:-10])
    assert not verify_bundle(tmp_path / "cut.jsonl", ALL).ok


async def test_envelope_signatures_are_checked_offline(
    store: ArchiveStore, clock: ManualClock, tmp_path: Path
) -> None:
    await three_hours(store, clock)
    out = tmp_path / "bundle.jsonl"
    await export_bundle(store, T0, T0 + timedelta(days=1), CICA.key, out)
    report = verify_bundle(out, keyring(CICA))
    assert not report.ok
    assert "signature.unknown_key" in str(report.problem)
    assert report.line == 3  # the SCO-RATS envelope


async def test_a_broken_archive_is_not_exported(
    store: ArchiveStore, clock: ManualClock, tmp_path: Path
) -> None:
    await three_hours(store, clock)
    await sql(store, "UPDATE archive_records SET payload = :p WHERE seq = 4", p=b"edited")
    out = tmp_path / "exports" / "bundle.jsonl"
    out.parent.mkdir()
    with pytest.raises(BundleError, match="broken at seq 4"):
        await export_bundle(store, T0, T0 + timedelta(days=1), CICA.key, out)
    assert files_in(out.parent) == []


async def test_an_expired_key_does_not_sign(store: ArchiveStore, tmp_path: Path) -> None:
    expired = dataclasses.replace(CICA.key, valid_to=T0)
    with pytest.raises(BundleError, match="not valid now"):
        await export_bundle(store, T0, T0 + timedelta(days=1), expired, tmp_path / "b.jsonl")
