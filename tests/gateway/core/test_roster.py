from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.core.roster import Accreditation, Roster, RosterError

T0 = datetime(2026, 3, 1, 9, 0, 0, tzinfo=UTC)


def _assign(
    officer: str = "lo-0042",
    valid_from: Any = "2026-01-01",
    valid_to: Any = None,
    name: str = "A. Officer",
    role: str = "liaison officer",
) -> dict[str, Any]:
    return {
        "action": "assign",
        "officer": {"id": officer, "name": name, "role": role, "contact": "a@example.org"},
        "valid_from": valid_from,
        "valid_to": valid_to,
        "authorization": {"reference": "MS-2026-17"},
    }


def _withdraw(officer: str = "lo-0042") -> dict[str, Any]:
    return {"action": "withdraw", "officer": {"id": officer}, "authorization": {"reference": "x"}}


def test_assign_accredits_only_that_party_and_officer() -> None:
    roster = Roster()
    roster.apply("CICA", _assign(), T0)
    assert roster.is_accredited("CICA", "lo-0042", T0)
    assert roster.is_accredited("CICA", "lo-0042", T0 + timedelta(days=400))
    assert not roster.is_accredited("SCO-RATS", "lo-0042", T0)
    assert not roster.is_accredited("CICA", "lo-0043", T0)


def test_unknown_officer_is_not_accredited() -> None:
    assert not Roster().is_accredited("CICA", "lo-0042", T0)


def test_assignment_counts_only_from_its_message_time() -> None:
    roster = Roster()
    roster.apply("CICA", _assign(valid_from="2026-01-01"), T0)
    assert not roster.is_accredited("CICA", "lo-0042", T0 - timedelta(seconds=1))


def test_date_window_is_whole_utc_days_inclusive() -> None:
    roster = Roster()
    roster.apply("CICA", _assign(valid_from="2026-03-10", valid_to="2026-03-20"), T0)
    day = datetime(2026, 3, 10, tzinfo=UTC)
    assert not roster.is_accredited("CICA", "lo-0042", day - timedelta(microseconds=1))
    assert roster.is_accredited("CICA", "lo-0042", day)
    assert roster.is_accredited("CICA", "lo-0042", datetime(2026, 3, 20, 23, 59, 59, tzinfo=UTC))
    assert not roster.is_accredited("CICA", "lo-0042", datetime(2026, 3, 21, tzinfo=UTC))


def test_datetime_window_is_half_open() -> None:
    roster = Roster()
    start, end = T0 + timedelta(hours=1), T0 + timedelta(hours=2)
    roster.apply(
        "CICA", _assign(valid_from="2026-03-01T12:00:00+02:00", valid_to="2026-03-01T11:00:00Z"), T0
    )
    assert not roster.is_accredited("CICA", "lo-0042", start - timedelta(seconds=1))
    assert roster.is_accredited("CICA", "lo-0042", start)
    assert not roster.is_accredited("CICA", "lo-0042", end)


def test_python_date_and_datetime_values_are_accepted() -> None:
    roster = Roster()
    roster.apply("CICA", _assign(valid_from=date(2026, 1, 1), valid_to=T0 + timedelta(days=1)), T0)
    [accreditation] = roster.officers("CICA")
    assert accreditation.valid_from == date(2026, 1, 1)
    assert accreditation.valid_to == T0 + timedelta(days=1)
    assert roster.is_accredited("CICA", "lo-0042", T0)


def test_later_withdraw_wins() -> None:
    roster = Roster()
    roster.apply("CICA", _assign(), T0)
    roster.apply("CICA", _withdraw(), T0 + timedelta(hours=1))
    assert not roster.is_accredited("CICA", "lo-0042", T0 + timedelta(hours=1))
    # Messages written before the withdrawal are judged by the roster of their time.
    assert roster.is_accredited("CICA", "lo-0042", T0 + timedelta(minutes=59))


def test_later_withdraw_wins_whatever_the_application_order() -> None:
    roster = Roster()
    roster.apply("CICA", _withdraw(), T0 + timedelta(hours=1))
    roster.apply("CICA", _assign(), T0)
    assert not roster.is_accredited("CICA", "lo-0042", T0 + timedelta(hours=2))
    assert roster.officers("CICA") == []


def test_reassignment_after_withdrawal() -> None:
    roster = Roster()
    roster.apply("CICA", _assign(), T0)
    roster.apply("CICA", _withdraw(), T0 + timedelta(hours=1))
    roster.apply("CICA", _assign(role="head of office"), T0 + timedelta(hours=2))
    assert not roster.is_accredited("CICA", "lo-0042", T0 + timedelta(hours=1, minutes=30))
    assert roster.is_accredited("CICA", "lo-0042", T0 + timedelta(hours=2))
    assert [a.role for a in roster.officers("CICA")] == ["head of office"]


def test_withdraw_wins_a_tie() -> None:
    roster = Roster()
    roster.apply("CICA", _withdraw(), T0)
    roster.apply("CICA", _assign(), T0)
    assert not roster.is_accredited("CICA", "lo-0042", T0)


def test_later_assign_replaces_window() -> None:
    roster = Roster()
    roster.apply("CICA", _assign(valid_to="2026-12-31"), T0)
    roster.apply("CICA", _assign(valid_to="2026-03-31"), T0 + timedelta(days=1))
    assert not roster.is_accredited("CICA", "lo-0042", datetime(2026, 6, 1, tzinfo=UTC))


def test_reapplying_the_same_body_changes_nothing() -> None:
    roster = Roster()
    for _ in range(3):
        roster.apply("CICA", _assign(), T0)
    assert len(roster.officers("CICA")) == 1


def test_officers_lists_current_assignments_by_id() -> None:
    roster = Roster()
    roster.apply("CICA", _assign(officer="lo-2", name="B"), T0)
    roster.apply("CICA", _assign(officer="lo-1", name="A", valid_to="2026-12-31"), T0)
    roster.apply("CICA", _assign(officer="lo-3"), T0)
    roster.apply("CICA", _withdraw(officer="lo-3"), T0 + timedelta(seconds=1))
    roster.apply("SCO-RATS", _assign(officer="r-1"), T0)
    assert roster.officers("CICA") == [
        Accreditation("CICA", "lo-1", "A", "liaison officer", date(2026, 1, 1), date(2026, 12, 31)),
        Accreditation("CICA", "lo-2", "B", "liaison officer", date(2026, 1, 1), None),
    ]
    assert [a.officer_id for a in roster.officers("SCO-RATS")] == ["r-1"]
    assert roster.officers("UNOCT") == []


@pytest.mark.parametrize(
    "body",
    [
        {"action": "promote", "officer": {"id": "x"}},
        {"action": "assign"},
        {"action": "withdraw", "officer": "lo-1"},
        {"action": "withdraw", "officer": {"id": ""}},
        {**_assign(), "officer": {"id": "x", "role": "r"}},
        {**_assign(), "valid_from": None},
        {**_assign(), "valid_from": "soon"},
        {**_assign(), "valid_from": "2026-01-01T00:00:00"},
        {**_assign(), "valid_from": datetime(2026, 1, 1)},
        {**_assign(), "valid_from": "2026-02-30"},
        {**_assign(), "valid_from": 20260101},
        _assign(valid_from="2026-05-01", valid_to="2026-04-30"),
    ],
    ids=[
        "unknown action",
        "no officer",
        "officer not an object",
        "empty id",
        "no name",
        "no valid_from",
        "garbage valid_from",
        "naive timestamp",
        "naive datetime",
        "impossible date",
        "number",
        "ends before it starts",
    ],
)
def test_unusable_bodies_raise_roster_error(body: dict[str, Any]) -> None:
    roster = Roster()
    with pytest.raises(RosterError):
        roster.apply("CICA", body, T0)
    assert roster.officers("CICA") == []


def test_naive_times_are_programming_errors() -> None:
    roster = Roster()
    with pytest.raises(ValueError, match="timezone-aware"):
        roster.apply("CICA", _assign(), datetime(2026, 3, 1))
    with pytest.raises(ValueError, match="timezone-aware"):
        roster.is_accredited("CICA", "lo-0042", datetime(2026, 3, 1))


def test_open_ended_date_max_does_not_overflow() -> None:
    roster = Roster()
    roster.apply("CICA", _assign(valid_to="9999-12-31"), T0)
    assert roster.is_accredited("CICA", "lo-0042", T0)


_events = st.lists(
    st.tuples(
        st.sampled_from(["lo-1", "lo-2"]),
        st.sampled_from(["assign", "withdraw"]),
        st.integers(0, 5),
        st.sampled_from([None, "2026-03-01", "2026-03-03"]),
    ),
    max_size=8,
)


@settings(max_examples=60, deadline=None)
@given(_events, st.randoms(use_true_random=False))
def test_result_depends_only_on_the_set_of_events(events: list[Any], rng: Any) -> None:
    def build(order: list[Any]) -> Roster:
        roster = Roster()
        for officer, action, hour, valid_to in order:
            body = _assign(officer, valid_to=valid_to) if action == "assign" else _withdraw(officer)
            roster.apply("CICA", body, T0 + timedelta(hours=hour))
        return roster

    shuffled = list(events)
    rng.shuffle(shuffled)
    a, b = build(events), build(shuffled)
    assert a.officers("CICA") == b.officers("CICA")
    for officer in ("lo-1", "lo-2"):
        for hour in range(-1, 80, 7):
            moment = T0 + timedelta(hours=hour)
            assert a.is_accredited("CICA", officer, moment) == b.is_accredited(
                "CICA", officer, moment
            )
