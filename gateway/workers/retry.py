"""How long the workers wait before trying again, in one object the runtime and tests share."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from gateway.amqp import PublishRefused


def _after(delays_s: tuple[float, ...], failures: int) -> float:
    """The wait after the ``failures``-th failure (from 1); past the end, the last one again."""
    return delays_s[min(max(failures, 1), len(delays_s)) - 1]


@dataclass(frozen=True)
class RetryPolicy:
    # A batch held while the archive is unavailable (gateway.workers.batches.Hold).
    hold_s: tuple[float, ...] = (0.2, 0.5, 1.0, 2.0)
    # A frame to a counterparty that is unreachable or refuses it.
    forward_s: tuple[float, ...] = (0.2, 0.5, 1.0, 2.0, 5.0)
    # Copies refused by a full gw.rejected or gw.quarantine (gateway.workers.copies).
    copies_s: tuple[float, ...] = (0.5, 1.0, 2.0, 5.0)
    # A control request that failed and went back to its queue.
    failed_request_s: float = 0.5
    # A forward gives up (and its batch goes back to the queue) after this many failures.
    forward_failures: int = 10_005

    def hold_after(self, failures: int) -> float:
        return _after(self.hold_s, failures)

    def forward_after(self, failures: int) -> float:
        return _after(self.forward_s, failures)

    def copies_after(self, failures: int) -> float:
        return _after(self.copies_s, failures)


# What the runtime uses; tests pass a policy with zero waits.
DEFAULT_RETRY = RetryPolicy()


async def until_sent(
    send: Callable[[], Awaitable[None]],
    retry: RetryPolicy,
    stopping: asyncio.Event,
    on_refused: Callable[[int, PublishRefused], None],
) -> bool:
    """``send()`` until it goes through (True), waiting between refusals as ``retry`` says, so
    that the backlog stays in the source queue while the counterparty is unreachable. False
    once ``stopping`` is set or after ``retry.forward_failures`` refusals: the batch goes back."""
    failures = 0
    while True:
        try:
            await send()
            return True
        except PublishRefused as exc:
            on_refused(failures, exc)
        failures += 1
        if failures > retry.forward_failures or stopping.is_set():
            return False
        await asyncio.sleep(retry.forward_after(failures))
