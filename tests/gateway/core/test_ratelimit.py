"""Token buckets per sender."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.core.ratelimit import RateLimiter


def test_a_full_bucket_lets_work_through_until_it_is_in_debt() -> None:
    limiter = RateLimiter(["A"], rate=100, burst=300, now=0.0)
    limiter.charge("A", 300, now=0.0)
    assert limiter.wait_s("A", now=0.0) == 0.0  # empty, not in debt
    limiter.charge("A", 50, now=0.0)
    assert limiter.wait_s("A", now=0.0) == pytest.approx(0.5)
    assert limiter.wait_s("A", now=0.25) == pytest.approx(0.25)
    assert limiter.wait_s("A", now=0.5) == 0.0


def test_senders_have_buckets_of_their_own() -> None:
    limiter = RateLimiter(["A", "B"], rate=10, burst=10, now=0.0)
    limiter.charge("A", 1000, now=0.0)
    assert limiter.wait_s("A", now=0.0) == pytest.approx(99.0)
    assert limiter.wait_s("B", now=0.0) == 0.0


def test_idle_time_refills_no_more_than_the_burst() -> None:
    limiter = RateLimiter(["A"], rate=10, burst=20, now=0.0)
    limiter.charge("A", 20, now=0.0)
    limiter.charge("A", 30, now=3600.0)  # an hour idle refills 20, not 36 000
    assert limiter.wait_s("A", now=3600.0) == pytest.approx(1.0)


def test_a_limit_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        RateLimiter(["A"], rate=0, burst=10, now=0.0)


@given(
    st.lists(
        st.tuples(st.floats(0, 10), st.integers(0, 500)),
        min_size=1,
        max_size=50,
    )
)
def test_work_taken_never_exceeds_burst_plus_rate_times_time_plus_one_batch(
    steps: list[tuple[float, int]],
) -> None:
    """Whatever the timing, a sender that only takes work when not in debt gets at most the
    burst, plus the rate over the elapsed time, plus one batch of overdraft."""
    rate, burst = 100.0, 200.0
    limiter = RateLimiter(["A"], rate=rate, burst=burst, now=0.0)
    now, taken = 0.0, 0
    for gap, work in steps:
        now += gap
        if limiter.wait_s("A", now) == 0.0:
            limiter.charge("A", work, now)
            taken += work
    assert taken <= burst + rate * now + 500
