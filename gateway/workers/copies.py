"""The copies a batch leaves in gw.rejected and gw.quarantine, published with confirms.

Inside the batch's broker transaction a copy that its queue refuses (full, with overflow
reject-publish) would vanish: a transaction gets no per-message refusal. Published with
publisher confirms first, a refused copy is known. The batch is then held, unacknowledged, and
the refused copies are offered again until the queue has room (operators drain it), with an
error log, gateway_copies_held and gateway_copies_refused_total (alert CopiesRefused). Only a
stopping gateway gives the batch back; its redelivery may then leave a second copy, never none.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Sequence

import structlog
from aio_pika.abc import AbstractRobustConnection

from gateway import topology
from gateway.amqp import PublishRefused
from gateway.core.publications import Outgoing
from gateway.metrics import GatewayMetrics
from gateway.workers.ports import CopyPublisher
from gateway.workers.retry import DEFAULT_RETRY, RetryPolicy

log = structlog.get_logger(__name__)

HELD_EXCHANGES = frozenset({topology.REJECTED, topology.QUARANTINE})


class CopyKeeper:
    def __init__(
        self,
        publisher: CopyPublisher,
        metrics: GatewayMetrics,
        retry: RetryPolicy = DEFAULT_RETRY,
    ) -> None:
        self._publisher = publisher
        self._metrics = metrics
        self._retry = retry
        self._stopping = asyncio.Event()

    async def open(self, connection: AbstractRobustConnection) -> None:
        await self._publisher.open(connection)

    def stop(self) -> None:
        self._stopping.set()

    def guards(self, item: Outgoing) -> bool:
        return item.exchange in HELD_EXCHANGES

    async def publish(self, items: Sequence[Outgoing]) -> bool:
        """True once the broker has confirmed every copy; False if the gateway stops first."""
        pending, attempt = list(items), 0
        while True:
            try:
                pending = await self._publisher.refused(pending)
            except PublishRefused as exc:
                log.warning("copies.not_confirmed", error=str(exc), count=len(pending))
            if not pending:
                self._metrics.copies_held.set(0)
                return True
            self._refused(pending)
            attempt += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self._retry.copies_after(attempt))
            if self._stopping.is_set():
                return False

    def _refused(self, pending: Sequence[Outgoing]) -> None:
        self._metrics.copies_held.set(1)
        for queue, count in Counter(item.exchange for item in pending).items():
            self._metrics.copies_refused.labels(queue).inc(count)
            log.error(
                "copies.refused",
                queue=queue,
                count=count,
                decision="held",
                hint="the queue is full: drain it; the batch waits unacknowledged",
            )
