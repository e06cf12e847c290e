"""Placing a batch of entries on the chain, pure: numbers, hashes, duplicates, new claims.

The store reads the chain's tail and the claims the batch's keys already have, calls
:func:`link` once, and writes what it returns in one transaction: the whole chain of a batch
is computed in one pass, before any statement that writes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from gateway.archive.chain import record_hash
from gateway.archive.records import DUPLICATE, Appended, Entry, Record


@dataclass(frozen=True)
class Linked:
    """A batch placed after ``(seq, hash)`` of the tail it was given."""

    appended: list[Appended]
    new_claims: list[tuple[str, int]]
    """(dedup_key, seq) of every entry that claims its key."""
    seq: int
    hash: str

    @property
    def records(self) -> list[Record]:
        return [a.record for a in self.appended]


def link(
    entries: Sequence[Entry],
    *,
    seq: int,
    prev_hash: str,
    recorded_at: datetime,
    claimed: Mapping[str, Record],
) -> Linked:
    """``entries`` chained after record ``seq`` (hash ``prev_hash``), all at ``recorded_at``.

    An entry whose ``dedup_key`` is in ``claimed``, or claimed earlier in this batch, becomes
    ``outcome="duplicate"`` referring to the claiming record; any other entry with a
    ``dedup_key`` claims it, unless it is a duplicate already (a duplicate must never become the
    original that later messages refer to).
    """
    claims = dict(claimed)
    appended: list[Appended] = []
    new_claims: list[tuple[str, int]] = []
    for entry in entries:
        seq += 1
        key = entry.dedup_key
        original = claims.get(key) if key is not None else None
        if original is not None:
            entry = replace(entry, outcome=DUPLICATE, refers_to=original.seq)
        digest = record_hash(prev_hash, seq, recorded_at, entry)
        record = Record.chained(
            entry, seq=seq, recorded_at=recorded_at, prev_hash=prev_hash, hash=digest
        )
        if key is not None and original is None and entry.outcome != DUPLICATE:
            claims[key] = record
            new_claims.append((key, seq))
        appended.append(Appended(record, original))
        prev_hash = digest
    return Linked(appended, new_claims, seq, prev_hash)
