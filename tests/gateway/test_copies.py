"""The keeper of copies for gw.rejected and gw.quarantine: offered again until confirmed."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import cast

from gateway import topology
from gateway.amqp import ConfirmingPublisher, PublishRefused
from gateway.core import publications
from gateway.core.publications import Outgoing
from gateway.metrics import GatewayMetrics
from gateway.workers.copies import CopyKeeper
from gateway.workers.retry import RetryPolicy
from tests.support.waiting import wait_until


class FullQueue:
    """Refuses every copy until ``room`` is set; fails the channel once on the way."""

    def __init__(self) -> None:
        self.room = False
        self.offers: list[int] = []

    async def refused(self, items: Sequence[Outgoing]) -> list[Outgoing]:
        self.offers.append(len(items))
        if len(self.offers) == 2:
            raise PublishRefused("channel lost")
        return [] if self.room else list(items)


def copy(exchange: str) -> Outgoing:
    return publications.held_copy(
        exchange, b"{}", reason="x.y", detail="", message_id=None, content_type=None
    )


def keeper(retry: RetryPolicy | None = None) -> tuple[CopyKeeper, FullQueue, GatewayMetrics]:
    queue = FullQueue()
    metrics = GatewayMetrics("CICA", counterparties=["SCO-RATS"], message_types=[])
    keep = CopyKeeper(cast(ConfirmingPublisher, queue), metrics, retry or RetryPolicy())
    return keep, queue, metrics


def value(metrics: GatewayMetrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


async def test_only_copies_for_the_holding_queues_are_guarded() -> None:
    keep, _, _ = keeper()
    assert keep.guards(copy(topology.REJECTED))
    assert keep.guards(copy(topology.QUARANTINE))
    assert not keep.guards(copy(topology.DELIVER))


async def test_refused_copies_are_counted_held_and_offered_until_accepted() -> None:
    keep, queue, metrics = keeper(RetryPolicy(copies_s=(0.01,)))
    publishing = asyncio.ensure_future(keep.publish([copy(topology.REJECTED)] * 2))
    await wait_until(lambda: len(queue.offers) >= 3, timeout=2, interval=0.005)
    assert value(metrics, "gateway_copies_held") == 1
    assert (value(metrics, "gateway_copies_refused_total", queue="gw.rejected") or 0) >= 4
    queue.room = True
    assert await asyncio.wait_for(publishing, 1) is True
    assert value(metrics, "gateway_copies_held") == 0


async def test_a_stopping_gateway_gives_the_batch_back() -> None:
    keep, _, metrics = keeper()
    publishing = asyncio.ensure_future(keep.publish([copy(topology.QUARANTINE)]))
    await asyncio.sleep(0.05)
    keep.stop()
    assert await asyncio.wait_for(publishing, 1) is False
    assert value(metrics, "gateway_copies_refused_total", queue="gw.quarantine") == 1
