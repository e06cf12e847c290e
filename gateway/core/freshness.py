"""Replay window: an envelope must be recent and not dated in the future beyond a small skew.

Both bounds are inclusive: an envelope exactly ``max_age`` old, or exactly ``max_skew`` ahead of
our clock, is still fresh. The skew allowance applies only to the future side; on the old side a
peer clock running late merely shortens the window it gets by that much.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

FreshnessCode = Literal["replay.too_old", "replay.future"]


class FreshnessError(Exception):
    """An envelope outside the replay window; ``code`` is the rejection reason."""

    def __init__(self, code: FreshnessCode, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code: FreshnessCode = code
        self.detail = detail


def check_fresh(
    created_at: datetime, now: datetime, max_age: timedelta, max_skew: timedelta
) -> None:
    """Raise FreshnessError unless ``now - max_age <= created_at <= now + max_skew``."""
    if created_at.tzinfo is None or now.tzinfo is None:
        raise ValueError("created_at and now must be timezone-aware datetimes")
    if max_age <= timedelta(0) or max_skew < timedelta(0):
        raise ValueError("max_age must be positive and max_skew not negative")
    if created_at > now + max_skew:
        raise FreshnessError(
            "replay.future",
            f"created_at {created_at.isoformat()} is {_seconds(created_at - now)} s ahead of "
            f"our clock; at most {_seconds(max_skew)} s of skew is allowed",
        )
    if now - created_at > max_age:
        raise FreshnessError(
            "replay.too_old",
            f"created_at {created_at.isoformat()} is {_seconds(now - created_at)} s old; "
            f"the window is {_seconds(max_age)} s",
        )


def _seconds(delta: timedelta) -> str:
    return f"{delta.total_seconds():.0f}"
