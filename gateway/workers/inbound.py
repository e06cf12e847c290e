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
import contextlib
import json
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

import structlog
from aio_pika.abc import AbstractIncomingMessage

from contracts import ContractError, FrameLimits, parse_frame
from gateway import junk, outgoing, topology
from gateway.amqp import PublishRefused, StaleBatch
from gateway.archive import Entry, Record
from gateway.checkpoints import (
    CHECKPOINT_TYPE,
    Checkpoint,
    CheckpointProblem,
    acknowledgement_problem,
)
from gateway.inbound import InboundContext, Refused, Verified, check_officer, decide_envelope
from gateway.keys import SigningKey
from gateway.metrics import GatewayMetrics
from gateway.outgoing import Outgoing
from gateway.receipts import Pending, ReceiptError, receipt_body
from gateway.signing import sign_envelope
from gateway.stamping import new_envelope_id, rfc3339
from gateway.workers.batches import Hold, RoundRobin, delivery_attempt
from gateway.workers.ports import Archive, Channel, DecideEnvelope, Publisher
from gateway.workers.retry import DEFAULT_RETRY, RetryPolicy

log = structlog.get_logger(__name__)

YIELD_EVERY = 32


def envelope_key(provider: str, envelope_id: str) -> str:
    return f"envelope:{provider}:{envelope_id}"


def receipt_key(provider: str, envelope_id: str) -> str:
    return f"receipt:{provider}:{envelope_id}"


def _short(value: object) -> str | None:
    """A field of a refused envelope fit for a log line or an AMQP property: unverified input,
    so kept short, and only when it is encodable (no lone surrogate)."""
    if not isinstance(value, str):
        return None
    try:
        return value if len(value.encode()) <= 100 else None
    except UnicodeEncodeError:
        return None


def compact(obj: Mapping[str, Any]) -> bytes:
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


class InboundWorker:
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
        self._party = party
        self._channels = channels
        self._channel = next(iter(channels.values()))
        self._publishers = publishers
        self._archive = archive
        self._metrics = metrics
        self._batcher = batcher
        self._signing_key = signing_key
        self._context = context
        self._on_state_lost = on_state_lost
        self._prepare = prepare
        self._max_bytes = outgoing.max_frame_bytes(max_message_bytes)
        self._frame_limits = FrameLimits(max_frame_envelopes, self._max_bytes)
        self._max_attempts = max_attempts
        self._decide_envelope = decide
        self._retry = retry
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        self._stopping.set()

    async def run(self, *, burst: bool = False) -> None:
        """Consume every counterparty's queue until stopped; in ``burst`` mode, return once
        nothing is waiting."""
        for source, channel in self._channels.items():
            await channel.consume(topology.inbound_from(source), self._batcher.on_message(source))
        while (batch := await self._batcher.next_batch_or(self._stopping, burst=burst)) is not None:
            source, messages = batch
            # Delivery tags and the broker transaction belong to the source's own channel.
            self._channel = self._channels[source]
            self._batcher.charge(source, await self.process(messages))

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

    async def process(self, batch: Sequence[AbstractIncomingMessage]) -> int:
        """Handle one batch; the work it took: envelopes decided plus frames refused whole."""
        in_flight = self._metrics.in_flight.labels("inbound")
        in_flight.set(len(batch))
        try:
            return await self._process(batch)
        finally:
            # Acked, or given back to the queue: either way no longer in the gateway's hands.
            in_flight.set(0)

    async def _process(self, batch: Sequence[AbstractIncomingMessage]) -> int:
        # Frames of a channel lost since they arrived are back in the queue: not ours to do.
        batch = await self._channel.current(batch)
        settled = await self._decide_and_archive(batch) if batch else None
        if settled is None:
            return 0
        plan, kept, now = settled
        work = len(plan.arrivals) + len(plan.bad_frames)
        if not kept:
            return work
        try:
            effects = self._local_effects(plan, now)
            with self._metrics.time_stage("publish"):
                await self._channel.commit(effects, kept[-1])
        except StaleBatch:
            log.warning("inbound.channel_lost", batch=len(batch))
            return work
        await self._send_receipts(plan.arrivals)
        return work

    async def _decide_and_archive(
        self, batch: list[AbstractIncomingMessage]
    ) -> tuple[Plan, list[AbstractIncomingMessage], datetime] | None:
        """Decide and archive the batch: the plan and the frames left to ack, or None when the
        batch was given back. While the archive is unavailable the batch is held
        unacknowledged and tried again (see Hold)."""
        hold = Hold(self._archive, self._max_attempts, self._retry)
        while True:
            try:
                await self._prepare()
                now = datetime.now(UTC)
                plan = self._unpack(batch)
                await self._decide(plan.arrivals, now)
                batch = await self._retry_later(plan, batch)
                entries = self._entries(plan, now)
                started = time.perf_counter()
                await self._archive.append(entries)
                elapsed = time.perf_counter() - started
                self._metrics.archive_write_seconds.observe(elapsed)
                self._metrics.archive_batch_size.observe(len(entries))
                self._metrics.stage_seconds.labels("archive").observe(elapsed)
                return plan, batch, now
            except Exception:
                log.exception("inbound.archive_failed", batch=len(batch), attempt=hold.failures)
                self._on_state_lost()
            if (
                not batch
                or not await hold.again()
                or self._stopping.is_set()
                or not self._channel.is_current(batch[0])
            ):
                for message in batch:
                    try:
                        await self._channel.nack(message)
                    except Exception:
                        break
                return None

    def _failed(self, arrival: Arrival, error: Exception) -> Refused:
        """An unexpected error processing one envelope must not hold up the batch: its frame
        goes back for another attempt, and after max_attempts the envelope is rejected."""
        attempt = delivery_attempt(arrival.message)
        log.exception(
            "inbound.processing_failed",
            message_id=arrival.message.message_id,
            envelope_id=_short(arrival.raw.get("id")),
            attempt=attempt,
            max_attempts=self._max_attempts,
        )
        arrival.retry = attempt < self._max_attempts
        return Refused(
            "processing.failed",
            f"{type(error).__name__} on each of {attempt} attempts: {str(error)[:200]}",
        )

    async def _retry_later(
        self, plan: Plan, batch: list[AbstractIncomingMessage]
    ) -> list[AbstractIncomingMessage]:
        """Give back the frames with an envelope to retry, all their envelopes with them."""
        again = {id(a.message) for a in plan.arrivals if a.retry}
        if not again:
            return batch
        # Envelopes of those frames that went through may have changed the state already.
        self._on_state_lost()
        for message in batch:
            if id(message) in again:
                with contextlib.suppress(Exception):  # a lost channel gives it back anyway
                    await self._channel.nack(message)
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
        assert isinstance(arrival.decision, Verified)
        assert arrival.key is not None
        env = arrival.decision.envelope
        provider = env.originator.party
        earlier = claimed.get(arrival.key)
        retry_of_own_attempt = (
            earlier is not None
            and bool(arrival.message.redelivered)
            and earlier.message_id == arrival.message.message_id
        )
        if (earlier is not None and not retry_of_own_attempt) or arrival.key in seen:
            original_receipt = claimed.get(receipt_key(provider, env.id))
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
            original_receipt = claimed.get(receipt_key(provider, env.id))
            arrival.resend_receipt = original_receipt.payload if original_receipt else None
            if env.type != "receipt":
                ctx.state.received(arrival.raw, now)
                return
        if env.type == "receipt":
            body = env.body
            try:
                pending = ctx.state.receipts.settle(
                    body["envelope_id"], body["envelope_sha256"], provider
                )
            except ReceiptError as exc:
                arrival.decision = Refused(exc.code, str(exc))
                return
            if pending is not None:
                arrival.status = pending
                arrival.sent_at = pending.sent_at
            return
        arrival.deliver = True
        ctx.state.received(arrival.raw, now)
        receipt = {
            "id": new_envelope_id(),
            "type": "receipt",
            "version": 1,
            "originator": {
                "party": self._party,
                "system": "gateway",
                "officer": None,
                "submission_id": env.id,
            },
            "recipient": provider,
            "created_at": rfc3339(now),
            "correlation_id": env.correlation_id,
            "in_reply_to": env.id,
            "derived_from": [],
            "handling": {"onward": "consent-required", "pre_approved": []},
            "body": receipt_body(arrival.raw, "delivered", now),
        }
        arrival.receipt = sign_envelope(receipt, self._signing_key)

    def _entries(self, plan: Plan, now: datetime) -> list[Entry]:
        entries: list[Entry] = []
        for bad in plan.bad_frames:
            entries.append(
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
            )
        for arrival in plan.arrivals:
            entries.extend(self._entries_of(arrival, now))
        return entries

    def _entries_of(self, arrival: Arrival, now: datetime) -> list[Entry]:
        raw, decision = arrival.raw, arrival.decision
        payload = arrival.payload
        if isinstance(decision, Refused):
            originator = raw.get("originator")
            return [
                Entry(
                    kind="envelope.in",
                    outcome="rejected",
                    occurred_at=now,
                    payload=payload,
                    message_id=arrival.message.message_id,
                    envelope_id=str(raw.get("id")) if raw.get("id") else None,
                    provider=str(originator.get("party"))
                    if isinstance(originator, Mapping)
                    else None,
                    reason=decision.reason,
                    detail=decision.detail,
                )
            ]
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
        }
        if env.type == "receipt":
            return [Entry(kind="receipt.in", outcome="delivered", payload=payload, **common)]
        if env.type == CHECKPOINT_TYPE:
            # A repeated one (no checkpoint taken) is archived again as a duplicate of its claim.
            problem = arrival.checkpoint_problem
            return [
                Entry(
                    kind="checkpoint.in",
                    outcome="archived" if problem is None else "inconsistent",
                    payload=payload,
                    dedup_key=arrival.key,
                    reason=problem.code if problem else None,
                    detail=problem.detail if problem else None,
                    **common,
                )
            ]
        if not arrival.deliver:
            return [
                Entry(
                    kind="envelope.in",
                    outcome="duplicate",
                    payload=payload,
                    dedup_key=arrival.key,
                    **common,
                )
            ]
        entries = [
            Entry(
                kind="envelope.in",
                outcome="delivered",
                payload=payload,
                dedup_key=arrival.key,
                derived_from=env.derived_from,
                attachment_sha256=tuple(
                    a["sha256"] for a in env.body.get("attachments", []) if isinstance(a, dict)
                ),
                **common,
            )
        ]
        if arrival.receipt is not None:
            receipt = arrival.receipt
            entries.append(
                Entry(
                    kind="receipt.out",
                    outcome="sent",
                    occurred_at=now,
                    payload=compact(receipt),
                    envelope_id=receipt["id"],
                    type="receipt",
                    provider=self._party,
                    recipient=env.originator.party,
                    correlation_id=env.correlation_id,
                    signature=receipt["signature"]["value"],
                    dedup_key=receipt_key(env.originator.party, env.id),
                )
            )
        return entries

    def _local_effects(self, plan: Plan, now: datetime) -> list[Outgoing]:
        effects: list[Outgoing] = []
        for bad in plan.bad_frames:
            effects.append(
                outgoing.held_copy(
                    topology.REJECTED,
                    bad.evidence.payload,
                    reason=bad.reason,
                    detail=bad.detail,
                    message_id=bad.message.message_id,
                    content_type=bad.evidence.content_type,
                    extra={"x-gw-stage": "inbound", **bad.evidence.headers},
                )
            )
            self._metrics.record_outcome("inbound", "unknown", "none", "rejected", bad.reason)
            log.warning(
                "inbound.frame_refused",
                message_id=bad.message.message_id,
                sha256=bad.evidence.headers[junk.SHA256_HEADER],
                bytes=len(bad.message.body),
                reason=bad.reason,
                decision="rejected",
            )
        for arrival in plan.arrivals:
            effects.extend(self._effects_of(arrival, now))
        return effects

    def _effects_of(self, arrival: Arrival, now: datetime) -> list[Outgoing]:
        decision = arrival.decision
        if isinstance(decision, Refused):
            self._metrics.record_outcome(
                "inbound", str(arrival.raw.get("type")), "none", "rejected", decision.reason
            )
            originator = arrival.raw.get("originator")
            log.warning(
                "inbound.refused",
                message_id=arrival.message.message_id,
                envelope_id=_short(arrival.raw.get("id")),
                type=_short(arrival.raw.get("type")),
                provider=_short(originator.get("party"))
                if isinstance(originator, Mapping)
                else None,
                reason=decision.reason,
                decision="rejected",
            )
            return [
                outgoing.held_copy(
                    topology.REJECTED,
                    arrival.payload,
                    reason=decision.reason,
                    detail=decision.detail,
                    message_id=_short(arrival.raw.get("id")),
                    content_type=topology.JSON_CONTENT_TYPE,
                    extra={"x-gw-stage": "inbound"},
                )
            ]
        assert isinstance(decision, Verified)
        env = decision.envelope
        provider = env.originator.party
        if arrival.status is not None:
            pending = arrival.status
            # Outbound end to end: from our decision on the submission to the peer's receipt.
            sent_at = arrival.sent_at or env.created_at
            self._metrics.observe_end_to_end(
                "outbound", provider, max(0.0, (now - sent_at).total_seconds())
            )
            return [
                outgoing.status(
                    "delivered",
                    system=pending.system,
                    at=now,
                    submission_id=pending.submission_id,
                    envelope_id=env.body.get("envelope_id"),
                    type=pending.type,
                )
            ]
        if env.type == CHECKPOINT_TYPE:
            self._checkpoint_taken(arrival, provider)
            return []
        if not arrival.deliver:
            if env.type != "receipt":
                self._metrics.record_outcome("inbound", env.type, provider, "duplicate")
            return []
        self._metrics.record_outcome("inbound", env.type, provider, "delivered")
        self._metrics.observe_end_to_end(
            "inbound", provider, max(0.0, (now - env.created_at).total_seconds())
        )
        log.info(
            "inbound.delivered",
            message_id=arrival.message.message_id,
            envelope_id=env.id,
            type=env.type,
            provider=provider,
            decision="delivered",
        )
        return [
            outgoing.delivery(arrival.payload, envelope_id=env.id, provider=provider, type=env.type)
        ]

    def _checkpoint_taken(self, arrival: Arrival, provider: str) -> None:
        problem, checkpoint = arrival.checkpoint_problem, arrival.checkpoint
        if problem is not None:
            self._metrics.record_checkpoint_problem(provider, problem.code)
            log.error(
                "checkpoint.inconsistent",
                provider=provider,
                envelope_id=arrival.decision.envelope.id
                if isinstance(arrival.decision, Verified)
                else None,
                reason=problem.code,
                detail=problem.detail,
            )
        elif checkpoint is not None:
            log.info("checkpoint.received", provider=provider, seq=checkpoint.head.seq)

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
                    outgoing.frames(
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
