"""What each kind of control request leads to, as plain data (pure): an ``Outcome`` of archive
entries, a send to a counterparty, local effects and the metrics to report.

The control worker (gateway.workers.control) decides against the live state and the archive,
then hands the decision to one of these builders; refusals go through gateway.workers.refusals.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING

from contracts.amqp import CONTENT_TYPE, OPERATOR_SYSTEM, REJECTED_EXCHANGE
from gateway.archive import Entry, Record
from gateway.core import publications
from gateway.core.control_requests import MALFORMED, ControlRequest, request_id_of
from gateway.core.outbound_decision import Accepted, Blocked, Held, Rejected
from gateway.core.publications import Outgoing
from gateway.core.replay import (
    Redeliver,
    Resend,
    ResendBlocked,
    answer,
    replay_header,
    request_entry,
)
from gateway.workers.events import Counted, consent_blocks
from gateway.workers.held_copies import quarantine_copy, rejected_copy
from gateway.workers.outcomes import Outcome, Send
from gateway.workers.refusals import Ending, Named, ended
from gateway.workers.submissions import Item, entry_for, held_status

if TYPE_CHECKING:
    from aio_pika.abc import AbstractIncomingMessage

SubmissionDecision = Accepted | Blocked | Rejected | Held


def refuse_message(
    message: AbstractIncomingMessage, now: datetime, reason: str, detail: str
) -> Outcome:
    """A message that is not a request this gateway acts on: gw.rejected, archived."""
    effects = [
        publications.held_copy(
            REJECTED_EXCHANGE,
            message.body,
            reason=reason,
            detail=detail,
            message_id=message.message_id,
            content_type=message.content_type,
            extra={"x-gw-stage": "control", "x-gw-system": message.user_id or ""},
        )
    ]
    request_id = request_id_of(message.body)
    if reason == MALFORMED and request_id is not None:
        effects.append(
            answer(
                "rejected",
                request_id,
                at=now,
                submission_id=None,
                envelope_id=None,
                type=None,
                reason=reason,
                detail=detail,
            )
        )
    entry = Entry(
        kind="control",
        outcome="rejected",
        occurred_at=now,
        payload=message.body,
        message_id=message.message_id,
        system=message.user_id,
        reason=reason,
        detail=detail,
    )
    return Outcome("rejected", entries=[entry], effects=effects)


def redelivered(
    request: ControlRequest,
    body: bytes,
    record: Record,
    result: Redeliver,
    now: datetime,
    user: str,
) -> Outcome:
    """An archived inbound envelope delivered to gw.deliver again, marked as a replay."""
    assert request.seq is not None
    delivery = redelivery(request.seq, result)
    entry = redelivery_entry(request, body, record, now, user)
    event = answer(
        "replayed",
        request.request_id,
        at=now,
        submission_id=None,
        envelope_id=result.envelope_id,
        type=result.type,
    )
    return Outcome("replayed", entries=[entry], effects=[delivery, event])


def redelivery(seq: int, result: Redeliver) -> Outgoing:
    """The envelope of record ``seq`` to gw.deliver again, with header x-gw-replay-of."""
    delivery = publications.delivery(
        result.payload, envelope_id=result.envelope_id, provider=result.provider, type=result.type
    )
    return replace(delivery, headers={**delivery.headers, **replay_header(seq)})


def redelivery_entry(
    request: ControlRequest, body: bytes, record: Record, now: datetime, user: str
) -> Entry:
    return request_entry(
        request,
        "replayed",
        at=now,
        body=body,
        system=user,
        record=record,
        detail="re-delivered to gw.deliver",
    )


def resend_blocked(
    request: ControlRequest,
    body: bytes,
    record: Record,
    result: ResendBlocked,
    now: datetime,
    user: str,
) -> Outcome:
    """One of our envelopes the third-party rule no longer lets go: to gw.quarantine."""
    assert request.seq is not None
    route, envelope = result.route, result.envelope
    envelope_id = str(envelope["id"])
    copy = quarantine_copy(record.payload, route, message_id=envelope_id, content_type=CONTENT_TYPE)
    copy = replace(copy, headers={**copy.headers, **replay_header(request.seq)})
    # The record's message_id: toward a third party the envelope's submission_id is ours.
    submission_id = record.message_id or str(envelope["originator"]["submission_id"])
    entry = request_entry(
        request,
        "quarantined",
        at=now,
        body=body,
        system=user,
        record=record,
        reason=route.reason,
        detail=route.detail,
    )
    event = answer(
        "blocked",
        request.request_id,
        at=now,
        submission_id=submission_id,
        envelope_id=envelope_id,
        type=str(envelope["type"]),
        reason=route.reason,
        detail=route.detail,
    )
    events = consent_blocks(route.missing, result.recipient)
    return Outcome("blocked", entries=[entry], effects=[copy, event], events=events)


def resent(
    request: ControlRequest, body: bytes, record: Record, result: Resend, now: datetime, user: str
) -> Outcome:
    """One of our envelopes going to its recipient again, unchanged."""
    assert request.seq is not None
    envelope_id, type_ = str(result.envelope["id"]), str(result.envelope["type"])
    submission_id = record.message_id or str(result.envelope["originator"]["submission_id"])
    passed = "released" if request.action == "release" else "replayed"
    entry = request_entry(
        request,
        passed,
        at=now,
        body=body,
        system=user,
        record=record,
        envelope_id=envelope_id,
        detail=f"envelope {envelope_id} re-sent to {result.recipient}",
    )
    event = answer(
        "replayed",
        request.request_id,
        at=now,
        submission_id=submission_id,
        envelope_id=envelope_id,
        type=type_,
    )
    send = Send(result.recipient, result.envelope, replay_header(request.seq))
    return Outcome("replayed", send=send, done=[entry], effects=[event])


def operator_submission(
    request: ControlRequest, item: Item, decision: SubmissionDecision, now: datetime, party: str
) -> Outcome:
    """An operator's submission, archived and answered as the outbound worker would."""
    delivery, rid = item.delivery, request.request_id
    entry = entry_for(item, party, now)
    if isinstance(decision, Held):
        event = replace(held_status(decision, OPERATOR_SYSTEM, rid, now), correlation_id=rid)
        return Outcome("held", entries=[entry], effects=[event])
    if isinstance(decision, Accepted):
        env = decision.envelope
        event = answer(
            "sent", rid, at=now, submission_id=rid, envelope_id=env["id"], type=env["type"]
        )
        send = Send(env["recipient"], env, {})
        return Outcome("sent", entries=[entry], send=send, effects=[event])
    if isinstance(decision, Blocked):
        route = decision.route
        event = answer(
            "blocked",
            rid,
            at=now,
            submission_id=rid,
            envelope_id=None,
            type=decision.submission.type,
            reason=route.reason,
            detail=route.detail,
        )
        copy = quarantine_copy(delivery.body, route, message_id=rid, content_type=CONTENT_TYPE)
        return Outcome("blocked", entries=[entry], effects=[copy, event])
    event = answer(
        "rejected",
        rid,
        at=now,
        submission_id=rid,
        envelope_id=None,
        type=None,
        reason=decision.reason,
        detail=decision.detail,
    )
    copy = rejected_copy(
        delivery.body,
        reason=decision.reason,
        detail=decision.detail,
        message_id=rid,
        content_type=CONTENT_TYPE,
        system=OPERATOR_SYSTEM,
    )
    return Outcome("rejected", entries=[entry], effects=[copy, event])


def reprocessed(
    request: ControlRequest,
    item: Item,
    record: Record,
    decision: SubmissionDecision,
    now: datetime,
    *,
    party: str,
    user: str,
) -> Outcome:
    """An archived submission decided again: forwarded now, or held with the new reason."""
    if isinstance(decision, Held):
        return _reprocessed_held(request, item, record, decision, now, party=party, user=user)
    if isinstance(decision, Accepted):
        return _reprocessed_sent(request, item, record, decision, now, party=party, user=user)
    return _reprocessed_refused(request, item.message.body, record, decision, now, user=user)


def _reprocessed_held(
    request: ControlRequest,
    item: Item,
    record: Record,
    decision: Held,
    now: datetime,
    *,
    party: str,
    user: str,
) -> Outcome:
    # It passes the rule now but waits for a person: a held record of its own.
    held = entry_for(item, party, now)
    step = request_entry(
        request,
        "held",
        at=now,
        body=item.message.body,
        system=user,
        record=record,
        reason=decision.need.reason,
        detail=decision.need.detail,
    )
    event = held_status(decision, OPERATOR_SYSTEM, record.message_id, now)
    event = replace(event, correlation_id=request.request_id)
    return Outcome("held", entries=[held, step], effects=[event])


def _reprocessed_sent(
    request: ControlRequest,
    item: Item,
    record: Record,
    decision: Accepted,
    now: datetime,
    *,
    party: str,
    user: str,
) -> Outcome:
    env = decision.envelope
    sent = entry_for(item, party, now)
    passed = "released" if request.action == "release" else "replayed"
    done = request_entry(
        request,
        passed,
        at=now,
        body=item.message.body,
        system=user,
        record=record,
        envelope_id=env["id"],
        detail=f"forwarded to {env['recipient']} as envelope {env['id']}",
    )
    event = answer(
        "replayed",
        request.request_id,
        at=now,
        submission_id=record.message_id,
        envelope_id=env["id"],
        type=env["type"],
    )
    assert request.seq is not None
    send = Send(env["recipient"], env, replay_header(request.seq))
    counted = Counted("outbound", env["type"], env["recipient"], "forwarded")
    return Outcome(
        "replayed", entries=[sent], send=send, done=[done], effects=[event], events=[counted]
    )


def _reprocessed_refused(
    request: ControlRequest,
    body: bytes,
    record: Record,
    decision: Blocked | Rejected,
    now: datetime,
    *,
    user: str,
) -> Outcome:
    if isinstance(decision, Blocked):
        reason, detail = decision.route.reason or "consent.missing", decision.route.detail
        ending = Ending("quarantined", "blocked", reason, detail)
        type_: str | None = decision.submission.type
    else:
        ending = Ending("rejected", "rejected", decision.reason, decision.detail)
        type_ = record.type
    named = Named(record.message_id)
    outcome = ended(
        request,
        body,
        record,
        ending,
        now,
        user=user,
        named=named,
        type_=type_,
        result=ending.status,
    )
    if record.outcome != ending.outcome:
        # It moves from one holding queue to the other: the copy goes where it now belongs.
        copy = (
            quarantine_copy(
                record.payload,
                decision.route,
                message_id=record.message_id,
                content_type=CONTENT_TYPE,
            )
            if isinstance(decision, Blocked)
            else rejected_copy(
                record.payload,
                reason=ending.reason,
                detail=ending.detail,
                message_id=record.message_id,
                content_type=CONTENT_TYPE,
                system=record.system,
            )
        )
        outcome.effects.insert(0, copy)
    return outcome
