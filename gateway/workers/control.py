"""The control worker: operator requests on gw.control -> decisions -> archive -> effects -> ack.

``gw.control`` is internal: only this Party's gateway user may write it, and the worker only
accepts messages whose AMQP ``user_id`` is that user (RabbitMQ validates ``user_id`` against
the connection), so a back-office system cannot replay, release or submit as the operator.

Requests are decided one at a time, in order: each may depend on what the one before changed
(a release after the grant that allows it). Per request: decide (pure, gateway.replay, against
the live state), archive, send to the peer if there is something to send (held and retried
while the peer is unreachable, like the outbound worker), archive the request's own record,
then in one broker transaction the local effects (re-delivery, holding-queue copies, the
answer on gw.status) and the ack.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from aio_pika.abc import AbstractIncomingMessage

from contracts.amqp import OPERATOR_SYSTEM
from gateway import outgoing, topology
from gateway.amqp import PublishRefused, StaleBatch
from gateway.archive import Appended, Entry, Record
from gateway.inbound import InboundContext
from gateway.keys import Keyring
from gateway.metrics import GatewayMetrics
from gateway.outbound import (
    Accepted,
    Blocked,
    Delivery,
    Held,
    OutboundContext,
    Rejected,
    decide_submission,
)
from gateway.replay import (
    MALFORMED,
    REVIEW_ACTIONS,
    UNAUTHORIZED,
    UNKNOWN_RECORD,
    ControlRequest,
    Refusal,
    RequestError,
    ResendBlocked,
    answer,
    decide_redelivery,
    decide_resend,
    operator_delivery,
    parse_control_request,
    replay_header,
    reprocess_delivery,
    reprocess_key,
    request_entry,
    request_id_of,
)
from gateway.stamping import new_envelope_id
from gateway.workers.batches import Batcher
from gateway.workers.held_copies import quarantine_copy, rejected_copy
from gateway.workers.outcomes import Outcome, Send
from gateway.workers.ports import Archive, Channel, Publisher
from gateway.workers.retry import DEFAULT_RETRY, RetryPolicy, until_sent
from gateway.workers.review import ReviewDecider
from gateway.workers.submissions import Item, entry_for, held_status, submission_key

log = structlog.get_logger(__name__)


class ControlWorker:
    def __init__(
        self,
        *,
        party: str,
        gateway_user: str,
        channel: Channel,
        publishers: Mapping[str, Publisher],
        archive: Archive,
        metrics: GatewayMetrics,
        own_keys: Keyring,
        max_envelope_age: timedelta,
        outbound_context: Callable[[datetime], OutboundContext],
        inbound_context: Callable[[datetime], InboundContext],
        on_state_lost: Callable[[], Any],
        prepare: Callable[[], Awaitable[None]],
        review_roles: Collection[str] = ("liaison officer",),
        retry: RetryPolicy = DEFAULT_RETRY,
    ) -> None:
        self._party = party
        self._user = gateway_user
        self._channel = channel
        self._publishers = publishers
        self._archive = archive
        self._metrics = metrics
        self._own_keys = own_keys
        self._max_age = max_envelope_age
        self._outbound_context = outbound_context
        self._inbound_context = inbound_context
        self._on_state_lost = on_state_lost
        self._prepare = prepare
        self._retry = retry
        self._review = ReviewDecider(
            party=party,
            gateway_user=gateway_user,
            archive=archive,
            metrics=metrics,
            roles=review_roles,
            outbound_context=outbound_context,
        )
        self._batcher = Batcher(1, 0.0)
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        self._stopping.set()

    async def run(self, *, burst: bool = False) -> None:
        """Consume gw.control until stopped; in ``burst`` mode, return once nothing is waiting."""
        await self._channel.consume(topology.CONTROL, self._batcher.on_message)
        while (batch := await self._batcher.next_batch_or(self._stopping, burst=burst)) is not None:
            for message in batch:
                await self.process(message)

    async def process(self, message: AbstractIncomingMessage) -> None:
        now = datetime.now(UTC)
        try:
            # Inside the try: with the archive down, the request waits; the worker goes on.
            await self._prepare()
            outcome = await self._handle(message, now)
            appended = await self._append(outcome.entries)
            if any(a.is_duplicate for a in appended):
                # Another replica claimed the same envelope between our look-up and our commit:
                # decide again, and the claim's path (its envelope, re-checked) is taken.
                self._on_state_lost()
                await self._give_back(message)
                return
            if outcome.send is not None and not await self._forward(outcome.send):
                await self._give_back(message)
                return
            await self._append(outcome.done)
        except Exception:
            log.exception("control.failed", message_id=message.message_id)
            self._on_state_lost()
            await self._give_back(message)
            await asyncio.sleep(self._retry.failed_request_s)
            return
        try:
            await self._channel.commit(outcome.effects, message)
        except StaleBatch:
            log.warning("control.channel_lost", message_id=message.message_id)
            return
        log.info("control.decided", request_id=message.message_id, decision=outcome.result)

    async def _handle(self, message: AbstractIncomingMessage, now: datetime) -> Outcome:
        body = message.body
        if message.user_id != self._user:
            return self._refuse_message(
                message,
                now,
                UNAUTHORIZED,
                f"gw.control takes requests from the gateway's broker user {self._user} only, "
                f"not from {message.user_id!r}",
            )
        try:
            request = parse_control_request(body)
        except RequestError as exc:
            return self._refuse_message(message, now, exc.code, exc.detail)
        if request.action == "submit":
            delivery = operator_delivery(request)
            return await self._submission(message, request, delivery, None, now)
        assert request.seq is not None
        record = await self._archive.get(request.seq)
        if record is None:
            refusal = Refusal(UNKNOWN_RECORD, f"the archive has no record {request.seq}")
            return self._refused(request, body, None, refusal, now)
        if request.action in REVIEW_ACTIONS:
            return await self._review.decide(message, request, record, now)
        if request.target == "deliver":
            return self._redeliver(request, body, record, now)
        if request.target == "peer":
            return self._resend(request, body, record, now)
        original = reprocess_delivery(record)
        if isinstance(original, Refusal):
            return self._refused(request, body, record, original, now)
        return await self._submission(message, request, original, record, now)

    # --- outcomes ---------------------------------------------------------------------------

    def _refuse_message(
        self, message: AbstractIncomingMessage, now: datetime, reason: str, detail: str
    ) -> Outcome:
        """A message that is not a request this gateway acts on: gw.rejected, archived."""
        effects = [
            outgoing.held_copy(
                topology.REJECTED,
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

    def _refused(
        self,
        request: ControlRequest,
        body: bytes,
        record: Record | None,
        refusal: Refusal,
        now: datetime,
    ) -> Outcome:
        entry = request_entry(
            request,
            "rejected",
            at=now,
            body=body,
            system=self._user,
            record=record,
            reason=refusal.reason,
            detail=refusal.detail,
        )
        event = answer(
            "rejected",
            request.request_id,
            at=now,
            submission_id=record.message_id if record else None,
            envelope_id=record.envelope_id if record else None,
            type=record.type if record else None,
            reason=refusal.reason,
            detail=refusal.detail,
        )
        return Outcome("rejected", entries=[entry], effects=[event])

    def _redeliver(
        self, request: ControlRequest, body: bytes, record: Record, now: datetime
    ) -> Outcome:
        assert request.seq is not None
        result = decide_redelivery(record, self._inbound_context(record.occurred_at))
        if isinstance(result, Refusal):
            return self._refused(request, body, record, result, now)
        delivery = outgoing.delivery(
            result.payload,
            envelope_id=result.envelope_id,
            provider=result.provider,
            type=result.type,
        )
        delivery = replace(delivery, headers={**delivery.headers, **replay_header(request.seq)})
        entry = request_entry(
            request,
            "replayed",
            at=now,
            body=body,
            system=self._user,
            record=record,
            detail="re-delivered to gw.deliver",
        )
        event = answer(
            "replayed",
            request.request_id,
            at=now,
            submission_id=None,
            envelope_id=result.envelope_id,
            type=result.type,
        )
        return Outcome("replayed", entries=[entry], effects=[delivery, event])

    def _resend(
        self, request: ControlRequest, body: bytes, record: Record, now: datetime
    ) -> Outcome:
        """Re-send ``record`` (an envelope we sent) unchanged, if the rule allows it now."""
        assert request.seq is not None
        ctx = self._outbound_context(now)
        result = decide_resend(record, ctx, self._own_keys, self._max_age)
        if isinstance(result, Refusal):
            return self._refused(request, body, record, result, now)
        # The record's message_id: toward a third party the envelope's submission_id is ours.
        submission_id = record.message_id or str(result.envelope["originator"]["submission_id"])
        envelope_id, type_ = str(result.envelope["id"]), str(result.envelope["type"])
        if isinstance(result, ResendBlocked):
            route = result.route
            # Only providers whose consent is missing block the route (see OutboundWorker).
            for provider in sorted({provider for provider, _ in route.missing}):
                self._metrics.record_consent_block(provider, result.recipient)
            entry = request_entry(
                request,
                "quarantined",
                at=now,
                body=body,
                system=self._user,
                record=record,
                reason=route.reason,
                detail=route.detail,
            )
            copy = quarantine_copy(
                record.payload,
                route,
                message_id=envelope_id,
                content_type=topology.JSON_CONTENT_TYPE,
            )
            copy = replace(copy, headers={**copy.headers, **replay_header(request.seq)})
            event = answer(
                "blocked",
                request.request_id,
                at=now,
                submission_id=submission_id,
                envelope_id=envelope_id,
                type=type_,
                reason=route.reason,
                detail=route.detail,
            )
            return Outcome("blocked", entries=[entry], effects=[copy, event])
        passed = "released" if request.action == "release" else "replayed"
        entry = request_entry(
            request,
            passed,
            at=now,
            body=body,
            system=self._user,
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

    async def _submission(
        self,
        message: AbstractIncomingMessage,
        request: ControlRequest,
        delivery: Delivery,
        record: Record | None,
        now: datetime,
    ) -> Outcome:
        """Decide a submission: an operator's (``record`` None) or an archived one again."""
        if record is None:
            key = submission_key(OPERATOR_SYSTEM, request.request_id)
        else:
            key = reprocess_key(record.seq)
        assert key is not None
        body = message.body
        claimed = await self._archive.claimed(key)
        if claimed is not None:
            return self._already(request, body, record, claimed, now)
        ctx = self._outbound_context(now)
        decision = decide_submission(delivery, ctx)
        if isinstance(decision, Accepted):
            ctx.state.sent(
                decision.envelope,
                delivery.message_id or "",
                now,
                digest=decision.digest,
                known=decision.known,
            )
        item = Item(message, delivery, key, decision)
        if record is None:
            return self._operator_outcome(request, item, decision, now)
        return self._reprocess_outcome(request, item, record, decision, now)

    def _already(
        self,
        request: ControlRequest,
        body: bytes,
        record: Record | None,
        claimed: Record,
        now: datetime,
    ) -> Outcome:
        if record is not None and claimed.kind == "envelope.out":
            # Released before: the same envelope again, if the rule still allows it.
            return self._resend(request, body, claimed, now)
        if record is not None:
            refusal = Refusal(
                "replay.already_claimed", f"record {record.seq} was re-processed as {claimed.seq}"
            )
            return self._refused(request, body, record, refusal, now)
        # A redelivered operator request whose first attempt was archived: as the outbound
        # worker does for a redelivered submission, its envelope goes again (same id).
        send = None
        if claimed.kind == "envelope.out" and claimed.recipient:
            send = Send(claimed.recipient, json.loads(claimed.payload), {})
        event = answer(
            "duplicate",
            request.request_id,
            at=now,
            submission_id=request.request_id,
            envelope_id=claimed.envelope_id,
            type=claimed.type,
            reason="submission.duplicate",
            detail="this request was already processed; nothing new was sent",
        )
        return Outcome("duplicate", send=send, effects=[event])

    def _operator_outcome(
        self,
        request: ControlRequest,
        item: Item,
        decision: Accepted | Blocked | Rejected | Held,
        now: datetime,
    ) -> Outcome:
        """An operator's submission, archived and answered as the outbound worker would."""
        delivery = item.delivery
        entry = entry_for(item, self._party, now)
        rid = request.request_id
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
            copy = quarantine_copy(
                delivery.body, route, message_id=rid, content_type=topology.JSON_CONTENT_TYPE
            )
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
            content_type=topology.JSON_CONTENT_TYPE,
            system=OPERATOR_SYSTEM,
        )
        return Outcome("rejected", entries=[entry], effects=[copy, event])

    def _reprocess_outcome(
        self,
        request: ControlRequest,
        item: Item,
        record: Record,
        decision: Accepted | Blocked | Rejected | Held,
        now: datetime,
    ) -> Outcome:
        """An archived submission decided again: forwarded now, or held with the new reason."""
        rid, body = request.request_id, item.message.body
        if isinstance(decision, Held):
            # It passes the rule now but waits for a person: a held record of its own.
            held = entry_for(item, self._party, now)
            step = request_entry(
                request,
                "held",
                at=now,
                body=body,
                system=self._user,
                record=record,
                reason=decision.need.reason,
                detail=decision.need.detail,
            )
            event = replace(
                held_status(decision, OPERATOR_SYSTEM, record.message_id, now), correlation_id=rid
            )
            return Outcome("held", entries=[held, step], effects=[event])
        if isinstance(decision, Accepted):
            env = decision.envelope
            sent = entry_for(item, self._party, now)
            passed = "released" if request.action == "release" else "replayed"
            done = request_entry(
                request,
                passed,
                at=now,
                body=body,
                system=self._user,
                record=record,
                envelope_id=env["id"],
                detail=f"forwarded to {env['recipient']} as envelope {env['id']}",
            )
            event = answer(
                "replayed",
                rid,
                at=now,
                submission_id=record.message_id,
                envelope_id=env["id"],
                type=env["type"],
            )
            assert request.seq is not None
            send = Send(env["recipient"], env, replay_header(request.seq))
            self._metrics.record_outcome("outbound", env["type"], env["recipient"], "forwarded")
            return Outcome("replayed", entries=[sent], send=send, done=[done], effects=[event])
        if isinstance(decision, Blocked):
            outcome, status = "quarantined", "blocked"
            reason, detail = decision.route.reason or "consent.missing", decision.route.detail
            type_: str | None = decision.submission.type
        else:
            outcome, status = "rejected", "rejected"
            reason, detail, type_ = decision.reason, decision.detail, record.type
        entry = request_entry(
            request,
            outcome,
            at=now,
            body=body,
            system=self._user,
            record=record,
            type=type_,
            reason=reason,
            detail=detail,
        )
        event = answer(
            status,
            rid,
            at=now,
            submission_id=record.message_id,
            envelope_id=None,
            type=type_,
            reason=reason,
            detail=detail,
        )
        effects = [event]
        if record.outcome != outcome:
            # It moves from one holding queue to the other: the copy goes where it now belongs.
            copy = (
                quarantine_copy(
                    record.payload,
                    decision.route,
                    message_id=record.message_id,
                    content_type=topology.JSON_CONTENT_TYPE,
                )
                if isinstance(decision, Blocked)
                else rejected_copy(
                    record.payload,
                    reason=reason,
                    detail=detail,
                    message_id=record.message_id,
                    content_type=topology.JSON_CONTENT_TYPE,
                    system=record.system,
                )
            )
            effects.insert(0, copy)
        return Outcome(status, entries=[entry], effects=effects)

    # --- I/O --------------------------------------------------------------------------------

    async def _append(self, entries: Sequence[Entry]) -> list[Appended]:
        return await self._archive.append(entries) if entries else []

    async def _forward(self, send: Send) -> bool:
        frame = outgoing.frame(
            [send.envelope], frame_id=new_envelope_id(), exchange=topology.inbound_from(self._party)
        )
        frame = replace(frame, headers=dict(send.headers))
        publisher = self._publishers[send.recipient]

        def refused(attempt: int, exc: PublishRefused) -> None:
            log.warning(
                "control.counterparty_unavailable",
                recipient=send.recipient,
                attempt=attempt,
                error=str(exc),
            )

        return await until_sent(
            lambda: publisher.publish_all([frame]), self._retry, self._stopping, refused
        )

    async def _give_back(self, message: AbstractIncomingMessage) -> None:
        try:
            await self._channel.nack(message)
        except Exception:  # the channel is gone; the broker requeues on its own
            log.warning("control.nack_failed", message_id=message.message_id)
