"""The test's traffic: a stream of submissions from CICA's case desk, and SCO-RATS's back-office
queue where every delivery is counted by the submission it came from."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import aio_pika
from aio_pika.abc import AbstractRobustConnection

from gateway import topology
from tests.support.parties import Desk, assignment, share, submission
from tests.support.services import ADMIN_URL

PIPELINE = 250
OFFICER = "lo-0001"


async def publish_stream(desk: Desk, ids: Sequence[str], *, threads: int = 0) -> None:
    """Submit one information.share per id, up to ``PIPELINE`` publishes in flight at a time.

    With ``threads`` the submissions are spread round-robin over that many correlation threads
    (thread of id i: ``thread-<i % threads>``), so the receiver can check order per thread; then
    at most one publish per thread is in flight, so the broker receives each thread in order.
    """
    step = min(PIPELINE, threads) if threads else PIPELINE
    for start in range(0, len(ids), step):
        chunk = range(start, min(start + step, len(ids)))
        await asyncio.gather(
            *(
                desk.submit(
                    share(
                        "SCO-RATS",
                        f"Report {i}.",
                        officer=OFFICER,
                        correlation_id=thread_of(i, threads),
                    ),
                    message_id=ids[i],
                )
                for i in chunk
            )
        )


def thread_of(index: int, threads: int) -> str | None:
    return f"thread-{index % threads}" if threads else None


def stream_ids(count: int) -> list[str]:
    """Submission ids of one stream, in stream order, unique to this run."""
    run = uuid.uuid4().hex[:8]
    return [f"{run}-{i:05d}" for i in range(count)]


async def accredit(desk: Desk) -> None:
    """Put the officer on CICA's roster (as SCO-RATS learns it too) before any share."""
    await desk.submit(submission("liaison.assignment", "SCO-RATS", assignment(OFFICER)))


class Inbox:
    """A durable back-office queue at SCO-RATS bound to gw.deliver. Nothing consumes it until
    ``drain``, so its depth is the number of deliveries so far; durable and quorum, it keeps
    them through a broker restart."""

    def __init__(self, vhost: str, routing_key: str = "CICA.information.share") -> None:
        self.vhost = vhost
        self.routing_key = routing_key
        self.name = f"bo.fault.{uuid.uuid4().hex[:12]}"
        self._connection: AbstractRobustConnection | None = None

    async def open(self) -> None:
        self._connection = await aio_pika.connect_robust(
            ADMIN_URL.format(vhost=self.vhost), reconnect_interval=0.5
        )
        channel = await self._connection.channel()
        queue = await channel.declare_queue(
            self.name, durable=True, arguments={"x-queue-type": "quorum"}
        )
        await queue.bind(topology.DELIVER, routing_key=self.routing_key)
        await channel.close()

    async def depth(self) -> int:
        """Deliveries so far; -1 while the broker does not answer."""
        assert self._connection is not None
        try:
            channel = await self._connection.channel()
            try:
                queue = await channel.declare_queue(self.name, passive=True, robust=False)
                return int(queue.declaration_result.message_count or 0)
            finally:
                await channel.close()
        except (aio_pika.exceptions.AMQPError, ConnectionError, RuntimeError, TimeoutError):
            return -1

    async def drain(self, timeout: float = 60.0) -> list[dict[str, Any]]:
        """Every delivered envelope, in arrival order (consumed and acknowledged)."""
        assert self._connection is not None
        expected = await self.depth()
        channel = await self._connection.channel()
        await channel.set_qos(prefetch_count=1000)
        queue = await channel.declare_queue(self.name, passive=True)
        envelopes: list[dict[str, Any]] = []
        done = asyncio.Event()

        async def take(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            envelopes.append(json.loads(message.body))
            await message.ack()
            if len(envelopes) >= expected:
                done.set()

        if expected > 0:
            tag = await queue.consume(take)
            await asyncio.wait_for(done.wait(), timeout)
            await queue.cancel(tag)
        await channel.close()
        return envelopes

    async def close(self) -> None:
        if self._connection is None:
            return
        channel = await self._connection.channel()
        await channel.queue_delete(self.name)
        await self._connection.close()


@dataclass(frozen=True)
class Tally:
    """What arrived, counted by submission id."""

    lost: list[str]
    twice: dict[str, int]
    unexpected: list[str]

    @property
    def exact(self) -> bool:
        return not (self.lost or self.twice or self.unexpected)

    def __str__(self) -> str:
        return (
            f"{len(self.lost)} lost (first {self.lost[:5]}), "
            f"{len(self.twice)} delivered more than once (first {list(self.twice.items())[:5]}), "
            f"{len(self.unexpected)} unexpected (first {self.unexpected[:5]})"
        )


def tally(sent: Sequence[str], envelopes: Sequence[dict[str, Any]]) -> Tally:
    arrived = Counter(str(env["originator"]["submission_id"]) for env in envelopes)
    wanted = set(sent)
    return Tally(
        lost=[i for i in sent if i not in arrived],
        twice={i: n for i, n in arrived.items() if n > 1},
        unexpected=sorted(i for i in arrived if i not in wanted),
    )
