"""Grouping consumed messages into batches bounded by count and by a few milliseconds.

One batch is one archive transaction, one broker transaction and one frame per counterparty,
which is what keeps the per-message cost of the gateway near the cost of a bare forwarder.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from aio_pika.abc import AbstractIncomingMessage


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
