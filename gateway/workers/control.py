"""The control worker: operator requests on gw.control -> decisions -> archive -> effects -> ack.

``gw.control`` is internal: only this Party's gateway user may write it, and the worker only
accepts messages whose AMQP ``user_id`` is that user (RabbitMQ validates ``user_id`` against
the connection), so a back-office system cannot replay, release or submit as the operator.

Requests are decided one at a time, in order: each may depend on what the one before changed
(a release after the grant that allows it). Per request: decide (pure, gateway.core.replay, against
the live state), archive, send to the peer if there is something to send (held and retried
while the peer is unreachable, like the outbound worker), archive the request's own record,
then in one broker transaction the local effects (re-delivery, holding-queue copies, the
answer on gw.status) and the ack.

Re-deliveries (``replay`` to ``deliver``, of one record or of many: gateway.workers.redeliveries)
change nothing a later decision reads and send nothing to a peer, so a run of them (up to
MAX_RUN_RECORDS records) is decided in order, archived in one append and committed in one broker
transaction: 100,000 records would otherwise pay a commit and a transaction each.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from aio_pika.abc import AbstractIncomingMessage

from contracts.amqp import OPERATOR_SYSTEM
from gateway import topology
from gateway.amqp import PublishRefused
from gateway.archive import Appended, Entry, Record
from gateway.core import publications
from gateway.core.control_requests import (
    MAX_SEQS,
    REVIEW_ACTIONS,
    UNAUTHORIZED,
    ControlRequest,
    RequestError,
    parse_control_request,
)
from gateway.core.inbound_decision import InboundContext
from gateway.core.keys import Keyring
from gateway.core.outbound_decision import Accepted, Delivery, OutboundContext, decide_submission
from gateway.core.replay import (
    Refusal,
    ResendBlocked,
    answer,
    decide_redelivery,
    decide_resend,
    operator_delivery,
    reprocess_delivery,
    reprocess_key,
    unknown_record,
)
from gateway.core.stamping import new_envelope_id
from gateway.metrics import GatewayMetrics
from gateway.workers import control_outcomes as outcomes
from gateway.workers.base import Worker
from gateway.workers.batches import Batcher
from gateway.workers.outcomes import Outcome, Send
from gateway.workers.ports import Archive, Channel, Publisher
from gateway.workers.redeliveries import decide_all, redelivered_many
from gateway.workers.refusals import refused
from gateway.workers.retry import DEFAULT_RETRY, RetryPolicy
from gateway.workers.review import ReviewDecider
from gateway.workers.submissions import Item, submission_key

log = structlog.get_logger(__name__)

# Only runs of re-deliveries share a batch's archive append and transaction; the rest go one
# by one. A lone request does not linger (Batcher), so these cost nothing at low load.
BATCH_SIZE = 256
BATCH_LINGER_S = 0.004
# Records in one run's archive append and broker transaction, at most: a batch of requests
# naming many records each (up to MAX_SEQS) is split into runs of whole requests.
MAX_RUN_RECORDS = MAX_SEQS


class ControlWorker(Worker[Sequence[AbstractIncomingMessage]]):
    """gw.control's requests, one at a time, through decide -> archive -> send -> commit."""

    name = "control"

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
        self._batcher = Batcher(BATCH_SIZE, BATCH_LINGER_S)
        super().__init__(
            channel=channel,
            source=self._batcher,
            archive=archive,
            metrics=metrics,
            on_state_lost=on_state_lost,
            prepare=prepare,
            # A request is never held: one that fails goes back to its queue at once.
            max_attempts=1,
            retry=retry,
        )
        self._party = party
        self._user = gateway_user
        self._publishers = publishers
        self._own_keys = own_keys
        self._max_age = max_envelope_age
        self._outbound_context = outbound_context
        self._inbound_context = inbound_context
        self._review = ReviewDecider(
            party=party,
            gateway_user=gateway_user,
            archive=archive,
            roles=review_roles,
            outbound_context=outbound_context,
        )

    async def consume(self) -> None:
        await self._channel.consume(topology.CONTROL, self._batcher.on_message)

    async def take(self, batch: Sequence[AbstractIncomingMessage]) -> None:
        run: list[AbstractIncomingMessage] = []
        records = 0
        for message in batch:
            size = self._redelivery_size(message)
            if run and (not size or records + size > MAX_RUN_RECORDS):
                await self.redeliver_all(run)
                run, records = [], 0
            if size:
                run.append(message)
                records += size
            else:
                await self.process(message)
        if run:
            await self.redeliver_all(run)

    def _redelivery_size(self, message: AbstractIncomingMessage) -> int:
        """How many records ``message`` re-delivers; 0 if it is not a re-delivery request."""
        if message.user_id != self._user:
            return 0
        try:
            request = parse_control_request(message.body)
        except RequestError:
            return 0
        if request.action != "replay" or request.target != "deliver":
            return 0
        return len(request.seqs) or 1

    async def redeliver_all(self, run: Sequence[AbstractIncomingMessage]) -> None:
        """A run of re-delivery requests: decided in order, archived in one append, their
        effects and the ack in one broker transaction; the whole run goes back on a failure."""
        now = datetime.now(UTC)
        try:
            await self._prepare()
            requests = [parse_control_request(message.body) for message in run]
            known = await self._archive.get_many(
                seq for r in requests for seq in (r.seqs or (r.seq,)) if seq is not None
            )
            decided = [await self._handle(message, now, known) for message in run]
            appended = await self._append([e for o in decided for e in (*o.entries, *o.done)])
            if any(a.is_duplicate for a in appended):
                raise RuntimeError("a re-delivery's record claimed an existing key")
        except Exception:
            log.exception("control.failed", requests=len(run), first=run[0].message_id)
            self._on_state_lost()
            await self.give_back(run)
            await asyncio.sleep(self._retry.failed_request_s)
            return
        effects = [effect for outcome in decided for effect in outcome.effects]
        events = [event for outcome in decided for event in outcome.events]
        if await self.commit(effects, run[-1], events, stage=None, requests=len(run)):
            for message, outcome in zip(run, decided, strict=True):
                log.debug("control.decided", request_id=message.message_id, decision=outcome.result)
            results = Counter(outcome.result for outcome in decided)
            records = sum(len(outcome.entries) for outcome in decided)
            log.info("control.decided_run", requests=len(run), records=records, **results)

    async def process(self, message: AbstractIncomingMessage) -> None:
        now = datetime.now(UTC)
        try:
            # Inside the try: with the archive down, the request waits; the worker goes on.
            await self._prepare()
            outcome = await self._handle(message, now)
            if not await self._archive_and_send(message, outcome):
                return
        except Exception:
            log.exception("control.failed", message_id=message.message_id)
            self._on_state_lost()
            await self.give_back([message])
            await asyncio.sleep(self._retry.failed_request_s)
            return
        committed = await self.commit(
            outcome.effects, message, outcome.events, stage=None, message_id=message.message_id
        )
        if committed:
            log.info("control.decided", request_id=message.message_id, decision=outcome.result)

    async def _archive_and_send(self, message: AbstractIncomingMessage, outcome: Outcome) -> bool:
        """Archive the outcome, send what it sends, archive what follows: False when the
        request went back to its queue."""
        appended = await self._append(outcome.entries)
        if any(a.is_duplicate for a in appended):
            # Another replica claimed the same envelope between our look-up and our commit:
            # decide again, and the claim's path (its envelope, re-checked) is taken.
            self._on_state_lost()
            await self.give_back([message])
            return False
        if outcome.send is not None and not await self._forward(outcome.send):
            await self.give_back([message])
            return False
        await self._append(outcome.done)
        return True

    async def _handle(
        self,
        message: AbstractIncomingMessage,
        now: datetime,
        known: Mapping[int, Record] | None = None,
    ) -> Outcome:
        """Decide one request; ``known`` holds archive records already read for a run."""
        body = message.body
        if message.user_id != self._user:
            return outcomes.refuse_message(
                message,
                now,
                UNAUTHORIZED,
                f"gw.control takes requests from the gateway's broker user {self._user} only, "
                f"not from {message.user_id!r}",
            )
        try:
            request = parse_control_request(body)
        except RequestError as exc:
            return outcomes.refuse_message(message, now, exc.code, exc.detail)
        if request.action == "submit":
            delivery = operator_delivery(request)
            return await self._submission(message, request, delivery, None, now)
        if request.seqs:
            return await self._redeliver_many(request, now, known)
        assert request.seq is not None
        if known is not None and request.seq in known:
            record: Record | None = known[request.seq]
        else:
            record = await self._archive.get(request.seq)
        if record is None:
            return self._refused(request, body, None, unknown_record(request.seq), now)
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

    # --- decisions --------------------------------------------------------------------------

    def _refused(
        self,
        request: ControlRequest,
        body: bytes,
        record: Record | None,
        refusal: Refusal,
        now: datetime,
    ) -> Outcome:
        return refused(request, body, record, refusal.reason, refusal.detail, now, user=self._user)

    def _redeliver(
        self, request: ControlRequest, body: bytes, record: Record, now: datetime
    ) -> Outcome:
        result = decide_redelivery(record, self._inbound_context(record.occurred_at))
        if isinstance(result, Refusal):
            return self._refused(request, body, record, result, now)
        return outcomes.redelivered(request, body, record, result, now, self._user)

    async def _redeliver_many(
        self, request: ControlRequest, now: datetime, known: Mapping[int, Record] | None
    ) -> Outcome:
        if known is None:
            known = await self._archive.get_many(request.seqs)
        decided = decide_all(request.seqs, known, self._inbound_context)
        return redelivered_many(request, decided, now, self._user)

    def _resend(
        self, request: ControlRequest, body: bytes, record: Record, now: datetime
    ) -> Outcome:
        """Re-send ``record`` (an envelope we sent) unchanged, if the rule allows it now."""
        ctx = self._outbound_context(now)
        result = decide_resend(record, ctx, self._own_keys, self._max_age)
        if isinstance(result, Refusal):
            return self._refused(request, body, record, result, now)
        if isinstance(result, ResendBlocked):
            return outcomes.resend_blocked(request, body, record, result, now, self._user)
        return outcomes.resent(request, body, record, result, now, self._user)

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
        claimed = await self._archive.claimed(key)
        if claimed is not None:
            return self._already(request, message.body, record, claimed, now)
        ctx = self._outbound_context(now)
        decision = decide_submission(delivery, ctx)
        if isinstance(decision, Accepted):
            decision.apply(ctx.state, delivery.message_id or "", now)
        item = Item(message, delivery, key, decision)
        if record is None:
            return outcomes.operator_submission(request, item, decision, now, self._party)
        return outcomes.reprocessed(
            request, item, record, decision, now, party=self._party, user=self._user
        )

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

    # --- I/O --------------------------------------------------------------------------------

    async def _append(self, entries: Sequence[Entry]) -> list[Appended]:
        return await self._archive.append(entries) if entries else []

    async def _forward(self, send: Send) -> bool:
        frame = publications.frame(
            [send.envelope], frame_id=new_envelope_id(), exchange=topology.inbound_from(self._party)
        )
        frame = replace(frame, headers=dict(send.headers))
        publisher = self._publishers[send.recipient]

        def unavailable(attempt: int, exc: PublishRefused) -> None:
            log.warning(
                "control.counterparty_unavailable",
                recipient=send.recipient,
                attempt=attempt,
                error=str(exc),
            )

        return await self.forward(lambda: publisher.publish_all([frame]), unavailable)
