"""Grouping consumed messages into batches bounded by count and by a few milliseconds.

One batch is one archive transaction, one broker transaction and one frame per counterparty,
which is what keeps the per-message cost of the gateway near the cost of a bare forwarder.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from typing import TypeVar

from aio_pika.abc import AbstractIncomingMessage

from gateway.core.ratelimit import RateLimiter
from gateway.workers.ports import Pingable
from gateway.workers.retry import DEFAULT_RETRY, RetryPolicy

DELIVERY_COUNT_HEADER = "x-delivery-count"

_Batch = TypeVar("_Batch")


def delivery_attempt(message: AbstractIncomingMessage) -> int:
    """Which delivery of ``message`` this is, counting from 1: quorum queues count the earlier
    ones (given back by a nack, a lost channel or a crashed consumer) in x-delivery-count."""
    count = (message.headers or {}).get(DELIVERY_COUNT_HEADER)
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        return 1
    return count + 1


class Hold:
    """Whether a worker keeps a batch whose archive step failed, unacknowledged, to try again.

    An outage (the archive does not answer) is waited out: giving the messages back instead would
    count every round as a failed delivery towards the broker's delivery limit, which
    dead-letters them. A batch that keeps failing while the archive answers is no outage; after
    ``max_attempts`` rounds it is given back, and the broker's delivery limit is the backstop.
    """

    def __init__(
        self, archive: Pingable, max_attempts: int, retry: RetryPolicy = DEFAULT_RETRY
    ) -> None:
        self._archive = archive
        self._max_attempts = max_attempts
        self._retry = retry
        self.failures = 0

    async def again(self) -> bool:
        """After a failure: wait, then True to try again, or False to give the batch back."""
        self.failures += 1
        if self.failures >= self._max_attempts and await self._archive_answers():
            return False
        await asyncio.sleep(self._retry.hold_after(self.failures))
        return True

    async def _archive_answers(self) -> bool:
        try:
            await self._archive.ping()
        except Exception:
            return False
        return True


class Batcher:
    """Batches of at most ``max_size`` messages and, past the first message, ``max_bytes``."""

    def __init__(self, max_size: int, linger_s: float, max_bytes: int | None = None) -> None:
        self._queue: asyncio.Queue[AbstractIncomingMessage] = asyncio.Queue()
        self._max_size = max_size
        self._linger_s = linger_s
        self._max_bytes = max_bytes

    @property
    def on_message(self) -> Callable[[AbstractIncomingMessage], Awaitable[None]]:
        async def put(message: AbstractIncomingMessage) -> None:
            self._queue.put_nowait(message)

        return put

    def pending(self) -> int:
        return self._queue.qsize()

    async def next_batch(self) -> list[AbstractIncomingMessage]:
        """Wait for one message, then take what else arrives within the linger time, if
        anything is behind it: a lone message goes at once instead of waiting for company.

        Under load the batch cycle itself gathers the next batch (what arrives while one is
        archived and committed), so lingering only ever paid when messages were already queued.
        """
        batch = [await self._queue.get()]
        # One turn of the loop first: deliveries read in the same chunk land in the queue.
        await asyncio.sleep(0)
        if self._queue.empty():
            return batch
        size = len(batch[0].body)
        deadline = time.monotonic() + self._linger_s
        while len(batch) < self._max_size:
            if self._max_bytes is not None and size >= self._max_bytes:
                break
            if not self._queue.empty():
                batch.append(self._queue.get_nowait())
                size += len(batch[-1].body)
                continue
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                batch.append(await asyncio.wait_for(self._queue.get(), remaining))
            except TimeoutError:
                break
            size += len(batch[-1].body)
        return batch

    async def next_batch_or(
        self, stopping: asyncio.Event, *, burst: bool = False
    ) -> list[AbstractIncomingMessage] | None:
        """The next batch, or None once ``stopping`` is set (what is buffered stays unacked);
        in ``burst`` mode also None as soon as no message is waiting (see ``drained``)."""
        if drained(self.pending(), stopping, burst):
            return None
        return await until_stopped(self.next_batch(), stopping)


def drained(pending: int, stopping: asyncio.Event, burst: bool) -> bool:
    """Whether a worker in burst mode is done: nothing waiting, or stopping. Like arq's burst
    mode, it lets a test run a worker until what was delivered to it is handled, and return."""
    return burst and (pending == 0 or stopping.is_set())


async def until_stopped(next_batch: Awaitable[_Batch], stopping: asyncio.Event) -> _Batch | None:
    """``next_batch``, or None once ``stopping`` is set first."""
    getter = asyncio.ensure_future(next_batch)
    stopper = asyncio.ensure_future(stopping.wait())
    done, _ = await asyncio.wait({getter, stopper}, return_when=asyncio.FIRST_COMPLETED)
    if getter in done:
        stopper.cancel()
        return getter.result()
    getter.cancel()
    return None


class RoundRobin:
    """Batches from one Batcher per source (a counterparty's queue), taken in turn: a source
    with messages waiting gets the next batch after each other source with messages waiting
    has had one, so a flood from one source delays another by one batch at most.

    With a ``limiter``, a source in debt (see gateway.core.ratelimit) is passed over until it is
    not; ``on_limited(source, limited)`` hears when that starts and stops.
    """

    def __init__(
        self,
        batchers: Mapping[str, Batcher],
        limiter: RateLimiter | None = None,
        on_limited: Callable[[str, bool], None] | None = None,
    ) -> None:
        self._batchers = dict(batchers)
        self._turns = deque(self._batchers)
        self._arrived = asyncio.Event()
        self._limiter = limiter
        self._on_limited = on_limited
        self._limited: set[str] = set()

    def on_message(self, source: str) -> Callable[[AbstractIncomingMessage], Awaitable[None]]:
        put = self._batchers[source].on_message

        async def arrived(message: AbstractIncomingMessage) -> None:
            await put(message)
            self._arrived.set()

        return arrived

    def charge(self, source: str, work: int) -> None:
        """Count ``work`` (envelopes handled) against ``source``'s rate limit."""
        if self._limiter is not None:
            self._limiter.charge(source, work, time.monotonic())

    async def next_batch(self) -> tuple[str, list[AbstractIncomingMessage]]:
        """The next source with messages waiting and not over its limit, in turn, and a batch
        of its messages."""
        while True:
            waits: list[float] = []
            for _ in self._batchers:
                source = self._turns[0]
                self._turns.rotate(-1)
                wait = self._wait_s(source) if self._batchers[source].pending() else 0.0
                self._mark(source, wait > 0)
                if wait > 0:
                    waits.append(wait)
                elif self._batchers[source].pending():
                    return source, await self._batchers[source].next_batch()
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), min(waits, default=None))

    async def next_batch_or(
        self, stopping: asyncio.Event, *, burst: bool = False
    ) -> tuple[str, list[AbstractIncomingMessage]] | None:
        pending = sum(batcher.pending() for batcher in self._batchers.values())
        if drained(pending, stopping, burst):
            return None
        return await until_stopped(self.next_batch(), stopping)

    def _wait_s(self, source: str) -> float:
        return 0.0 if self._limiter is None else self._limiter.wait_s(source, time.monotonic())

    def _mark(self, source: str, limited: bool) -> None:
        if limited == (source in self._limited):
            return
        if limited:
            self._limited.add(source)
        else:
            self._limited.discard(source)
        if self._on_limited is not None:
            self._on_limited(source, limited)
