from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gateway.core.freshness import FreshnessError, check_fresh

NOW = datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC)
AGE = timedelta(hours=24)
SKEW = timedelta(seconds=120)


@pytest.mark.parametrize(
    "offset",
    [timedelta(0), -AGE, SKEW, -timedelta(hours=1), timedelta(seconds=1)],
    ids=["now", "exactly max age", "exactly max skew", "an hour old", "slightly ahead"],
)
def test_fresh_envelopes_pass(offset: timedelta) -> None:
    check_fresh(NOW + offset, NOW, AGE, SKEW)


def test_too_old() -> None:
    with pytest.raises(FreshnessError) as caught:
        check_fresh(NOW - AGE - timedelta(seconds=1), NOW, AGE, SKEW)
    assert caught.value.code == "replay.too_old"
    assert "86401 s old" in caught.value.detail


def test_future_beyond_skew() -> None:
    with pytest.raises(FreshnessError) as caught:
        check_fresh(NOW + SKEW + timedelta(seconds=1), NOW, AGE, SKEW)
    assert caught.value.code == "replay.future"
    assert "121 s ahead" in caught.value.detail


def test_zero_skew_refuses_any_future_date() -> None:
    with pytest.raises(FreshnessError) as caught:
        check_fresh(NOW + timedelta(microseconds=1), NOW, AGE, timedelta(0))
    assert caught.value.code == "replay.future"


def test_other_timezones_compare_as_instants() -> None:
    plus_two = NOW.astimezone(datetime.fromisoformat("2026-01-01T00:00:00+02:00").tzinfo)
    check_fresh(plus_two, NOW, AGE, timedelta(0))


def test_error_message_starts_with_code() -> None:
    with pytest.raises(FreshnessError, match=r"^replay\.too_old: "):
        check_fresh(NOW - 2 * AGE, NOW, AGE, SKEW)


@pytest.mark.parametrize(
    ("created_at", "now", "max_age", "max_skew"),
    [
        (datetime(2026, 6, 1), NOW, AGE, SKEW),
        (NOW, datetime(2026, 6, 1), AGE, SKEW),
        (NOW, NOW, timedelta(0), SKEW),
        (NOW, NOW, AGE, timedelta(seconds=-1)),
    ],
    ids=["naive created_at", "naive now", "zero max age", "negative skew"],
)
def test_bad_arguments_are_programming_errors(
    created_at: datetime, now: datetime, max_age: timedelta, max_skew: timedelta
) -> None:
    with pytest.raises(ValueError, match=r"timezone-aware|max_age"):
        check_fresh(created_at, now, max_age, max_skew)
