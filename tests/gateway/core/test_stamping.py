"""rfc3339: the one timestamp form on the wire, written without strftime but to its bytes."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.core.stamping import rfc3339

offsets = st.timedeltas(
    min_value=-timedelta(hours=23, minutes=59), max_value=timedelta(hours=23, minutes=59)
)
zones = st.none() | st.just(UTC) | offsets.map(timezone) | st.timezones()


def reference(moment: datetime) -> str:
    """The formatter the gateway used before, and the form every archive holds."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def outcome(format: Callable[[datetime], str], moment: datetime) -> str | type[BaseException]:
    try:
        return format(moment)
    except (OverflowError, ValueError) as error:
        return type(error)


@given(st.datetimes(timezones=zones))
@settings(max_examples=1000, deadline=None)
def test_rfc3339_writes_what_strftime_wrote(moment: datetime) -> None:
    assert outcome(rfc3339, moment) == outcome(reference, moment)


def test_rfc3339_is_utc_with_microseconds_and_a_z() -> None:
    plus_two = timezone(timedelta(hours=2))
    assert rfc3339(datetime(2026, 12, 1, 8, 5, 9, 7, tzinfo=plus_two)) == (
        "2026-12-01T06:05:09.000007Z"
    )
    assert rfc3339(datetime(999, 1, 2, 3, 4, 5, tzinfo=UTC)) == "999-01-02T03:04:05.000000Z"
