"""Per-sender rate limits: a token bucket per counterparty, pure (the caller passes the time).

A counterparty's frames are taken from its queue only while its bucket is not in debt; the work
of a batch (its envelopes) is charged after it is known, so a batch may overdraw the bucket and
the sender then waits until the debt is paid back. Frames over the rate wait in the broker's
queue (bounded, pushing back on the sender) instead of being dropped.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass
class TokenBucket:
    rate: float  # tokens added per second
    burst: float  # most tokens held
    tokens: float
    updated: float  # monotonic seconds of the last refill

    def _refill(self, now: float) -> None:
        if now > self.updated:
            self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
            self.updated = now

    def take(self, amount: float, now: float) -> None:
        self._refill(now)
        self.tokens -= amount

    def wait_s(self, now: float) -> float:
        """Seconds until the bucket is out of debt: 0 when work may be taken now."""
        self._refill(now)
        return 0.0 if self.tokens >= 0 else -self.tokens / self.rate


class RateLimiter:
    """One token bucket per sender, each starting full."""

    def __init__(self, senders: Iterable[str], rate: float, burst: float, now: float) -> None:
        if rate <= 0 or burst <= 0:
            raise ValueError("rate and burst must be positive")
        self._buckets = {s: TokenBucket(rate, burst, burst, now) for s in senders}

    def wait_s(self, sender: str, now: float) -> float:
        return self._buckets[sender].wait_s(now)

    def charge(self, sender: str, work: float, now: float) -> None:
        self._buckets[sender].take(work, now)
