"""The inbound worker: gw.inbound -> verify -> archive -> gw.deliver + ack -> receipts.

Each AMQP message is a frame of envelopes; each envelope is verified, accepted or refused on its
own. Deliveries and the ack of the frame are one broker transaction, so a crash never delivers
twice: a frame that comes back redelivered was not delivered from (see gateway.amqp).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import structlog
from aio_pika.abc import AbstractIncomingMessage

from contracts import ContractError, parse_frame
from gateway import outgoing, topology
from gateway.amqp import ConfirmingPublisher, PublishRefused, StaleBatch, TransactionalChannel
from gateway.archive import ArchiveStore, Entry, Record
from gateway.inbound import InboundContext, Refused, Verified, check_officer, decide_envelope
from gateway.keys import SigningKey
from gateway.metrics import GatewayMetrics
from gateway.outgoing import Outgoing
from gateway.receipts import ReceiptError, receipt_body
from gateway.signing import sign_envelope
from gateway.stamping import new_envelope_id, rfc3339
from gateway.workers.batches import Batcher

log = structlog.get_logger(__name__)


def envelope_key(provider: str, envelope_id: str) -> str:
    return f"envelope:{provider}:{envelope_id}"


def receipt_key(provider: str, envelope_id: str) -> str:
    return f"receipt:{provider}:{envelope_id}"


def compact(obj: Mapping[str, Any]) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


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
    status: tuple[str, str, str] | None = None  # (status, submission_id, type) for receipts


@dataclass
class FrameError:
    message: AbstractIncomingMessage
    reason: str
    detail: str


@dataclass
class Plan:
    arrivals: list[Arrival] = field(default_factory=list)
    bad_frames: list[FrameError] = field(default_factory=list)


class InboundWorker:
    def __init__(
        self,
        *,
        party: str,
        channel: TransactionalChannel,
        publishers: Mapping[str, ConfirmingPublisher],
        archive: ArchiveStore,
        metrics: GatewayMetrics,
        batcher: Batcher,
        signing_key: SigningKey,
        context: Callable[[datetime], InboundContext],
        on_state_lost: Callable[[], Any],
        prepare: Callable[[], Awaitable[None]],
        max_message_bytes: int,
    ) -> None:
        self._party = party
        self._channel = channel
        self._publishers = publishers
        self._archive = archive
        self._metrics = metrics
        self._batcher = batcher
        self._signing_key = signing_key
        self._context = context
        self._on_state_lost = on_state_lost
        self._prepare = prepare
        self._max_bytes = max_message_bytes
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        await self._channel.consume(topology.INBOUND, self._batcher.on_message)
        while not self._stopping.is_set():
            getter = asyncio.ensure_future(self._batcher.next_batch())
            stopper = asyncio.ensure_future(self._stopping.wait())
            done, _ = await asyncio.wait({getter, stopper}, return_when=asyncio.FIRST_COMPLETED)
            if getter not in done:
                getter.cancel()
                return
            stopper.cancel()
            await self.process(getter.result())

    def _unpack(self, batch: Sequence[AbstractIncomingMessage]) -> Plan:
        plan = Plan()
        for message in batch:
            if len(message.body) > self._max_bytes:
                plan.bad_frames.append(
                    FrameError(message, "schema.too_large", f"{len(message.body)} bytes")
                )
                continue
            try:
                envelopes = parse_frame(message.body)
            except ContractError as exc:
                plan.bad_frames.append(FrameError(message, exc.code, exc.message))
                continue
            plan.arrivals.extend(Arrival(message, raw) for raw in envelopes)
        return plan

    async def process(self, batch: Sequence[AbstractIncomingMessage]) -> None:
        await self._prepare()
        now = datetime.now(UTC)
        self._metrics.in_flight.labels("inbound").set(len(batch))
        plan = self._unpack(batch)
        try:
            await self._decide(plan.arrivals, now)
            entries = self._entries(plan, now)
            started = time.perf_counter()
            await self._archive.append(entries)
            elapsed = time.perf_counter() - started
            self._metrics.archive_write_seconds.observe(elapsed)
            self._metrics.archive_batch_size.observe(len(entries))
            self._metrics.stage_seconds.labels("archive").observe(elapsed)
        except Exception:
            log.exception("inbound.archive_failed", batch=len(batch))
            self._on_state_lost()
            for message in batch:
                try:
                    await self._channel.nack(message)
                except Exception:
                    break
            await asyncio.sleep(0.5)
            return
        try:
            await self._channel.commit(self._local_effects(plan, now), batch[-1])
        except StaleBatch:
            log.warning("inbound.channel_lost", batch=len(batch))
            return
        await self._send_receipts(plan.arrivals)
        self._metrics.in_flight.labels("inbound").set(0)

    async def _decide(self, arrivals: list[Arrival], now: datetime) -> None:
        ctx = self._context(now)
        with self._metrics.time_stage("verify"):
            for arrival in arrivals:
                arrival.decision = decide_envelope(arrival.raw, ctx)
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
            self._settle(arrival, claimed, seen, ctx, now)

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
                arrival.status = ("delivered", pending.submission_id, pending.type)
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
                    payload=bad.message.body,
                    message_id=bad.message.message_id,
                    reason=bad.reason,
                    detail=bad.detail,
                )
            )
        for arrival in plan.arrivals:
            entries.extend(self._entries_of(arrival, now))
        return entries

    def _entries_of(self, arrival: Arrival, now: datetime) -> list[Entry]:
        raw, decision = arrival.raw, arrival.decision
        payload = compact(raw)
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
                    bad.message.body,
                    reason=bad.reason,
                    detail=bad.detail,
                    message_id=bad.message.message_id,
                    content_type=bad.message.content_type,
                    extra={"x-gw-stage": "inbound"},
                )
            )
            self._metrics.record_outcome("inbound", "unknown", "none", "rejected", bad.reason)
        for arrival in plan.arrivals:
            effects.extend(self._effects_of(arrival, now))
        return effects

    def _effects_of(self, arrival: Arrival, now: datetime) -> list[Outgoing]:
        decision = arrival.decision
        if isinstance(decision, Refused):
            self._metrics.record_outcome(
                "inbound", str(arrival.raw.get("type")), "none", "rejected", decision.reason
            )
            log.warning(
                "inbound.refused",
                envelope_id=arrival.raw.get("id"),
                reason=decision.reason,
                decision="rejected",
            )
            return [
                outgoing.held_copy(
                    topology.REJECTED,
                    compact(arrival.raw),
                    reason=decision.reason,
                    detail=decision.detail,
                    message_id=str(arrival.raw.get("id") or ""),
                    content_type=topology.JSON_CONTENT_TYPE,
                    extra={"x-gw-stage": "inbound"},
                )
            ]
        assert isinstance(decision, Verified)
        env = decision.envelope
        provider = env.originator.party
        if arrival.status is not None:
            status, submission_id, type_ = arrival.status
            self._metrics.observe_end_to_end(
                "outbound", provider, max(0.0, (now - env.created_at).total_seconds())
            )
            return [
                outgoing.status(
                    status,
                    at=now,
                    submission_id=submission_id,
                    envelope_id=env.body.get("envelope_id"),
                    type=type_,
                )
            ]
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
            envelope_id=env.id,
            type=env.type,
            provider=provider,
            decision="delivered",
        )
        return [
            outgoing.delivery(
                compact(arrival.raw), envelope_id=env.id, provider=provider, type=env.type
            )
        ]

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
                await publisher.publish_all(
                    [
                        outgoing.frame(
                            receipts, frame_id=new_envelope_id(), exchange=topology.INBOUND
                        )
                    ]
                )
            except PublishRefused as exc:
                # The provider sees these as overdue and can re-send; its envelope is then a
                # duplicate here and the archived receipt goes out again.
                log.warning(
                    "inbound.receipts_not_sent", party=party, error=str(exc), count=len(receipts)
                )
