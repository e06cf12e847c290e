"""Check a whole archive: the hash chain, the head, and the signature of every archived envelope."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from gateway.archive.chain import ChainVerifier
from gateway.archive.records import Record
from gateway.archive.store import ArchiveStore
from gateway.keys import Keyring, parse_rfc3339
from gateway.signing import SignatureError, verify_envelope

# Receipts travel as signed envelopes too (type "receipt"), so they are checked the same way.
SIGNED_KINDS = ("envelope.", "receipt.")
# A rejected envelope may have been rejected for its signature: it is kept as evidence, and
# checking it again would report the sender's fault as damage to our archive.
UNVERIFIED_OUTCOMES = frozenset({"rejected"})


@dataclass(frozen=True)
class Broken:
    seq: int
    kind: str | None
    why: str


@dataclass(frozen=True)
class VerifyReport:
    records: int
    head_seq: int
    head_hash: str
    signatures_checked: int
    broken: Broken | None = None

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


async def verify_archive(store: ArchiveStore, keyring: Keyring | None) -> VerifyReport:
    """Check every record up to the current head; report the FIRST broken one.

    Records appended while the check runs (beyond the head read at its start) are left for the
    next run. A chain alone cannot show that records were cut off its end; the head row can,
    unless it was rewritten too, which is why exported bundles carry a signed head hash.
    """
    head_seq, head_hash = await store.head()
    chain = ChainVerifier()
    checked = 0
    broken: Broken | None = None
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
    report = chain.report()
    if broken is None and report.head_seq < head_seq:
        broken = Broken(
            report.head_seq + 1, None, f"record missing: the archive head is at seq {head_seq}"
        )
    elif broken is None and report.head_hash != head_hash:
        broken = Broken(head_seq, None, "head mismatch: the last record is not the archive head")
    return VerifyReport(
        records=report.count,
        head_seq=report.head_seq,
        head_hash=report.head_hash,
        signatures_checked=checked,
        broken=broken,
    )
