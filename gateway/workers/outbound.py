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
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import structlog
from aio_pika.abc import AbstractIncomingMessage

from gateway import topology
from gateway.amqp import PublishRefused
from gateway.core import publications
from gateway.core.outbound_decision import (
    Accepted,
    Delivery,
    OutboundContext,
    OutboundDecision,
    Rejected,
    decide_submission,
)
from gateway.core.stamping import new_envelope_id
from gateway.metrics import GatewayMetrics
from gateway.workers.base import Finish, Worker
from gateway.workers.batches import Batcher, delivery_attempt
from gateway.workers.ports import Archive, Channel, DecideSubmission, Publisher
from gateway.workers.retry import DEFAULT_RETRY, RetryPolicy
from gateway.workers.submissions import (
    Item,
    entry_for,
    frames_of,
    local_effects,
    resend_of,
    submission_key,
)

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


class OutboundWorker(Worker[Sequence[AbstractIncomingMessage]]):
    """gw.submit's batches through decide -> archive -> forward -> commit (see the module)."""

    name = "outbound"

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
        super().__init__(
            channel=channel,
            source=batcher,
            archive=archive,
            metrics=metrics,
            on_state_lost=on_state_lost,
            prepare=prepare,
            max_attempts=max_attempts,
            retry=retry,
        )
        # Frames go to the exchange the counterparty keeps for this Party alone.
        self._peer_exchange = topology.inbound_from(party)
        self._publishers = publishers
        self._batcher = batcher
        self._context = context
        self._max_frame_bytes = publications.max_frame_bytes(max_message_bytes)
        self._decide_submission = decide

    async def consume(self) -> None:
        await self._channel.consume(topology.SUBMIT, self._batcher.on_message)

    async def take(self, batch: Sequence[AbstractIncomingMessage]) -> Finish | None:
        landed = self.flying(len(batch))
        try:
            # Messages of a channel lost since they arrived are back in the queue: not ours.
            batch = await self._channel.current(batch)
            settled = (
                await self._decide_and_archive([self._item(m) for m in batch]) if batch else None
            )
            if settled is None or not settled[0]:
                landed()
                return None
            items, now = settled
            self._check_resends(items, now)
        except BaseException:
            landed()
            raise

        async def finish() -> None:
            try:
                if not await self._forward(items):
                    await self.give_back([item.message for item in items])
                    return
                effects = local_effects(items, now)
                await self.commit(
                    effects.outgoing, items[-1].message, effects.events, batch=len(items)
                )
            finally:
                landed()

        return finish

    async def _decide_and_archive(self, items: list[Item]) -> tuple[list[Item], datetime] | None:
        """Decide and archive the batch: what is left of it to forward and ack, or None when it
        was given back (held while the archive is unavailable, see ``until_archived``)."""

        async def attempt() -> tuple[list[Item], datetime]:
            nonlocal items
            now = datetime.now(UTC)
            await self._decide(items, now)
            again = [item for item in items if item.retry]
            await self.retry_later([item.message for item in again])
            items = [item for item in items if not item.retry]
            if items:
                await self._archive_all(items, now)
            return items, now

        return await self.until_archived(attempt, lambda: [item.message for item in items])

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
                    decision.apply(ctx.state, item.delivery.message_id or "", now)
                item.decision = decision
            except Exception as exc:
                if isinstance(decision, Accepted):
                    self._on_state_lost()  # applied to the state halfway, perhaps
                item.decision = self._failed(item, exc)

    async def _archive_all(self, items: list[Item], now: datetime) -> None:
        party = self._context(now).party
        appended = await self.archive([entry_for(item, party, now) for item in items])
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
            original = item.original
            if item.decision is not None or original is None:
                continue
            if original.kind == "envelope.out" and original.outcome == "sent":
                item.resend, item.resend_blocked = resend_of(original, ctx)

    async def _forward(self, items: list[Item]) -> bool:
        frames = frames_of(items)

        async def send() -> None:
            started = time.perf_counter()
            await asyncio.gather(
                *(
                    self._publishers[recipient].publish_all(
                        publications.frames(
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

        return await self.forward(send, refused)
