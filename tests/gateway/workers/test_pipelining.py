"""Batches are pipelined: the next one is decided and archived while one waits for its
counterparty's confirm, and their commits and acks keep the order of the batches."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from gateway.core.publications import Outgoing
from tests.gateway.workers.rigs import outbound, submitted
from tests.support.fakes import FakeChannel, FakePublisher
from tests.support.waiting import wait_until


class GatedPublisher(FakePublisher):
    """Holds every publish until the test opens ``gate``."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.waiting = 0

    async def refused(self, outgoing: Sequence[Outgoing], timeout: float = 30.0) -> list[Outgoing]:
        self.waiting += 1
        await self.gate.wait()
        return await super().refused(outgoing, timeout)


async def test_the_next_batch_is_archived_while_one_waits_for_its_confirm() -> None:
    peer, channel = GatedPublisher(), FakeChannel()
    worker, rig = outbound(peer=peer, channel=channel)
    running = asyncio.create_task(worker.run())
    try:
        await channel.put(submitted("One.", "m-1"))
        await wait_until(lambda: peer.waiting == 1, message="the first batch's forward")
        await channel.put(submitted("Two.", "m-2"))
        await wait_until(lambda: len(rig.archive.records) == 2, message="the second archived")
        # Its forward waits for the first batch's commit: one publish waiting, nothing acked.
        assert (peer.waiting, channel.commits, channel.acked) == (1, 0, [])

        peer.gate.set()
        await wait_until(lambda: len(channel.acked) == 2, message="both batches acked")
        assert channel.commits == 2
        assert [s["submission_id"] for s in channel.statuses()] == ["m-1", "m-2"]
        sent = [env["originator"]["submission_id"] for env in peer.envelopes()]
        assert sent == ["m-1", "m-2"]
        assert rig.metrics.in_flight.labels("outbound")._value.get() == 0
    finally:
        worker.stop()
        await asyncio.wait_for(running, 5)


async def test_a_lone_message_is_forwarded_and_acked_without_waiting_for_company() -> None:
    channel = FakeChannel()
    worker, _ = outbound(channel=channel)
    running = asyncio.create_task(worker.run())
    try:
        await channel.put(submitted("Alone.", "m-1"))
        await wait_until(lambda: len(channel.acked) == 1, timeout=1, message="the lone ack")
    finally:
        worker.stop()
        await asyncio.wait_for(running, 5)
