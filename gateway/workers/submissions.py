"""What the outbound worker does with each submission of a batch, as plain data (pure).

For every submission: its archive entry (``entry_for``), and, once archived and forwarded, what
the batch's broker transaction publishes (status events, copies to gw.rejected/gw.quarantine)
and the metrics and logs it reports (``local_effects``). The worker (gateway.workers.outbound)
does the I/O; the control worker's operator submissions are archived the same way.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from contracts.frame import encode_envelope
from gateway.archive import Appended, Entry, Record
from gateway.core import publications
from gateway.core.consent import RouteDecision
from gateway.core.outbound_decision import (
    Accepted,
    Blocked,
    Delivery,
    Held,
    OutboundContext,
    OutboundDecision,
    Rejected,
    route_of,
)
from gateway.core.provenance import known_from_envelope
from gateway.core.publications import Outgoing
from gateway.core.review import held_headers
from gateway.workers.events import Counted, Effects, Logged, consent_blocks
from gateway.workers.held_copies import quarantine_copy, rejected_copy

if TYPE_CHECKING:
    from aio_pika.abc import AbstractIncomingMessage


def submission_key(system: str | None, message_id: str | None) -> str | None:
    if not system or not message_id:
        return None
    return f"submission:{system}:{message_id}"


@dataclass
class Item:
    """One source message on its way through a batch."""

    message: AbstractIncomingMessage
    delivery: Delivery
    key: str | None
    decision: OutboundDecision | None = None
    appended: Appended | None = None
    retry: bool = False  # its decision failed unexpectedly and it has attempts left
    # A redelivered submission that already became an envelope: that envelope again, if the
    # third-party rule still lets it go (resend), or why it no longer does (resend_blocked).
    resend: dict[str, Any] | None = None
    resend_blocked: RouteDecision | None = None

    @property
    def original(self) -> Record | None:
        """The record that claimed this submission's key before: it is a duplicate of it."""
        return self.appended.original if self.appended else None


def _entry_of_envelope(env: dict[str, Any], party: str, common: dict[str, Any]) -> Entry:
    return Entry(
        kind="envelope.out",
        outcome="sent",
        # The bytes the frame carries: one encoding, and the archive holds what was sent.
        payload=encode_envelope(env),
        envelope_id=env["id"],
        type=env["type"],
        provider=party,
        recipient=env["recipient"],
        correlation_id=env["correlation_id"],
        signature=env["signature"]["value"],
        derived_from=tuple(env["derived_from"]),
        **common,
    )


def entry_for(item: Item, party: str, now: datetime) -> Entry:
    """The archive entry of ``item``'s decision (a duplicate when it has none)."""
    d, decision = item.delivery, item.decision
    common: dict[str, Any] = {
        "occurred_at": now,
        "message_id": d.message_id,
        "system": d.user_id,
        "dedup_key": item.key,
    }
    if isinstance(decision, Accepted):
        return _entry_of_envelope(decision.envelope, party, common)
    if decision is None:
        return Entry(kind="submission", outcome="duplicate", payload=d.body, **common)
    if isinstance(decision, Rejected):
        return Entry(
            kind="submission",
            outcome="rejected",
            payload=d.body,
            type=decision.type,
            reason=decision.reason,
            detail=decision.detail,
            **common,
        )
    submission = decision.submission
    common.update(
        payload=d.body,
        type=submission.type,
        provider=party,
        recipient=submission.recipient,
        correlation_id=submission.correlation_id,
        derived_from=submission.derived_from,
    )
    if isinstance(decision, Blocked):
        route = decision.route
        return Entry(
            kind="submission",
            outcome="quarantined",
            reason=route.reason,
            detail=route.detail,
            **common,
        )
    # The archive is where held submissions wait: it survives restarts and is what
    # ``gateway review`` reads, with or without the gateway running.
    return Entry(
        kind="submission",
        outcome="held",
        reason=decision.need.reason,
        detail=decision.need.detail,
        headers=held_headers(decision.need, decision.submission.officer),
        **common,
    )


def resend_of(
    original: Record, ctx: OutboundContext
) -> tuple[dict[str, Any] | None, RouteDecision | None]:
    """The archived envelope ``original`` if the third-party rule lets it go again now, else
    the refusal; the same check as a new submission's (``route_of``)."""
    envelope = json.loads(original.payload)
    route = route_of(known_from_envelope(envelope, received=False), ctx)
    if not route.allowed:
        return None, route
    return envelope, None


def frames_of(items: Sequence[Item]) -> dict[str, list[dict[str, Any]]]:
    """The envelopes of a batch to forward, by recipient: new ones and allowed re-sends."""
    frames: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for item in items:
        if isinstance(item.decision, Accepted):
            env = item.decision.envelope
            frames[env["recipient"]].append(env)
        elif item.decision is None and item.resend is not None:
            frames[item.resend["recipient"]].append(item.resend)
    return frames


def held_status(
    decision: Held, system: str | None, submission_id: str | None, now: datetime
) -> Outgoing:
    """The ``held`` status of a submission waiting for review, for ``system``."""
    return publications.status(
        "held",
        system=system,
        at=now,
        submission_id=submission_id,
        envelope_id=None,
        type=decision.submission.type,
        reason=decision.need.reason,
        detail=decision.need.detail,
    )


def _status(item: Item, status: str, now: datetime, **fields: Any) -> Outgoing:
    d = item.delivery
    return publications.status(
        status, system=d.user_id, at=now, submission_id=d.message_id, **fields
    )


def _accepted(item: Item, decision: Accepted, now: datetime) -> Effects:
    env = decision.envelope
    event = _status(item, "sent", now, envelope_id=env["id"], type=env["type"])
    counted = Counted("outbound", env["type"], env["recipient"], "forwarded")
    return Effects([event], [counted])


def _blocked(item: Item, decision: Blocked, now: datetime) -> Effects:
    d, route, submission = item.delivery, decision.route, decision.submission
    copy = quarantine_copy(
        d.body, route, message_id=d.message_id, content_type=d.content_type, system=d.user_id or ""
    )
    event = _status(
        item,
        "blocked",
        now,
        envelope_id=None,
        type=submission.type,
        reason=route.reason,
        detail=route.detail,
    )
    counted = Counted(
        "outbound", submission.type, submission.recipient, "quarantined", route.reason
    )
    return Effects([copy, event], [*consent_blocks(route.missing, submission.recipient), counted])


def _held(item: Item, decision: Held, now: datetime) -> Effects:
    d, submission = item.delivery, decision.submission
    event = held_status(decision, d.user_id, d.message_id, now)
    counted = Counted(
        "outbound", submission.type, submission.recipient, "held", decision.need.reason
    )
    return Effects([event], [counted])


def _rejected(item: Item, decision: Rejected, now: datetime) -> Effects:
    d = item.delivery
    copy = rejected_copy(
        d.body,
        reason=decision.reason,
        detail=decision.detail,
        message_id=d.message_id,
        content_type=d.content_type,
        system=d.user_id,
    )
    event = _status(
        item,
        "rejected",
        now,
        envelope_id=None,
        type=decision.type,
        reason=decision.reason,
        detail=decision.detail,
    )
    counted = Counted("outbound", decision.type or "unknown", "none", "rejected", decision.reason)
    return Effects([copy, event], [counted])


def _resend_blocked(item: Item, route: RouteDecision, now: datetime) -> Effects:
    original = item.original
    assert original is not None
    recipient = original.recipient or "none"
    event = _status(
        item,
        "blocked",
        now,
        envelope_id=original.envelope_id,
        type=original.type,
        reason=route.reason,
        detail=f"not re-sent: {route.detail}",
    )
    counted = Counted(
        "outbound", original.type or "unknown", recipient, "quarantined", route.reason
    )
    return Effects([event], [*consent_blocks(route.missing, recipient), counted])


def _duplicate(item: Item, now: datetime) -> Effects:
    original = item.original
    event = _status(
        item,
        "duplicate",
        now,
        envelope_id=original.envelope_id if original else None,
        type=original.type if original else None,
        reason="submission.duplicate",
        detail="this message_id was already processed; nothing new was sent",
    )
    counted = Counted(
        "outbound",
        original.type if original and original.type else "unknown",
        original.recipient if original and original.recipient else "none",
        "duplicate",
    )
    return Effects([event], [counted])


def _effects_of(item: Item, now: datetime) -> Effects:
    decision = item.decision
    if isinstance(decision, Accepted):
        return _accepted(item, decision, now)
    if isinstance(decision, Blocked):
        return _blocked(item, decision, now)
    if isinstance(decision, Held):
        return _held(item, decision, now)
    if isinstance(decision, Rejected):
        return _rejected(item, decision, now)
    if item.resend_blocked is not None:
        return _resend_blocked(item, item.resend_blocked, now)
    return _duplicate(item, now)


def decided(item: Item) -> Logged:
    """The ``outbound.decided`` line of one submission."""
    d, decision = item.delivery, item.decision
    envelope = decision.envelope if isinstance(decision, Accepted) else None
    submission = decision.submission if isinstance(decision, Accepted | Blocked | Held) else None
    if isinstance(decision, Blocked):
        reason: str | None = decision.route.reason
    elif isinstance(decision, Held):
        reason = decision.need.reason
    else:
        reason = getattr(decision, "reason", None)
    fields = {
        "message_id": d.message_id,
        "system": d.user_id,
        "envelope_id": envelope["id"] if envelope else None,
        "type": submission.type if submission else getattr(decision, "type", None),
        "recipient": submission.recipient if submission else None,
        "decision": type(decision).__name__.lower() if decision else "duplicate",
        "reason": reason,
    }
    return Logged("info", "outbound.decided", fields)


def local_effects(items: Sequence[Item], now: datetime) -> Effects:
    """What a forwarded batch publishes with its ack (in order), and what it reports."""
    effects = Effects()
    for item in items:
        effects.add(_effects_of(item, now))
        effects.events.append(decided(item))
    return effects
