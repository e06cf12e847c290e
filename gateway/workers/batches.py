"""Grouping consumed messages into batches bounded by count and by a few milliseconds.

One batch is one archive transaction, one broker transaction and one frame per counterparty,
which is what keeps the per-message cost of the gateway near the cost of a bare forwarder.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from aio_pika.abc import AbstractIncomingMessage

from gateway.archive import ArchiveStore

DELIVERY_COUNT_HEADER = "x-delivery-count"
HOLD_DELAYS_S = (0.2, 0.5, 1.0, 2.0)


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

    def __init__(self, archive: ArchiveStore, max_attempts: int) -> None:
        self._archive = archive
        self._max_attempts = max_attempts
        self.failures = 0

    async def again(self) -> bool:
        """After a failure: wait, then True to try again, or False to give the batch back."""
        self.failures += 1
        if self.failures >= self._max_attempts and await self._archive_answers():
            return False
        await asyncio.sleep(HOLD_DELAYS_S[min(self.failures, len(HOLD_DELAYS_S)) - 1])
        return True

    async def _archive_answers(self) -> bool:
        try:
            await self._archive.ping()
        except Exception:
            return False
        return True


class Batcher:
    def __init__(self, max_size: int, linger_s: float) -> None:
        self._queue: asyncio.Queue[AbstractIncomingMessage] = asyncio.Queue()
        self._max_size = max_size
        self._linger_s = linger_s

    @property
    def on_message(self) -> Callable[[AbstractIncomingMessage], Awaitable[None]]:
        async def put(message: AbstractIncomingMessage) -> None:
            self._queue.put_nowait(message)

        return put

    def pending(self) -> int:
        return self._queue.qsize()

    def drop_pending(self) -> None:
        while not self._queue.empty():
            self._queue.get_nowait()

    async def next_batch(self) -> list[AbstractIncomingMessage]:
        """Wait for one message, then take what else arrives within the linger time."""
        batch = [await self._queue.get()]
        deadline = time.monotonic() + self._linger_s
        while len(batch) < self._max_size:
            if not self._queue.empty():
                batch.append(self._queue.get_nowait())
                continue
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                batch.append(await asyncio.wait_for(self._queue.get(), remaining))
            except TimeoutError:
                break
        return batch

    async def next_batch_or(self, stopping: asyncio.Event) -> list[AbstractIncomingMessage] | None:
        """The next batch, or None once ``stopping`` is set (what is buffered stays unacked)."""
        getter = asyncio.ensure_future(self.next_batch())
        stopper = asyncio.ensure_future(stopping.wait())
        done, _ = await asyncio.wait({getter, stopper}, return_when=asyncio.FIRST_COMPLETED)
        if getter in done:
            stopper.cancel()
            return getter.result()
        getter.cancel()
        return None
