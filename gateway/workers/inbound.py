"""The inbound worker: gw.inbound.<party> -> verify -> archive -> gw.deliver + ack -> receipts.

Each counterparty has its own queue and consuming channel, and batches are taken from the
queues in turn (see RoundRobin): a flood from one counterparty waits in its own queue.

Each AMQP message is a frame of envelopes; each envelope is verified, accepted or refused on its
own. Deliveries and the ack of the frame are one broker transaction, so a crash never delivers
twice: a frame that comes back redelivered was not delivered from (see gateway.amqp).

An envelope whose processing fails unexpectedly sends its frame back to the queue alone; on the
frame's limits.max_attempts-th delivery it is rejected (processing.failed) and the rest of the
frame goes on. While the archive is unavailable a batch is held, unacknowledged, and retried.
"""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import structlog
from aio_pika.abc import AbstractIncomingMessage

from contracts import ContractError, FrameLimits, parse_frame
from gateway import topology
from gateway.amqp import PublishRefused
from gateway.archive import Record
from gateway.core import publications
from gateway.core.checkpoints import CHECKPOINT_TYPE, Checkpoint, acknowledgement_problem
from gateway.core.inbound_decision import (
    InboundContext,
    Refused,
    Verified,
    check_officer,
    decide_envelope,
)
from gateway.core.keys import SigningKey
from gateway.core.receipts import ReceiptError
from gateway.core.signing import sign_envelope
from gateway.core.stamping import new_envelope_id
from gateway.metrics import GatewayMetrics
from gateway.workers.arrivals import (
    Arrival,
    FrameError,
    Plan,
    compact,
    entries,
    envelope_key,
    local_effects,
    receipt_envelope,
    receipt_key,
    short,
)
from gateway.workers.base import Finish, Worker
from gateway.workers.batches import RoundRobin, delivery_attempt
from gateway.workers.ports import Archive, Channel, DecideEnvelope, Publisher
from gateway.workers.retry import DEFAULT_RETRY, RetryPolicy

__all__ = ["InboundWorker", "compact", "envelope_key", "receipt_key"]

log = structlog.get_logger(__name__)

YIELD_EVERY = 32


class InboundWorker(Worker[tuple[str, list[AbstractIncomingMessage]]]):
    """Every counterparty's frames through verify -> archive -> deliver and ack -> receipts."""

    name = "inbound"

    def __init__(
        self,
        *,
        party: str,
        channels: Mapping[str, Channel],
        publishers: Mapping[str, Publisher],
        archive: Archive,
        metrics: GatewayMetrics,
        batcher: RoundRobin,
        signing_key: SigningKey,
        context: Callable[[datetime], InboundContext],
        on_state_lost: Callable[[], Any],
        prepare: Callable[[], Awaitable[None]],
        max_message_bytes: int,
        max_frame_envelopes: int,
        max_attempts: int,
        decide: DecideEnvelope = decide_envelope,
        retry: RetryPolicy = DEFAULT_RETRY,
    ) -> None:
        super().__init__(
            channel=next(iter(channels.values())),
            source=batcher,
            archive=archive,
            metrics=metrics,
            on_state_lost=on_state_lost,
            prepare=prepare,
            max_attempts=max_attempts,
            retry=retry,
        )
        self._party = party
        self._channels = channels
        self._publishers = publishers
        self._batcher = batcher
        self._signing_key = signing_key
        self._context = context
        self._max_bytes = publications.max_frame_bytes(max_message_bytes)
        self._frame_limits = FrameLimits(max_frame_envelopes, self._max_bytes)
        self._decide_envelope = decide

    async def consume(self) -> None:
        for source, channel in self._channels.items():
            await channel.consume(topology.inbound_from(source), self._batcher.on_message(source))

    async def take(self, batch: tuple[str, list[AbstractIncomingMessage]]) -> Finish | None:
        source, messages = batch
        # Delivery tags and the broker transaction belong to the source's own channel.
        self._channel = self._channels[source]
        work, finish = await self.process(messages)
        self._batcher.charge(source, work)
        return finish

    def _unpack(self, batch: Sequence[AbstractIncomingMessage]) -> Plan:
        plan = Plan()
        for message in batch:
            if len(message.body) > self._max_bytes:
                plan.bad_frames.append(
                    FrameError(message, "schema.too_large", f"{len(message.body)} bytes")
                )
                continue
            try:
                envelopes = parse_frame(message.body, self._frame_limits)
            except ContractError as exc:
                plan.bad_frames.append(FrameError(message, exc.code, exc.message))
                continue
            if message.content_type != topology.FRAME_CONTENT_TYPE:
                detail = f"content_type must be {topology.FRAME_CONTENT_TYPE}"
                plan.bad_frames.append(FrameError(message, "frame.invalid", detail))
                continue
            plan.arrivals.extend(Arrival(message, raw) for raw in envelopes)
        return plan

    async def process(self, batch: Sequence[AbstractIncomingMessage]) -> tuple[int, Finish | None]:
        """Decide and archive one batch: the work it took (envelopes decided plus frames
        refused whole) and the rest, deliveries and ack then receipts, if anything is left."""
        landed = self.flying(len(batch))
        try:
            # Frames of a channel lost since they arrived are back in the queue: not ours.
            batch = await self._channel.current(batch)
            settled = await self._decide_and_archive(batch) if batch else None
        except BaseException:
            landed()
            raise
        if settled is None:
            landed()
            return 0, None
        plan, kept, now = settled
        work = len(plan.arrivals) + len(plan.bad_frames)
        if not kept:
            landed()
            return work, None
        channel = self._channel

        async def finish() -> None:
            try:
                effects = local_effects(plan, now)
                if await self.commit(
                    effects.outgoing, kept[-1], effects.events, channel=channel, batch=len(batch)
                ):
                    await self._send_receipts(plan.arrivals)
            finally:
                landed()

        return work, finish

    async def _decide_and_archive(
        self, batch: list[AbstractIncomingMessage]
    ) -> tuple[Plan, list[AbstractIncomingMessage], datetime] | None:
        """Decide and archive the batch: the plan and the frames left to ack, or None when the
        batch was given back (held while the archive is unavailable, see ``until_archived``)."""

        async def attempt() -> tuple[Plan, list[AbstractIncomingMessage], datetime]:
            nonlocal batch
            now = datetime.now(UTC)
            plan = self._unpack(batch)
            await self._decide(plan.arrivals, now)
            batch = await self._retry_frames(plan, batch)
            await self.archive(entries(plan, self._party, now))
            return plan, batch, now

        return await self.until_archived(attempt, lambda: batch)

    def _failed(self, arrival: Arrival, error: Exception) -> Refused:
        """An unexpected error processing one envelope must not hold up the batch: its frame
        goes back for another attempt, and after max_attempts the envelope is rejected."""
        attempt = delivery_attempt(arrival.message)
        log.exception(
            "inbound.processing_failed",
            message_id=arrival.message.message_id,
            envelope_id=short(arrival.raw.get("id")),
            attempt=attempt,
            max_attempts=self._max_attempts,
        )
        arrival.retry = attempt < self._max_attempts
        return Refused(
            "processing.failed",
            f"{type(error).__name__} on each of {attempt} attempts: {str(error)[:200]}",
        )

    async def _retry_frames(
        self, plan: Plan, batch: list[AbstractIncomingMessage]
    ) -> list[AbstractIncomingMessage]:
        """Give back the frames with an envelope to retry, all their envelopes with them."""
        again = {id(a.message) for a in plan.arrivals if a.retry}
        if not again:
            return batch
        # Envelopes of those frames that went through may have changed the state already.
        self._on_state_lost()
        await self.retry_later([message for message in batch if id(message) in again])
        plan.arrivals = [a for a in plan.arrivals if id(a.message) not in again]
        return [message for message in batch if id(message) not in again]

    async def _decide(self, arrivals: list[Arrival], now: datetime) -> None:
        ctx = self._context(now)
        with self._metrics.time_stage("verify"):
            for index, arrival in enumerate(arrivals):
                if index % YIELD_EVERY == YIELD_EVERY - 1:
                    # Verification is CPU work: heartbeats and the other workers run between.
                    await asyncio.sleep(0)
                try:
                    arrival.decision = self._decide_envelope(arrival.raw, ctx)
                except Exception as exc:
                    arrival.decision = self._failed(arrival, exc)
        verified = [a for a in arrivals if isinstance(a.decision, Verified)]
        keys: list[str] = []
        for arrival in verified:
            assert isinstance(arrival.decision, Verified)
            env = arrival.decision.envelope
            arrival.key = envelope_key(env.originator.party, env.id)
            keys += [arrival.key, receipt_key(env.originator.party, env.id)]
        claimed = await self._archive.claimed_many(keys) if keys else {}
        seen: set[str] = set()
        for arrival in verified:
            try:
                self._settle(arrival, claimed, seen, ctx, now)
            except Exception as exc:
                self._on_state_lost()  # the envelope may be applied to the state halfway
                arrival.decision = self._failed(arrival, exc)
        await self._check_acknowledgements(verified)

    async def _check_acknowledgements(self, arrivals: list[Arrival]) -> None:
        """Our own archive must still hold the checkpoint of ours a counterparty echoes."""
        for arrival in arrivals:
            checkpoint = arrival.checkpoint
            if checkpoint is None or checkpoint.acknowledged is None or arrival.checkpoint_problem:
                continue
            acknowledged = checkpoint.acknowledged
            head_seq, _ = await self._archive.head()
            found = await self._archive.hash_at(acknowledged.seq)
            arrival.checkpoint_problem = acknowledgement_problem(acknowledged, head_seq, found)

    def _settle(
        self,
        arrival: Arrival,
        claimed: Mapping[str, Record],
        seen: set[str],
        ctx: InboundContext,
        now: datetime,
    ) -> None:
        """What a verified envelope does: duplicate, checkpoint, receipt or delivery, applied
        to the live state."""
        assert isinstance(arrival.decision, Verified)
        assert arrival.key is not None
        env = arrival.decision.envelope
        provider = env.originator.party
        earlier = claimed.get(arrival.key)
        original_receipt = claimed.get(receipt_key(provider, env.id))
        retry_of_own_attempt = (
            earlier is not None
            and bool(arrival.message.redelivered)
            and earlier.message_id == arrival.message.message_id
        )
        if (earlier is not None and not retry_of_own_attempt) or arrival.key in seen:
            arrival.resend_receipt = original_receipt.payload if original_receipt else None
            return
        seen.add(arrival.key)
        if env.type == CHECKPOINT_TYPE:
            checkpoint = Checkpoint.from_body(env.body)
            arrival.checkpoint_problem = ctx.state.checkpoints.check(provider, checkpoint)
            ctx.state.checkpoints.received(provider, checkpoint)
            arrival.checkpoint = checkpoint
            return
        refused = check_officer(env, ctx)
        if refused is not None:
            arrival.decision = refused
            return
        if retry_of_own_attempt:
            # Our own earlier attempt archived this frame and died before its broker
            # transaction committed: deliver now, under the claim and receipt already archived.
            arrival.key = None
            arrival.deliver = env.type != "receipt"
            arrival.resend_receipt = original_receipt.payload if original_receipt else None
            if env.type != "receipt":
                ctx.state.received(arrival.raw, now)
                return
        if env.type == "receipt":
            self._settle_receipt(arrival, ctx)
            return
        arrival.deliver = True
        ctx.state.received(arrival.raw, now)
        receipt = receipt_envelope(self._party, env, arrival.raw, now)
        arrival.receipt = sign_envelope(receipt, self._signing_key)

    def _settle_receipt(self, arrival: Arrival, ctx: InboundContext) -> None:
        """A counterparty's receipt settles the envelope of ours it names."""
        assert isinstance(arrival.decision, Verified)
        env = arrival.decision.envelope
        body = env.body
        try:
            pending = ctx.state.receipts.settle(
                body["envelope_id"], body["envelope_sha256"], env.originator.party
            )
        except ReceiptError as exc:
            arrival.decision = Refused(exc.code, str(exc))
            return
        if pending is not None:
            arrival.status = pending
            arrival.sent_at = pending.sent_at

    async def _send_receipts(self, arrivals: list[Arrival]) -> None:
        by_party: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for arrival in arrivals:
            if not isinstance(arrival.decision, Verified):
                continue
            provider = arrival.decision.envelope.originator.party
            if arrival.receipt is not None:
                by_party[provider].append(arrival.receipt)
            elif arrival.resend_receipt is not None:
                by_party[provider].append(json.loads(arrival.resend_receipt))
        for party, receipts in by_party.items():
            publisher = self._publishers.get(party)
            if publisher is None:
                continue
            try:
                # Split like any frames: the peer refuses one of over 1000 envelopes whole.
                await publisher.publish_all(
                    publications.frames(
                        receipts,
                        max_bytes=self._max_bytes,
                        exchange=topology.inbound_from(self._party),
                        new_id=new_envelope_id,
                    )
                )
            except PublishRefused as exc:
                # The provider sees these as overdue and can re-send; its envelope is then a
                # duplicate here and the archived receipt goes out again.
                log.warning(
                    "inbound.receipts_not_sent", party=party, error=str(exc), count=len(receipts)
                )
