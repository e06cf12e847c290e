"""What one archived record becomes when an operator replays or releases it: the pure part.

The running gateway's control worker decides each request (``gateway.core.control_requests``) with
the functions here, against its live state: a replay sees the consent registry, the roster and
the keys as they are now, not as they were when the message first passed. This module holds
what one archived record may become on replay, and the archive entries and status answers of a
request. Nothing here does I/O.

Which records each target takes
-------------------------------
- ``deliver``: an accepted inbound envelope (``envelope.in``, delivered or duplicate), verified
  again and re-published to the local ``gw.deliver`` with ``x-gw-replay-of: <seq>``.
- ``peer``: an envelope this gateway sent (``envelope.out``/``sent``), re-sent unchanged (same id
  and signature, so the receiver treats it by id) if the third-party rule still allows it now.
- ``reprocess``: a rejected or quarantined submission (``submission``), decided again from its
  original bytes; what passes now is forwarded as a new envelope, at most once per record.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Final

from contracts import ContractError, parse_envelope
from contracts.amqp import CONTENT_TYPE, OPERATOR_SYSTEM, REPLAY_OF_HEADER
from gateway.archive import Entry, Record
from gateway.core import publications
from gateway.core.consent import RouteDecision

# The control worker reads the request format from here as well as what a request becomes.
from gateway.core.control_requests import ControlRequest, Target
from gateway.core.inbound_decision import InboundContext, Refused, decide_envelope
from gateway.core.keys import Keyring
from gateway.core.outbound_decision import Delivery, OutboundContext, route_of
from gateway.core.provenance import known_from_envelope
from gateway.core.publications import Outgoing
from gateway.core.signing import SignatureError, verify_envelope

UNKNOWN_RECORD: Final = "replay.unknown_record"
NOT_REPLAYABLE: Final = "replay.not_replayable"
TOO_OLD: Final = "replay.too_old"
UNREADABLE: Final = "replay.unreadable_record"

# Kind and outcomes of the archived records each target can replay.
REPLAYABLE: Final[Mapping[Target, tuple[str, frozenset[str]]]] = {
    "deliver": ("envelope.in", frozenset({"delivered", "duplicate"})),
    "peer": ("envelope.out", frozenset({"sent"})),
    "reprocess": ("submission", frozenset({"rejected", "quarantined"})),
}


def reprocess_key(seq: int) -> str:
    """The claim of the one envelope an archived submission may become on re-processing.

    Keyed by the archived record rather than by the request: releasing the same submission
    twice, or replaying overlapping windows, re-sends that one envelope instead of a second.
    """
    return f"reprocess:{seq}"


# --- what one archived record becomes --------------------------------------------------------


@dataclass(frozen=True)
class Refusal:
    reason: str
    detail: str


@dataclass(frozen=True)
class Redeliver:
    """An inbound envelope verified again, to publish to the local gw.deliver."""

    payload: bytes
    envelope_id: str
    provider: str
    type: str


@dataclass(frozen=True)
class Resend:
    """One of our own envelopes that may go to its recipient again, unchanged."""

    envelope: dict[str, Any]
    recipient: str


@dataclass(frozen=True)
class ResendBlocked:
    """One of our own envelopes the third-party rule no longer lets go to its recipient."""

    envelope: dict[str, Any]
    recipient: str
    route: RouteDecision


def unknown_record(seq: int) -> Refusal:
    return Refusal(UNKNOWN_RECORD, f"the archive has no record {seq}")


def check_replayable(record: Record, target: Target) -> Refusal | None:
    kind, outcomes = REPLAYABLE[target]
    if record.kind == kind and record.outcome in outcomes:
        return None
    return Refusal(
        NOT_REPLAYABLE,
        f"record {record.seq} is {record.kind}/{record.outcome}; target {target} takes "
        f"{kind} records that are {' or '.join(sorted(outcomes))}",
    )


def _envelope_json(record: Record) -> dict[str, Any] | Refusal:
    try:
        data = json.loads(record.payload)
    except (ValueError, RecursionError):
        data = None
    if not isinstance(data, dict):
        return Refusal(UNREADABLE, f"record {record.seq} does not hold an envelope JSON object")
    return data


def decide_redelivery(record: Record, ctx: InboundContext) -> Redeliver | Refusal:
    """Verify an archived inbound envelope again (signature, schema, recipient).

    ``ctx.now`` should be the record's ``occurred_at``: the question is whether the envelope
    was good when it was accepted. Checked at today's date, the replay window and key expiry
    would refuse every older message, which is exactly what a back-office that lost data needs.
    """
    refusal = check_replayable(record, "deliver")
    if refusal is not None:
        return refusal
    raw = _envelope_json(record)
    if isinstance(raw, Refusal):
        return raw
    decision = decide_envelope(raw, ctx)
    if isinstance(decision, Refused):
        return Refusal(decision.reason, decision.detail)
    envelope = decision.envelope
    return Redeliver(record.payload, envelope.id, envelope.originator.party, envelope.type)


def decide_resend(
    record: Record, ctx: OutboundContext, own_keys: Keyring, max_age: timedelta
) -> Resend | ResendBlocked | Refusal:
    """May this envelope we sent go to its recipient again, now?

    Signature (with this Party's key), schema, recipient and the third-party rule are checked
    as of ``ctx.now``: a consent revoked since the first send stops the re-send. An envelope
    older than ``max_age`` is refused here, because the receiver's replay window would refuse
    it anyway (the same limit is assumed on both sides), silently for the operator.
    """
    refusal = check_replayable(record, "peer")
    if refusal is not None:
        return refusal
    raw = _envelope_json(record)
    if isinstance(raw, Refusal):
        return raw
    try:
        verify_envelope(raw, own_keys, ctx.now)
        envelope = parse_envelope(raw)
    except SignatureError as exc:
        return Refusal(exc.code, exc.detail)
    except ContractError as exc:
        return Refusal(exc.code, exc.message)
    if envelope.recipient not in ctx.counterparties:
        return Refusal(
            "route.unknown_recipient",
            f"recipient {envelope.recipient} is not a configured counterparty",
        )
    age = ctx.now - envelope.created_at
    if age > max_age:
        return Refusal(
            TOO_OLD,
            f"envelope {envelope.id} is {age.total_seconds():.0f} s old; receivers refuse "
            f"envelopes older than {max_age.total_seconds():.0f} s (re-submit it instead)",
        )
    route = route_of(known_from_envelope(raw, received=False), ctx)
    if not route.allowed:
        return ResendBlocked(raw, envelope.recipient, route)
    return Resend(raw, envelope.recipient)


def reprocess_delivery(record: Record) -> Delivery | Refusal:
    """The submission of an archived rejected/quarantined record, as it first arrived.

    The original content_type is not archived; the body is taken as JSON, which is what a
    fixed submission is (and what the contract requires).
    """
    refusal = check_replayable(record, "reprocess")
    if refusal is not None:
        return refusal
    return archived_delivery(record)


def archived_delivery(record: Record) -> Delivery:
    """An archived submission (rejected, quarantined or held) as it first arrived."""
    return Delivery(
        body=record.payload,
        message_id=record.message_id,
        user_id=record.system,
        content_type=CONTENT_TYPE,
        headers={},
        redelivered=False,
    )


def operator_delivery(request: ControlRequest) -> Delivery:
    """An operator's submission, treated as if system ``operator`` had published it."""
    assert request.submission is not None
    return Delivery(
        body=json.dumps(dict(request.submission), separators=(",", ":")).encode(),
        message_id=request.request_id,
        user_id=OPERATOR_SYSTEM,
        content_type=CONTENT_TYPE,
        headers={},
        redelivered=False,
    )


# --- what a request leaves behind ------------------------------------------------------------


def answer(
    status: str,
    request_id: str,
    *,
    at: datetime,
    submission_id: str | None,
    envelope_id: str | None,
    type: str | None,
    reason: str | None = None,
    detail: str | None = None,
    results: Sequence[Mapping[str, Any]] | None = None,
) -> Outgoing:
    """The status event answering a request: gw.status, correlation_id = request_id."""
    event = publications.status(
        status,
        system=OPERATOR_SYSTEM,
        at=at,
        submission_id=submission_id,
        envelope_id=envelope_id,
        type=type,
        reason=reason,
        detail=detail,
        results=results,
    )
    return replace(event, correlation_id=request_id)


def redelivery_result(
    seq: int, record: Record | None, result: Redeliver | Refusal
) -> dict[str, Any]:
    """One record's entry in the answer to a request re-delivering many: what the answer to a
    request for that record alone would say."""
    named: tuple[str | None, str | None, str | None]
    if isinstance(result, Redeliver):
        named = (None, result.envelope_id, result.type)
        status, reason, detail = "replayed", None, None
    else:
        named = (record.message_id, record.envelope_id, record.type) if record else (None,) * 3
        status, reason, detail = "rejected", result.reason, result.detail
    submission_id, envelope_id, type_ = named
    return {
        "seq": seq,
        "status": status,
        "submission_id": submission_id,
        "envelope_id": envelope_id,
        "type": type_,
        "reason": reason,
        "detail": detail,
    }


def request_entry(
    request: ControlRequest,
    outcome: str,
    *,
    at: datetime,
    body: bytes,
    system: str | None,
    record: Record | None = None,
    envelope_id: str | None = None,
    type: str | None = None,
    recipient: str | None = None,
    reason: str | None = None,
    detail: str | None = None,
) -> Entry:
    """The archive record of one replay or release request (kind ``replay``/``release``)."""
    return Entry(
        kind=request.record_kind,
        outcome=outcome,
        occurred_at=at,
        payload=body,
        message_id=request.request_id,
        system=system,
        envelope_id=envelope_id or (record.envelope_id if record else None),
        type=type or (record.type if record else None),
        provider=record.provider if record else None,
        recipient=recipient or (record.recipient if record else None),
        correlation_id=record.correlation_id if record else None,
        reason=reason,
        detail=detail,
        refers_to=request.seq,
        headers=(("x-gw-target", request.target or ""),),
    )


def replay_header(seq: int) -> dict[str, str]:
    return {REPLAY_OF_HEADER: str(seq)}
