"""Receipts: the body a receiving gateway signs, and the sender's book of envelopes awaiting one.

``ReceiptTracker`` semantics:

- ``expect`` registers a sent envelope. Expecting an id again with the same digest and
  counterparty (a re-forward after a crash) is a no-op that keeps the first ``sent_at``, so
  ``overdue`` counts from the first send; once settled, a re-expect does not make it pending
  again. The same id with another digest or counterparty is a bug and raises ValueError.
- ``settle`` checks the sender, then the digest, and returns the Pending it settled. A second
  receipt for an already settled envelope is expected (the peer re-sends its original receipt
  when it sees a duplicate): it is checked the same way and returns None, so the caller emits
  ``delivered`` only once. Settled ids are remembered for the last ``settled_memory``
  envelopes; beyond that a late duplicate receipt is checked against the envelope as archived
  (``archived``: a pending envelope is always in memory, so an archived one that is not pending
  was settled); without an archive it is ``receipt.unknown_envelope``.
- ``overdue`` returns each pending envelope at most once, when it has waited longer than
  ``after``; it stays pending (and counted) until its receipt arrives. ``overdue_count`` is
  how many of those returned are still waiting now.
"""

from __future__ import annotations

import heapq
from collections import Counter, OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from gateway.core.keys import format_rfc3339
from gateway.core.provenance import ArchivedEnvelopes
from gateway.core.signing import envelope_digest

ReceiptCode = Literal["receipt.unknown_envelope", "receipt.digest_mismatch", "receipt.wrong_sender"]


def receipt_body(
    envelope: Mapping[str, Any],
    status: Literal["delivered", "duplicate"],
    received_at: datetime,
) -> dict[str, Any]:
    """The body of the ``receipt`` for a received, signed envelope."""
    envelope_id = envelope.get("id")
    if not isinstance(envelope_id, str):
        raise ValueError("the envelope has no string id")
    return {
        "envelope_id": envelope_id,
        "envelope_sha256": envelope_digest(envelope),
        "status": status,
        "received_at": format_rfc3339(received_at),
    }


class ReceiptError(Exception):
    """A receipt that matches no envelope we sent; ``code`` is the rejection reason."""

    def __init__(self, code: ReceiptCode, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code: ReceiptCode = code
        self.detail = detail


@dataclass(frozen=True)
class Pending:
    envelope_id: str
    digest: str
    counterparty: str
    submission_id: str
    type: str
    sent_at: datetime
    system: str  # the submitting back-office system, told on gw.status


class ReceiptTracker:
    def __init__(
        self, *, settled_memory: int = 100_000, archived: ArchivedEnvelopes | None = None
    ) -> None:
        if settled_memory < 0:
            raise ValueError("settled_memory must not be negative")
        self._settled_memory = settled_memory
        self._archived = archived
        self._pending: dict[str, Pending] = {}
        self._settled: OrderedDict[str, Pending] = OrderedDict()
        self._by_sent_at: list[tuple[datetime, str]] = []
        self._counts: Counter[str] = Counter()
        self._flagged: set[str] = set()
        self._overdue_counts: Counter[str] = Counter()

    def expect(
        self,
        envelope_id: str,
        digest: str,
        counterparty: str,
        submission_id: str,
        type: str,
        sent_at: datetime,
        *,
        system: str,
    ) -> None:
        known = self._pending.get(envelope_id) or self._settled.get(envelope_id)
        if known is not None:
            if (known.digest, known.counterparty) != (digest, counterparty):
                raise ValueError(
                    f"envelope {envelope_id} is already expected with another digest or "
                    "counterparty"
                )
            return
        self._pending[envelope_id] = Pending(
            envelope_id, digest, counterparty, submission_id, type, sent_at, system
        )
        self._counts[counterparty] += 1
        heapq.heappush(self._by_sent_at, (sent_at, envelope_id))

    def settle(self, envelope_id: str, digest: str, sender: str) -> Pending | None:
        """The settled Pending, or None for a repeated receipt; raise ReceiptError otherwise."""
        pending = self._pending.get(envelope_id)
        if pending is None:
            settled = self._settled.get(envelope_id) or self._archived_sent(envelope_id)
            if settled is None:
                raise ReceiptError(
                    "receipt.unknown_envelope", f"no envelope {envelope_id!r} awaits a receipt"
                )
            _check(settled, digest, sender)
            return None
        _check(pending, digest, sender)
        del self._pending[envelope_id]
        self._counts[pending.counterparty] -= 1
        if envelope_id in self._flagged:
            self._flagged.discard(envelope_id)
            self._overdue_counts[pending.counterparty] -= 1
        self._settled[envelope_id] = pending
        while len(self._settled) > self._settled_memory:
            self._settled.popitem(last=False)
        return pending

    def _archived_sent(self, envelope_id: str) -> Pending | None:
        """A settled envelope no longer remembered, as the archive holds it."""
        found = self._archived.envelope(envelope_id) if self._archived is not None else None
        if found is None or found[1]:
            return None
        envelope = found[0]
        return Pending(
            envelope_id,
            envelope_digest(envelope),
            str(envelope.get("recipient")),
            "",
            str(envelope.get("type")),
            datetime.min,
            "",
        )

    def settled_count(self) -> int:
        """Settled envelopes remembered in memory."""
        return len(self._settled)

    def overdue(self, now: datetime, after: timedelta) -> list[Pending]:
        """Pending envelopes that became overdue since the last call, oldest first."""
        due: list[Pending] = []
        while self._by_sent_at and now - self._by_sent_at[0][0] > after:
            _, envelope_id = heapq.heappop(self._by_sent_at)
            pending = self._pending.get(envelope_id)
            if pending is not None:
                due.append(pending)
                self._flagged.add(envelope_id)
                self._overdue_counts[pending.counterparty] += 1
        return due

    def overdue_count(self, counterparty: str | None = None) -> int:
        """Envelopes ``overdue`` has returned that still wait for their receipt."""
        if counterparty is None:
            return len(self._flagged)
        return self._overdue_counts[counterparty]

    def pending_count(self, counterparty: str | None = None) -> int:
        """Envelopes awaiting a receipt from ``counterparty``, or from anyone when None."""
        if counterparty is None:
            return len(self._pending)
        return self._counts[counterparty]


def _check(pending: Pending, digest: str, sender: str) -> None:
    if sender != pending.counterparty:
        raise ReceiptError(
            "receipt.wrong_sender",
            f"envelope {pending.envelope_id} was sent to {pending.counterparty}, "
            f"receipt came from {sender}",
        )
    if digest != pending.digest:
        raise ReceiptError(
            "receipt.digest_mismatch",
            f"receipt for {pending.envelope_id} names sha256 {digest[:16]}..., "
            f"we sent {pending.digest[:16]}...",
        )
