"""What the inbound worker does with each envelope of a batch, as plain data (pure).

For every envelope (an ``Arrival``) and every frame refused whole (a ``FrameError``): its
archive entries (``entries``), and what the batch's broker transaction publishes (deliveries,
``delivered`` statuses, copies to gw.rejected) and the metrics and logs it reports
(``local_effects``). The worker (gateway.workers.inbound) decides and does the I/O.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any

import orjson

from contracts.amqp import CONTENT_TYPE, REJECTED_EXCHANGE
from gateway.archive import Entry
from gateway.core import junk, publications
from gateway.core.canonical import fast_path_accepts
from gateway.core.checkpoints import CHECKPOINT_TYPE, Checkpoint, CheckpointProblem
from gateway.core.inbound_decision import Refused, Verified
from gateway.core.receipts import Pending, receipt_body
from gateway.core.stamping import new_envelope_id, rfc3339
from gateway.workers.events import (
    CheckpointProblemSeen,
    Counted,
    Effects,
    EndToEnd,
    Event,
    Logged,
)

if TYPE_CHECKING:
    from aio_pika.abc import AbstractIncomingMessage

    from contracts import Envelope


def envelope_key(provider: str, envelope_id: str) -> str:
    return f"envelope:{provider}:{envelope_id}"


def receipt_key(provider: str, envelope_id: str) -> str:
    return f"receipt:{provider}:{envelope_id}"


def short(value: object) -> str | None:
    """A field of a refused envelope fit for a log line or an AMQP property: unverified input,
    so kept short, and only when it is encodable (no lone surrogate)."""
    if not isinstance(value, str):
        return None
    try:
        return value if len(value.encode()) <= 100 else None
    except UnicodeEncodeError:
        return None


def compact(obj: Mapping[str, Any]) -> bytes:
    """``obj`` as compact UTF-8 JSON, as the standard library's encoder writes it."""
    if fast_path_accepts(obj):
        # orjson writes the same bytes for these values (see contracts.frame.encode_envelope),
        # for a fraction of the CPU; it refuses lone surrogates, which the fallback escapes.
        try:
            return orjson.dumps(obj)
        except orjson.JSONEncodeError:
            pass
    try:
        return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()
    except UnicodeEncodeError:
        # A lone surrogate: legal as a JSON escape, not encodable as UTF-8, so kept escaped.
        return json.dumps(obj, separators=(",", ":")).encode()


@dataclass
class Arrival:
    """One envelope of one frame."""

    message: AbstractIncomingMessage
    raw: Mapping[str, Any]
    decision: Verified | Refused | None = None
    key: str | None = None
    deliver: bool = False
    receipt: dict[str, Any] | None = None
    resend_receipt: bytes | None = None
    status: Pending | None = None  # for a receipt: the sent envelope it settles
    sent_at: datetime | None = None  # for a receipt: when we sent the envelope it settles
    retry: bool = False  # processing failed unexpectedly and its frame has attempts left
    checkpoint: Checkpoint | None = None  # a new checkpoint from the counterparty
    checkpoint_problem: CheckpointProblem | None = None

    @cached_property
    def payload(self) -> bytes:
        """The envelope as archived, delivered or copied to gw.rejected: encoded once."""
        return compact(self.raw)

    def claimed_party(self) -> object:
        """The originator's party a refused envelope claims (unverified), if it has one."""
        originator = self.raw.get("originator")
        return originator.get("party") if isinstance(originator, Mapping) else None


@dataclass
class FrameError:
    """A frame refused whole, before any of its envelopes is looked at."""

    message: AbstractIncomingMessage
    reason: str
    detail: str

    @cached_property
    def evidence(self) -> junk.Evidence:
        return junk.evidence(self.message.body, self.message.content_type)


@dataclass
class Plan:
    arrivals: list[Arrival] = field(default_factory=list)
    bad_frames: list[FrameError] = field(default_factory=list)


def receipt_envelope(
    party: str, env: Envelope, raw: Mapping[str, Any], now: datetime
) -> dict[str, Any]:
    """The (unsigned) receipt ``party`` sends back for the delivered envelope ``env``."""
    return {
        "id": new_envelope_id(),
        "type": "receipt",
        "version": 1,
        "originator": {
            "party": party,
            "system": "gateway",
            "officer": None,
            "submission_id": env.id,
        },
        "recipient": env.originator.party,
        "created_at": rfc3339(now),
        "correlation_id": env.correlation_id,
        "in_reply_to": env.id,
        "derived_from": [],
        "handling": {"onward": "consent-required", "pre_approved": []},
        "body": receipt_body(raw, "delivered", now),
    }


# --- archive entries --------------------------------------------------------------------------


def entries(plan: Plan, party: str, now: datetime) -> list[Entry]:
    """The batch's archive entries: refused frames first, then each envelope's."""
    result = [
        Entry(
            kind="frame",
            outcome="rejected",
            occurred_at=now,
            payload=bad.evidence.payload,
            message_id=bad.message.message_id,
            reason=bad.reason,
            detail=bad.detail,
            headers=tuple(bad.evidence.headers.items()),
        )
        for bad in plan.bad_frames
    ]
    for arrival in plan.arrivals:
        result.extend(_entries_of(arrival, party, now))
    return result


def _refused_entry(arrival: Arrival, decision: Refused, now: datetime) -> Entry:
    raw = arrival.raw
    originator = raw.get("originator")
    return Entry(
        kind="envelope.in",
        outcome="rejected",
        occurred_at=now,
        payload=arrival.payload,
        message_id=arrival.message.message_id,
        envelope_id=str(raw.get("id")) if raw.get("id") else None,
        provider=str(originator.get("party")) if isinstance(originator, Mapping) else None,
        reason=decision.reason,
        detail=decision.detail,
    )


def _receipt_out_entry(
    receipt: Mapping[str, Any], party: str, env: Envelope, now: datetime
) -> Entry:
    return Entry(
        kind="receipt.out",
        outcome="sent",
        occurred_at=now,
        payload=compact(receipt),
        envelope_id=receipt["id"],
        type="receipt",
        provider=party,
        recipient=env.originator.party,
        correlation_id=env.correlation_id,
        signature=receipt["signature"]["value"],
        dedup_key=receipt_key(env.originator.party, env.id),
    )


def _entries_of(arrival: Arrival, party: str, now: datetime) -> list[Entry]:
    decision, payload = arrival.decision, arrival.payload
    if isinstance(decision, Refused):
        return [_refused_entry(arrival, decision, now)]
    assert isinstance(decision, Verified)
    env = decision.envelope
    common: dict[str, Any] = {
        "occurred_at": now,
        "message_id": arrival.message.message_id,
        "envelope_id": env.id,
        "type": env.type,
        "provider": env.originator.party,
        "recipient": env.recipient,
        "correlation_id": env.correlation_id,
        "signature": env.signature.value if env.signature else None,
        "payload": payload,
    }
    if env.type == "receipt":
        return [Entry(kind="receipt.in", outcome="delivered", **common)]
    common["dedup_key"] = arrival.key
    if env.type == CHECKPOINT_TYPE:
        # A repeated one (no checkpoint taken) is archived again as a duplicate of its claim.
        problem = arrival.checkpoint_problem
        return [
            Entry(
                kind="checkpoint.in",
                outcome="archived" if problem is None else "inconsistent",
                reason=problem.code if problem else None,
                detail=problem.detail if problem else None,
                **common,
            )
        ]
    if not arrival.deliver:
        return [Entry(kind="envelope.in", outcome="duplicate", **common)]
    attachments = env.body.get("attachments", [])
    delivered = Entry(
        kind="envelope.in",
        outcome="delivered",
        derived_from=env.derived_from,
        attachment_sha256=tuple(a["sha256"] for a in attachments if isinstance(a, dict)),
        **common,
    )
    if arrival.receipt is None:
        return [delivered]
    return [delivered, _receipt_out_entry(arrival.receipt, party, env, now)]


# --- what the batch publishes and reports -----------------------------------------------------


def local_effects(plan: Plan, now: datetime) -> Effects:
    """What a batch publishes with its ack (in order), and what it reports."""
    effects = Effects()
    for bad in plan.bad_frames:
        effects.add(_frame_refused(bad))
    for arrival in plan.arrivals:
        effects.add(_effects_of(arrival, now))
    return effects


def _frame_refused(bad: FrameError) -> Effects:
    copy = publications.held_copy(
        REJECTED_EXCHANGE,
        bad.evidence.payload,
        reason=bad.reason,
        detail=bad.detail,
        message_id=bad.message.message_id,
        content_type=bad.evidence.content_type,
        extra={"x-gw-stage": "inbound", **bad.evidence.headers},
    )
    logged = Logged(
        "warning",
        "inbound.frame_refused",
        {
            "message_id": bad.message.message_id,
            "sha256": bad.evidence.headers[junk.SHA256_HEADER],
            "bytes": len(bad.message.body),
            "reason": bad.reason,
            "decision": "rejected",
        },
    )
    return Effects([copy], [Counted("inbound", "unknown", "none", "rejected", bad.reason), logged])


def _refused(arrival: Arrival, decision: Refused) -> Effects:
    counted = Counted("inbound", str(arrival.raw.get("type")), "none", "rejected", decision.reason)
    logged = Logged(
        "warning",
        "inbound.refused",
        {
            "message_id": arrival.message.message_id,
            "envelope_id": short(arrival.raw.get("id")),
            "type": short(arrival.raw.get("type")),
            "provider": short(arrival.claimed_party()),
            "reason": decision.reason,
            "decision": "rejected",
        },
    )
    copy = publications.held_copy(
        REJECTED_EXCHANGE,
        arrival.payload,
        reason=decision.reason,
        detail=decision.detail,
        message_id=short(arrival.raw.get("id")),
        content_type=CONTENT_TYPE,
        extra={"x-gw-stage": "inbound"},
    )
    return Effects([copy], [counted, logged])


def _settled(arrival: Arrival, pending: Pending, env: Envelope, now: datetime) -> Effects:
    """A receipt for an envelope we sent: its submission is ``delivered``."""
    # Outbound end to end: from our decision on the submission to the peer's receipt.
    sent_at = arrival.sent_at or env.created_at
    seconds = max(0.0, (now - sent_at).total_seconds())
    status = publications.status(
        "delivered",
        system=pending.system,
        at=now,
        submission_id=pending.submission_id,
        envelope_id=env.body.get("envelope_id"),
        type=pending.type,
    )
    return Effects([status], [EndToEnd("outbound", env.originator.party, seconds)])


def _checkpoint_taken(arrival: Arrival, env: Envelope) -> list[Event]:
    provider = env.originator.party
    problem, checkpoint = arrival.checkpoint_problem, arrival.checkpoint
    if problem is not None:
        fields = {
            "provider": provider,
            "envelope_id": env.id,
            "reason": problem.code,
            "detail": problem.detail,
        }
        return [
            CheckpointProblemSeen(provider, problem.code),
            Logged("error", "checkpoint.inconsistent", fields),
        ]
    if checkpoint is not None:
        received = {"provider": provider, "seq": checkpoint.head.seq}
        return [Logged("info", "checkpoint.received", received)]
    return []


def _delivered(arrival: Arrival, env: Envelope, now: datetime) -> Effects:
    provider = env.originator.party
    logged = Logged(
        "info",
        "inbound.delivered",
        {
            "message_id": arrival.message.message_id,
            "envelope_id": env.id,
            "type": env.type,
            "provider": provider,
            "decision": "delivered",
        },
    )
    events: list[Event] = [
        Counted("inbound", env.type, provider, "delivered"),
        EndToEnd("inbound", provider, max(0.0, (now - env.created_at).total_seconds())),
        logged,
    ]
    delivery = publications.delivery(
        arrival.payload, envelope_id=env.id, provider=provider, type=env.type
    )
    return Effects([delivery], events)


def _effects_of(arrival: Arrival, now: datetime) -> Effects:
    decision = arrival.decision
    if isinstance(decision, Refused):
        return _refused(arrival, decision)
    assert isinstance(decision, Verified)
    env = decision.envelope
    if arrival.status is not None:
        return _settled(arrival, arrival.status, env, now)
    if env.type == CHECKPOINT_TYPE:
        return Effects([], _checkpoint_taken(arrival, env))
    if not arrival.deliver:
        if env.type == "receipt":
            return Effects()
        return Effects([], [Counted("inbound", env.type, env.originator.party, "duplicate")])
    return _delivered(arrival, env, now)
