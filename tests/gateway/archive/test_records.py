from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.archive.records import (
    Entry,
    Record,
    parse_time,
    record_from_json,
    record_to_json,
)
from gateway.core.stamping import rfc3339

from .helpers import T0

texts = st.text(max_size=40)
optional = st.none() | texts


def test_entry_normalises_time_and_sequences() -> None:
    plus_two = timezone(timedelta(hours=2))
    entry = Entry(
        "decision",
        "blocked",
        datetime(2026, 3, 1, 14, 0, tzinfo=plus_two),
        bytearray(b"x"),
        derived_from=["a", "b"],  # type: ignore[arg-type]
        headers=[["x-gw-replay-of", "env-1"]],  # type: ignore[list-item]
    )
    assert entry.occurred_at == T0
    assert entry.occurred_at.tzinfo is UTC
    assert entry.payload == b"x"
    assert isinstance(entry.payload, bytes)
    assert entry.derived_from == ("a", "b")
    assert entry.headers == (("x-gw-replay-of", "env-1"),)


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        Entry("decision", "blocked", datetime(2026, 3, 1), b"")


def test_time_format_is_fixed_width_utc() -> None:
    assert rfc3339(T0) == "2026-03-01T12:00:00.000000Z"
    assert parse_time("2026-03-01T14:00:00+02:00") == T0
    assert parse_time("2026-03-01T12:00") == T0


@given(
    seq=st.integers(1, 2**53 - 1),
    payload=st.binary(max_size=64),
    ids=st.tuples(optional, optional, optional, optional),
    refers_to=st.none() | st.integers(1, 2**40),
    derived=st.lists(texts, max_size=3),
    headers=st.lists(st.tuples(texts, texts), max_size=3),
    micros=st.integers(0, 10**12),
)
def test_json_form_round_trips(
    seq: int,
    payload: bytes,
    ids: tuple[str | None, str | None, str | None, str | None],
    refers_to: int | None,
    derived: list[str],
    headers: list[tuple[str, str]],
    micros: int,
) -> None:
    record = Record(
        kind="envelope.in",
        outcome="delivered",
        occurred_at=T0 + timedelta(microseconds=micros),
        payload=payload,
        message_id=ids[0],
        envelope_id=ids[1],
        reason=ids[2],
        detail=ids[3],
        refers_to=refers_to,
        derived_from=tuple(derived),
        attachment_sha256=tuple(derived),
        headers=tuple(headers),
        seq=seq,
        recorded_at=T0,
        prev_hash="0" * 64,
        hash="f" * 64,
    )
    assert record_from_json(record_to_json(record)) == record


def test_malformed_json_record_is_refused() -> None:
    good = record_to_json(
        Record.chained(
            Entry("submission", "sent", T0, b""), seq=1, recorded_at=T0, prev_hash="0", hash="1"
        )
    )
    with pytest.raises(ValueError, match="headers"):
        record_from_json({**good, "headers": [["only-a-name"]]})
    with pytest.raises(ValueError, match="seq"):
        record_from_json({**good, "seq": "1"})
    with pytest.raises(KeyError):
        record_from_json({k: v for k, v in good.items() if k != "kind"})
