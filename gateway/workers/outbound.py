"""The outbound worker: gw.submit -> decisions -> archive -> counterparty -> ack.

A batch goes through four steps, and a source message is acked only after all of them:
1. decide every submission (pure), claiming its idempotency key; one whose decision fails
   unexpectedly goes back to the queue alone, and is rejected (processing.failed) on its
   limits.max_attempts-th delivery;
2. archive every outcome in one transaction (held and retried, unacknowledged, while the
   archive is unavailable);
3. publish one frame per counterparty and wait for the confirms (held and retried while the
   counterparty is unreachable, so the backlog stays in gw.submit);
4. in one broker transaction: status events, copies to gw.rejected/gw.quarantine, the ack.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog
from aio_pika.abc import AbstractIncomingMessage

from gateway import outgoing, topology
from gateway.amqp import PublishRefused, StaleBatch
from gateway.archive import Appended, Entry, Record
from gateway.consent import RouteDecision
from gateway.metrics import GatewayMetrics
from gateway.outbound import (
    Accepted,
    Blocked,
    Delivery,
    Held,
    OutboundContext,
    OutboundDecision,
    Rejected,
    decide_submission,
    route_of,
)
from gateway.outgoing import Outgoing
from gateway.provenance import known_from_envelope
from gateway.review import held_headers
from gateway.stamping import new_envelope_id
from gateway.workers.batches import Batcher, Hold, delivery_attempt
from gateway.workers.held_copies import quarantine_copy, rejected_copy
from gateway.workers.ports import Archive, Channel, DecideSubmission, Publisher
from gateway.workers.retry import DEFAULT_RETRY, RetryPolicy, until_sent

log = structlog.get_logger(__name__)


def delivery_of(message: AbstractIncomingMessage) -> Delivery:
    return Delivery(
        body=message.body,
        message_id=message.message_id,
        user_id=message.user_id,
        content_type=message.content_type,
        headers=message.headers or {},
        redelivered=bool(message.redelivered),
        routing_key=message.routing_key,
    )


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


def entry_for(item: Item, party: str, now: datetime) -> Entry:
    d, decision = item.delivery, item.decision
    common: dict[str, Any] = {
        "occurred_at": now,
        "message_id": d.message_id,
        "system": d.user_id,
        "dedup_key": item.key,
    }
    if isinstance(decision, Accepted):
        env = decision.envelope
        return Entry(
            kind="envelope.out",
            outcome="sent",
            payload=json.dumps(env, separators=(",", ":")).encode(),
            envelope_id=env["id"],
            type=env["type"],
            provider=party,
            recipient=env["recipient"],
            correlation_id=env["correlation_id"],
            signature=env["signature"]["value"],
            derived_from=tuple(env["derived_from"]),
            **common,
        )
    if isinstance(decision, Blocked | Held):
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
    if isinstance(decision, Held):
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
    assert isinstance(decision, Rejected)
    return Entry(
        kind="submission",
        outcome="rejected",
        payload=d.body,
        type=decision.type,
        reason=decision.reason,
        detail=decision.detail,
        **common,
    )


class OutboundWorker:
    def __init__(
        self,
        *,
        party: str,
        channel: Channel,
        publishers: Mapping[str, Publisher],
        archive: Archive,
        metrics: GatewayMetrics,
        batcher: Batcher,
        context: Callable[[datetime], OutboundContext],
        on_state_lost: Callable[[], Any],
        prepare: Callable[[], Awaitable[None]],
        max_message_bytes: int,
        max_attempts: int,
        decide: DecideSubmission = decide_submission,
        retry: RetryPolicy = DEFAULT_RETRY,
    ) -> None:
        # Frames go to the exchange the counterparty keeps for this Party alone.
        self._peer_exchange = topology.inbound_from(party)
        self._channel = channel
        self._publishers = publishers
        self._archive = archive
        self._metrics = metrics
        self._batcher = batcher
        self._context = context
        self._on_state_lost = on_state_lost
        self._max_frame_bytes = outgoing.max_frame_bytes(max_message_bytes)
        self._prepare = prepare
        self._max_attempts = max_attempts
        self._decide_submission = decide
        self._retry = retry
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        self._stopping.set()

    async def run(self, *, burst: bool = False) -> None:
        """Consume gw.submit until stopped; in ``burst`` mode, return once nothing is waiting."""
        await self._channel.consume(topology.SUBMIT, self._batcher.on_message)
        while (batch := await self._batcher.next_batch_or(self._stopping, burst=burst)) is not None:
            await self.process(batch)

    async def process(self, batch: Sequence[AbstractIncomingMessage]) -> None:
        in_flight = self._metrics.in_flight.labels("outbound")
        in_flight.set(len(batch))
        try:
            await self._process(batch)
        finally:
            # Acked, or given back to the queue: either way no longer in the gateway's hands.
            in_flight.set(0)

    async def _process(self, batch: Sequence[AbstractIncomingMessage]) -> None:
        # Messages of a channel lost since they arrived are back in the queue: not ours to do.
        batch = await self._channel.current(batch)
        if not batch:
            return
        settled = await self._decide_and_archive([self._item(message) for message in batch])
        if settled is None or not settled[0]:
            return
        items, now = settled
        self._check_resends(items, now)
        sent = await self._forward(items)
        if not sent:
            await self._give_back(items)
            return
        await self._commit(items, now)

    async def _decide_and_archive(self, items: list[Item]) -> tuple[list[Item], datetime] | None:
        """Decide and archive the batch: what is left of it to forward and ack, or None when it
        was given back. Nothing is forwarded unarchived: while the archive is unavailable the
        batch is held unacknowledged and tried again, with the derived state rebuilt from what
        the archive really holds."""
        hold = Hold(self._archive, self._max_attempts, self._retry)
        while True:
            try:
                await self._prepare()
                now = datetime.now(UTC)
                await self._decide(items, now)
                items = await self._retry_later(items)
                if items:
                    await self._archive_all(items, now)
                return items, now
            except Exception:
                log.exception("outbound.archive_failed", batch=len(items), attempt=hold.failures)
                self._on_state_lost()
            if (
                not items
                or not await hold.again()
                or self._stopping.is_set()
                or not self._channel.is_current(items[0].message)
            ):
                await self._give_back(items)
                return None

    def _failed(self, item: Item, error: Exception) -> Rejected | None:
        """An unexpected error deciding one submission must not hold up the batch: the
        submission goes back for another attempt, and after max_attempts it is rejected."""
        attempt = delivery_attempt(item.message)
        log.exception(
            "outbound.processing_failed",
            message_id=item.delivery.message_id,
            attempt=attempt,
            max_attempts=self._max_attempts,
        )
        if attempt < self._max_attempts:
            item.retry = True
            return None
        return Rejected(
            "processing.failed",
            f"{type(error).__name__} on each of {attempt} attempts: {str(error)[:200]}",
        )

    async def _retry_later(self, items: list[Item]) -> list[Item]:
        for item in items:
            if item.retry:
                with contextlib.suppress(Exception):  # a lost channel gives it back anyway
                    await self._channel.nack(item.message)
        return [item for item in items if not item.retry]

    def _item(self, message: AbstractIncomingMessage) -> Item:
        delivery = delivery_of(message)
        return Item(message, delivery, submission_key(delivery.user_id, delivery.message_id))

    async def _decide(self, items: list[Item], now: datetime) -> None:
        keys = [item.key for item in items if item.key]
        claimed = await self._archive.claimed_many(keys) if keys else {}
        seen: set[str] = set()
        ctx = self._context(now)
        for item in items:
            item.decision, item.appended, item.retry = None, None, False
            if item.key is not None and (item.key in claimed or item.key in seen):
                continue
            if item.key is not None:
                seen.add(item.key)
            decision: OutboundDecision | None = None
            try:
                with self._metrics.time_stage("validate"):
                    decision = self._decide_submission(item.delivery, ctx)
                if isinstance(decision, Accepted):
                    ctx.state.sent(decision.envelope, item.delivery.message_id or "", now)
                item.decision = decision
            except Exception as exc:
                if isinstance(decision, Accepted):
                    self._on_state_lost()  # applied to the state halfway, perhaps
                item.decision = self._failed(item, exc)

    async def _archive_all(self, items: list[Item], now: datetime) -> None:
        entries = []
        for item in items:
            if item.decision is None:
                entries.append(
                    Entry(
                        kind="submission",
                        outcome="duplicate",
                        occurred_at=now,
                        payload=item.delivery.body,
                        message_id=item.delivery.message_id,
                        system=item.delivery.user_id,
                        dedup_key=item.key,
                    )
                )
            else:
                entries.append(entry_for(item, self._context(now).party, now))
        started = time.perf_counter()
        appended = await self._archive.append(entries)
        elapsed = time.perf_counter() - started
        self._metrics.archive_write_seconds.observe(elapsed)
        self._metrics.archive_batch_size.observe(len(entries))
        self._metrics.stage_seconds.labels("archive").observe(elapsed)
        for item, result in zip(items, appended, strict=True):
            item.appended = result
            if result.original is not None and isinstance(item.decision, Accepted):
                # Another replica claimed the key between our look-up and our commit.
                item.decision = None
                self._on_state_lost()

    def _check_resends(self, items: list[Item], now: datetime) -> None:
        """A redelivered submission that already became an envelope sends the same envelope
        again (same id, so the receiver's de-duplication makes it harmless), but only if the
        third-party rule still allows it now: the provider may have revoked its consent."""
        ctx = self._context(now)
        for item in items:
            original = item.appended.original if item.appended else None
            if item.decision is not None or original is None:
                continue
            if original.kind == "envelope.out" and original.outcome == "sent":
                resend, blocked = resend_of(original, ctx)
                item.resend, item.resend_blocked = resend, blocked

    def _frames(self, items: list[Item]) -> dict[str, list[dict[str, Any]]]:
        frames: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for item in items:
            if isinstance(item.decision, Accepted):
                env = item.decision.envelope
                frames[env["recipient"]].append(env)
            elif item.decision is None and item.resend is not None:
                frames[item.resend["recipient"]].append(item.resend)
        return frames

    async def _forward(self, items: list[Item]) -> bool:
        frames = self._frames(items)

        async def send() -> None:
            started = time.perf_counter()
            await asyncio.gather(
                *(
                    self._publishers[recipient].publish_all(
                        outgoing.frames(
                            envs,
                            max_bytes=self._max_frame_bytes,
                            exchange=self._peer_exchange,
                            new_id=new_envelope_id,
                        )
                    )
                    for recipient, envs in frames.items()
                )
            )
            self._metrics.stage_seconds.labels("confirm").observe(time.perf_counter() - started)

        def refused(attempt: int, exc: PublishRefused) -> None:
            log.warning(
                "outbound.counterparty_unavailable",
                recipients=sorted(frames),
                attempt=attempt,
                error=str(exc),
            )

        return await until_sent(send, self._retry, self._stopping, refused)

    def _local_effects(self, items: list[Item], now: datetime) -> list[Outgoing]:
        effects: list[Outgoing] = []
        for item in items:
            d, decision = item.delivery, item.decision
            if isinstance(decision, Accepted):
                env = decision.envelope
                effects.append(
                    outgoing.status(
                        "sent",
                        system=d.user_id,
                        at=now,
                        submission_id=d.message_id,
                        envelope_id=env["id"],
                        type=env["type"],
                    )
                )
                self._metrics.record_outcome("outbound", env["type"], env["recipient"], "forwarded")
            elif isinstance(decision, Blocked):
                route = decision.route
                detail = route.detail
                effects.append(
                    quarantine_copy(
                        d.body,
                        route,
                        message_id=d.message_id,
                        content_type=d.content_type,
                        system=d.user_id or "",
                    )
                )
                effects.append(
                    outgoing.status(
                        "blocked",
                        system=d.user_id,
                        at=now,
                        submission_id=d.message_id,
                        envelope_id=None,
                        type=decision.submission.type,
                        reason=route.reason,
                        detail=detail,
                    )
                )
                # Only the providers whose consent is missing blocked the route; route.providers
                # also holds this Party and providers whose consent was found.
                for provider in sorted({provider for provider, _ in route.missing}):
                    self._metrics.record_consent_block(provider, decision.submission.recipient)
                self._metrics.record_outcome(
                    "outbound",
                    decision.submission.type,
                    decision.submission.recipient,
                    "quarantined",
                    route.reason,
                )
            elif isinstance(decision, Held):
                effects.append(held_status(decision, d.user_id, d.message_id, now))
                self._metrics.record_outcome(
                    "outbound",
                    decision.submission.type,
                    decision.submission.recipient,
                    "held",
                    decision.need.reason,
                )
            elif isinstance(decision, Rejected):
                effects.append(
                    rejected_copy(
                        d.body,
                        reason=decision.reason,
                        detail=decision.detail,
                        message_id=d.message_id,
                        content_type=d.content_type,
                        system=d.user_id,
                    )
                )
                effects.append(
                    outgoing.status(
                        "rejected",
                        system=d.user_id,
                        at=now,
                        submission_id=d.message_id,
                        envelope_id=None,
                        type=decision.type,
                        reason=decision.reason,
                        detail=decision.detail,
                    )
                )
                self._metrics.record_outcome(
                    "outbound", decision.type or "unknown", "none", "rejected", decision.reason
                )
            elif item.resend_blocked is not None:
                effects.append(self._resend_blocked(item, now))
            else:
                original = item.appended.original if item.appended else None
                effects.append(
                    outgoing.status(
                        "duplicate",
                        system=d.user_id,
                        at=now,
                        submission_id=d.message_id,
                        envelope_id=original.envelope_id if original else None,
                        type=original.type if original else None,
                        reason="submission.duplicate",
                        detail="this message_id was already processed; nothing new was sent",
                    )
                )
                self._metrics.record_outcome(
                    "outbound",
                    original.type if original and original.type else "unknown",
                    original.recipient if original and original.recipient else "none",
                    "duplicate",
                )
            envelope = decision.envelope if isinstance(decision, Accepted) else None
            submission = (
                decision.submission if isinstance(decision, Accepted | Blocked | Held) else None
            )
            log.info(
                "outbound.decided",
                message_id=d.message_id,
                system=d.user_id,
                envelope_id=envelope["id"] if envelope else None,
                type=submission.type if submission else getattr(decision, "type", None),
                recipient=submission.recipient if submission else None,
                decision=type(decision).__name__.lower() if decision else "duplicate",
                reason=decision.route.reason
                if isinstance(decision, Blocked)
                else decision.need.reason
                if isinstance(decision, Held)
                else getattr(decision, "reason", None),
            )
        return effects

    def _resend_blocked(self, item: Item, now: datetime) -> Outgoing:
        route = item.resend_blocked
        original = item.appended.original if item.appended else None
        assert route is not None
        assert original is not None
        for provider in sorted({provider for provider, _ in route.missing}):
            self._metrics.record_consent_block(provider, original.recipient or "none")
        self._metrics.record_outcome(
            "outbound",
            original.type or "unknown",
            original.recipient or "none",
            "quarantined",
            route.reason,
        )
        return outgoing.status(
            "blocked",
            system=item.delivery.user_id,
            at=now,
            submission_id=item.delivery.message_id,
            envelope_id=original.envelope_id,
            type=original.type,
            reason=route.reason,
            detail=f"not re-sent: {route.detail}",
        )

    async def _commit(self, items: list[Item], now: datetime) -> None:
        effects = self._local_effects(items, now)
        try:
            with self._metrics.time_stage("publish"):
                await self._channel.commit(effects, items[-1].message)
        except StaleBatch:
            log.warning("outbound.channel_lost", batch=len(items))

    async def _give_back(self, items: list[Item]) -> None:
        for item in items:
            try:
                await self._channel.nack(item.message)
            except Exception:  # the channel is gone; the broker requeues on its own
                return


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


def held_status(
    decision: Held, system: str | None, submission_id: str | None, now: datetime
) -> Outgoing:
    """The ``held`` status of a submission waiting for review, for ``system``."""
    return outgoing.status(
        "held",
        system=system,
        at=now,
        submission_id=submission_id,
        envelope_id=None,
        type=decision.submission.type,
        reason=decision.need.reason,
        detail=decision.need.detail,
    )
