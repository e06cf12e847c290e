"""Frames, status events and held copies as plain data."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from contracts import MAX_FRAME_ENVELOPES, parse_frame
from gateway import topology
from gateway.core import publications


def envelope(i: int, size: int) -> dict[str, object]:
    return {"id": f"env-{i}", "body": {"text": "x" * size}}


def ids() -> object:
    counter = itertools.count()
    return lambda: f"frame-{next(counter)}"


def test_small_envelopes_share_one_frame() -> None:
    envelopes = [envelope(i, 100) for i in range(50)]
    frames = publications.frames(
        envelopes, max_bytes=1_000_000, exchange="gw.inbound", new_id=ids()
    )
    assert len(frames) == 1
    assert [e["id"] for e in parse_frame(frames[0].body)] == [f"env-{i}" for i in range(50)]
    assert frames[0].content_type == topology.FRAME_CONTENT_TYPE


def test_frames_are_split_under_the_limit_and_keep_every_envelope_in_order() -> None:
    limit = publications.max_frame_bytes(200_000)
    envelopes = [envelope(i, 60_000) for i in range(10)]
    frames = publications.frames(envelopes, max_bytes=limit, exchange="gw.inbound", new_id=ids())
    assert len(frames) > 1
    assert all(len(f.body) <= limit for f in frames)
    assert len({f.message_id for f in frames}) == len(frames)
    unpacked = [e["id"] for f in frames for e in parse_frame(f.body)]
    assert unpacked == [f"env-{i}" for i in range(10)]


def test_envelopes_at_the_submission_limit_each_fit_a_frame_of_their_own() -> None:
    limit = 100_000
    frames = publications.frames(
        [envelope(1, limit), envelope(2, limit)],
        max_bytes=publications.max_frame_bytes(limit),
        exchange="gw.inbound",
        new_id=ids(),
    )
    assert all(len(f.body) <= publications.max_frame_bytes(limit) for f in frames)
    assert [len(parse_frame(f.body)) for f in frames] == [1, 1]


def test_status_event_routing_key_and_body() -> None:
    at = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
    event = publications.status(
        "rejected",
        system="case-desk",
        at=at,
        submission_id="m1",
        envelope_id=None,
        type=None,
        reason="schema.invalid_json",
        detail="not JSON",
    )
    assert event.exchange == topology.STATUS
    assert event.routing_key == "case-desk.rejected.unknown"
    body = json.loads(event.body)
    assert body["status"] == "rejected"
    assert body["reason"] == "schema.invalid_json"
    assert body["at"] == "2026-11-27T12:00:00.000000Z"


# Printable ASCII, the characters either side of it (controls, DEL, Latin-1), any code point
# including lone surrogates; and values of other types, which the fast path leaves alone.
texts = st.text(alphabet=st.characters(max_codepoint=0xA0)) | st.text()
objects = st.dictionaries(texts, texts, max_size=2)
values = st.none() | texts | st.integers() | st.lists(objects, max_size=2)


@given(st.dictionaries(st.text(alphabet=st.characters(max_codepoint=0x7F)), values, max_size=8))
@settings(max_examples=400, deadline=None)
def test_status_json_writes_what_the_standard_library_wrote(event: dict[str, Any]) -> None:
    assert publications.status_json(event) == json.dumps(event, separators=(",", ":")).encode()


def test_held_copy_carries_reason_and_a_bounded_detail() -> None:
    copy = publications.held_copy(
        topology.REJECTED,
        b"raw",
        reason="schema.too_large",
        detail="d" * 5000,
        message_id="m",
        content_type=None,
        extra={"x-gw-system": "case-desk"},
    )
    assert copy.headers[topology.REASON_HEADER] == "schema.too_large"
    assert len(copy.headers[topology.DETAIL_HEADER]) == 1000
    assert copy.headers["x-gw-system"] == "case-desk"
    assert copy.body == b"raw"


def test_no_frame_holds_more_envelopes_than_a_receiver_accepts() -> None:
    count = 2 * MAX_FRAME_ENVELOPES + 1
    frames = publications.frames(
        [envelope(i, 1) for i in range(count)],
        max_bytes=10_000_000,
        exchange="gw.inbound",
        new_id=ids(),
    )
    sizes = [len(parse_frame(f.body)) for f in frames]
    assert sizes == [MAX_FRAME_ENVELOPES, MAX_FRAME_ENVELOPES, 1]
