"""Check a whole archive: the hash chain, the head, the signature of every archived envelope, and
the chain against its anchors: checkpoints and export bundles signed by someone a database
writer cannot sign as (see gateway.core.checkpoints)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from gateway.archive.chain import ChainVerifier
from gateway.archive.records import Record
from gateway.archive.store import ArchiveStore
from gateway.core.checkpoints import ChainPoint, chain_problem
from gateway.core.keys import Keyring, parse_rfc3339
from gateway.core.signing import SignatureError, verify_envelope

# Receipts travel as signed envelopes too (type "receipt"), so they are checked the same way.
SIGNED_KINDS = ("envelope.", "receipt.", "checkpoint.")
# A rejected envelope may have been rejected for its signature: it is kept as evidence, and
# checking it again would report the sender's fault as damage to our archive.
UNVERIFIED_OUTCOMES = frozenset({"rejected"})


@dataclass(frozen=True)
class Broken:
    seq: int
    kind: str | None
    why: str


@dataclass(frozen=True)
class Anchor:
    """A point the chain must still hold, and who vouches for it (for the report)."""

    point: ChainPoint
    source: str


@dataclass(frozen=True)
class VerifyReport:
    records: int
    head_seq: int
    head_hash: str
    signatures_checked: int
    broken: Broken | None = None
    anchors_checked: int = 0

    @property
    def ok(self) -> bool:
        return self.broken is None


def signed_envelope(record: Record) -> dict[str, Any] | None:
    """The signed envelope that ``record`` holds, if its signature is to be checked."""
    if not record.kind.startswith(SIGNED_KINDS) or record.outcome in UNVERIFIED_OUTCOMES:
        return None
    try:
        envelope = json.loads(record.payload)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(envelope, dict) or "signature" not in envelope:
        return None
    return envelope


def record_anchor(record: Record) -> tuple[str, Anchor] | None:
    """The anchor a checkpoint record holds, with the key of its source (one anchor per source
    counts: the highest, since a record's hash covers every record before it).

    Our own checkpoint names our head; a counterparty's names, in ``acknowledged``, the latest
    checkpoint of ours it holds: signed by a key no writer of this database has.
    """
    if record.kind not in ("checkpoint.in", "checkpoint.out"):
        return None
    try:
        envelope = json.loads(record.payload)
        body = envelope["body"]
    except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError):
        return None
    if record.kind == "checkpoint.out":
        point = ChainPoint.from_json(body)
        source = f"our checkpoint archived at seq {record.seq}"
        return None if point is None else ("own", Anchor(point, source))
    point = ChainPoint.from_json(body.get("acknowledged") if isinstance(body, dict) else None)
    source = f"{record.provider}'s checkpoint archived at seq {record.seq}"
    return None if point is None else (f"peer:{record.provider}", Anchor(point, source))


async def anchor_problem(store: ArchiveStore, anchor: Anchor, head_seq: int) -> Broken | None:
    point = anchor.point
    why = chain_problem(point, head_seq, await store.hash_at(point.seq))
    if why is None:
        return None
    return Broken(point.seq, None, f"{anchor.source} holds {point.short()}, but {why}")


def envelope_problem(record: Record, envelope: dict[str, Any], keyring: Keyring) -> str | None:
    """Why ``envelope`` (archived in ``record``) does not verify, or None.

    The key is judged at the envelope's own ``created_at``, so an archive stays verifiable
    after the keys that signed it have expired.
    """
    try:
        created_at = parse_rfc3339(str(envelope.get("created_at")))
    except ValueError:
        created_at = record.recorded_at
    try:
        verify_envelope(envelope, keyring, created_at)
    except SignatureError as exc:
        return f"{exc.code}: {exc.detail}"
    signature = envelope["signature"]
    value = signature.get("value") if isinstance(signature, dict) else None
    if record.signature is not None and record.signature != value:
        return "signature field differs from the archived envelope's signature"
    return None


async def verify_archive(
    store: ArchiveStore, keyring: Keyring | None, anchors: Sequence[Anchor] = ()
) -> VerifyReport:
    """Check every record up to the current head, then the chain against ``anchors`` (export
    bundles) and the checkpoints archived; report the FIRST broken record or anchor.

    Records appended while the check runs (beyond the head read at its start) are left for the
    next run. A chain alone cannot show that records were cut off its end or that it was
    recomputed: the anchors can, for every record up to the highest point they hold.
    """
    head_seq, head_hash = await store.head()
    chain = ChainVerifier()
    checked = 0
    broken: Broken | None = None
    found: dict[str, Anchor] = {}
    async for record in store.iter_records():
        if record.seq > head_seq:
            break
        if not chain.feed(record):
            reason = chain.report().reason or "broken"
            broken = Broken(record.seq, record.kind, reason)
            break
        envelope = signed_envelope(record) if keyring is not None else None
        if envelope is not None and keyring is not None:
            problem = envelope_problem(record, envelope, keyring)
            if problem is not None:
                broken = Broken(record.seq, record.kind, problem)
                break
            checked += 1
        anchored = record_anchor(record)
        if anchored is not None and _higher(anchored[1], found.get(anchored[0])):
            found[anchored[0]] = anchored[1]
    report = chain.report()
    if broken is None and report.head_seq < head_seq:
        broken = Broken(
            report.head_seq + 1, None, f"record missing: the archive head is at seq {head_seq}"
        )
    elif broken is None and report.head_hash != head_hash:
        broken = Broken(head_seq, None, "head mismatch: the last record is not the archive head")
    every = [*anchors, *found.values()]
    for anchor in every if broken is None else ():
        broken = await anchor_problem(store, anchor, report.head_seq)
        if broken is not None:
            break
    return VerifyReport(
        records=report.count,
        head_seq=report.head_seq,
        head_hash=report.head_hash,
        signatures_checked=checked,
        broken=broken,
        anchors_checked=len(every) if broken is None else 0,
    )


def _higher(anchor: Anchor, than: Anchor | None) -> bool:
    return than is None or anchor.point.seq >= than.point.seq
