"""The hash chain, pure: how a record's hash is computed and how a sequence of records is checked.

A record's hash is the SHA-256 of the RFC 8785 canonical JSON of every one of its fields (the
payload in base64), its sequence number, its recording time and the hash of the record before
it. Editing any field breaks that record's hash; removing, inserting or reordering records breaks
the sequence or the link of the record that follows.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from gateway.archive.records import Entry, Record, entry_values
from gateway.core.stamping import rfc3339

GENESIS = "0" * 64
HASH_VERSION = 1

HASH_MISMATCH = "hash mismatch"
PREV_HASH_MISMATCH = "prev_hash mismatch"
SEQ_GAP = "seq gap"


def canonical_json(document: dict[str, Any]) -> bytes:
    """RFC 8785 canonical JSON of a hash document, via orjson.

    For the documents hashed here (ASCII keys; values that are strings, integers below 2**53,
    null, or lists of those) sorted keys, no whitespace and no ASCII-escaping give exactly the
    RFC 8785 bytes (same escapes, lowercase ``\\u00xx``; see ``gateway.core.canonical``); a property
    test holds this against the ``rfc8785`` package, which is ten times slower and would cap the
    append rate. What orjson refuses (integers beyond 64 bits) goes to the standard library's
    encoder, which wrote every hash before this and still decides those.
    """
    try:
        return orjson.dumps(document, option=orjson.OPT_SORT_KEYS)
    except orjson.JSONEncodeError:
        return json.dumps(
            document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        ).encode("utf-8")


def record_hash(prev_hash: str, seq: int, recorded_at: datetime, entry: Entry) -> str:
    """SHA-256 hex of the canonical JSON of ``entry``'s fields plus its place in the chain.

    ``entry`` may be a :class:`Record`: only its :class:`Entry` fields are used, with ``seq``,
    ``recorded_at`` and ``prev_hash`` given explicitly.
    """
    document = entry_values(entry)
    document.update(v=HASH_VERSION, seq=seq, recorded_at=rfc3339(recorded_at), prev_hash=prev_hash)
    return hashlib.sha256(canonical_json(document)).hexdigest()


def computed_hash(record: Record) -> str:
    return record_hash(record.prev_hash, record.seq, record.recorded_at, record)


@dataclass(frozen=True)
class ChainReport:
    """The outcome of checking a chain: ``broken_seq`` is the first record that does not fit."""

    count: int
    head_seq: int
    head_hash: str
    broken_seq: int | None = None
    reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.broken_seq is None


class ChainVerifier:
    """Checks records one at a time, so an archive of any size streams through in constant memory.

    ``start_seq``/``start_hash`` let a check begin inside a chain (a bundle's range): the first
    record must then be ``start_seq + 1`` and link to ``start_hash``.
    """

    def __init__(self, start_seq: int = 0, start_hash: str = GENESIS) -> None:
        self._seq = start_seq
        self._hash = start_hash
        self._count = 0
        self._broken: tuple[int, str] | None = None

    def feed(self, record: Record) -> bool:
        """Check the next record; False once the chain is broken (later records are ignored)."""
        if self._broken is not None:
            return False
        problem = self._problem(record)
        if problem is not None:
            self._broken = (record.seq, problem)
            return False
        self._seq, self._hash = record.seq, record.hash
        self._count += 1
        return True

    def _problem(self, record: Record) -> str | None:
        # Link checks come before the hash check so that a reordered or inserted record is named
        # as such rather than as an edit.
        if record.seq != self._seq + 1:
            return f"{SEQ_GAP}: expected seq {self._seq + 1}, found {record.seq}"
        if record.prev_hash != self._hash:
            return f"{PREV_HASH_MISMATCH}: does not link to the record before it"
        if computed_hash(record) != record.hash:
            return f"{HASH_MISMATCH}: record content does not match its stored hash"
        return None

    def report(self) -> ChainReport:
        if self._broken is None:
            return ChainReport(count=self._count, head_seq=self._seq, head_hash=self._hash)
        seq, reason = self._broken
        return ChainReport(
            count=self._count,
            head_seq=self._seq,
            head_hash=self._hash,
            broken_seq=seq,
            reason=reason,
        )


def verify_chain(
    records: Iterable[Record], start_seq: int = 0, start_hash: str = GENESIS
) -> ChainReport:
    """Check ``records`` (in the order given) from the genesis, or from a known link."""
    verifier = ChainVerifier(start_seq, start_hash)
    for record in records:
        if not verifier.feed(record):
            break
    return verifier.report()
