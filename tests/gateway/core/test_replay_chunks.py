"""Many records in one re-delivery request: its format and bounds, the tool's chunks of a plan
and each record's answer read back from the request's one answer."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.core.control_requests import (
    MALFORMED,
    MAX_REQUEST_BYTES,
    MAX_SEQS,
    RequestError,
    parse_control_request,
    redeliver_request,
    replay_request,
)
from gateway.core.replay_plan import (
    SEQS_PER_REQUEST,
    Planned,
    ReplayPlan,
    answers_of,
    chunked,
    request_ids,
    request_size,
)
from tests.gateway.core.test_replay import record


def test_a_request_for_many_records_survives_the_wire() -> None:
    request = redeliver_request("r-1", [7, 3, 12])
    parsed = parse_control_request(request.to_json())
    assert parsed == request
    assert (parsed.action, parsed.target, parsed.seq, parsed.seqs) == (
        "replay",
        "deliver",
        None,
        (7, 3, 12),
    )
    assert (
        parse_control_request(redeliver_request("r-2", range(1, MAX_SEQS + 1)).to_json()).seqs[-1]
        == MAX_SEQS
    )


def test_each_record_of_a_request_stands_for_the_single_request_of_that_record() -> None:
    one = redeliver_request("r-1", [7, 3]).one(3)
    assert one == replay_request("r-1", 3, "deliver")
    assert json.loads(one.to_json()) == json.loads(replay_request("r-1", 3, "deliver").to_json())


def _body(**members: Any) -> bytes:
    return json.dumps(
        {"request_id": "r", "action": "replay", "target": "deliver", **members}
    ).encode()


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (_body(seqs=list(range(1, MAX_SEQS + 2))), f"1 to {MAX_SEQS}"),
        (_body(seqs=[]), f"1 to {MAX_SEQS}"),
        (_body(seqs="1,2"), f"1 to {MAX_SEQS}"),
        (_body(seqs=[1, 0]), "positive"),
        (_body(seqs=[1, True]), "positive"),
        (_body(seqs=[1, "2"]), "positive"),
        (_body(seqs=[4, 5, 4]), "distinct"),
        (_body(seqs=[1], seq=1), "without seq"),
        (_body(seqs=[1], target="peer"), "target deliver"),
        (_body(seqs=[1], action="release"), "action replay"),
        (b" " * (MAX_REQUEST_BYTES + 1), f"at most {MAX_REQUEST_BYTES} bytes"),
    ],
)
def test_a_request_for_many_records_is_bounded_and_refused_with_a_reason(
    body: bytes, says: str
) -> None:
    with pytest.raises(RequestError) as caught:
        parse_control_request(body)
    assert caught.value.code == MALFORMED
    assert says in caught.value.detail


def _plan(seqs: list[int], target: Any = "deliver") -> ReplayPlan:
    plan = ReplayPlan(target)
    for seq in seqs:
        plan.planned.append(
            Planned(
                record(seq, "envelope.in", "delivered"), replay_request(f"p-{seq}", seq, target)
            )
        )
    return plan


def _ids() -> Any:
    counter = iter(range(10**9))
    return lambda: f"c-{next(counter)}"


@given(
    seqs=st.lists(st.integers(min_value=1, max_value=10**6), unique=True, max_size=60),
    size=st.integers(min_value=2, max_value=25),
)
def test_chunks_name_every_planned_record_once_in_order_and_no_more_than_size(
    seqs: list[int], size: int
) -> None:
    plan = _plan(sorted(seqs))
    chunks = chunked(plan, size, _ids())
    assert [p for c in chunks for p in c.planned] == plan.planned
    assert all(c.request.seqs == tuple(p.record.seq for p in c.planned) for c in chunks)
    assert all(0 < len(c.planned) <= size for c in chunks)
    assert len({c.request.request_id for c in chunks}) == len(chunks)


def test_other_targets_and_single_record_chunks_keep_the_planned_requests() -> None:
    for plan, size in (
        (_plan([1, 2], "peer"), 10),
        (_plan([1, 2], "reprocess"), 10),
        (_plan([1, 2]), 1),
    ):
        chunks = chunked(plan, size, _ids())
        assert [c.request for c in chunks] == [p.request for p in plan.planned]


def test_a_rate_sends_a_tenth_of_a_seconds_records_a_request() -> None:
    assert request_size(None) == SEQS_PER_REQUEST
    assert request_size(50) == 5
    assert request_size(3) == 1
    assert request_size(10**6) == SEQS_PER_REQUEST
    assert SEQS_PER_REQUEST <= MAX_SEQS


def _answer(results: list[dict[str, Any]] | None, status: str = "replayed") -> dict[str, Any]:
    event: dict[str, Any] = {
        "submission_id": None,
        "envelope_id": None,
        "type": None,
        "status": status,
        "reason": None,
        "detail": None,
        "at": "2026-06-01T12:00:00Z",
    }
    if results is not None:
        event["results"] = results
    return event


def _result(seq: int, status: str, **named: Any) -> dict[str, Any]:
    return {
        "seq": seq,
        "status": status,
        "submission_id": named.get("submission_id"),
        "envelope_id": named.get("envelope_id"),
        "type": named.get("type"),
        "reason": named.get("reason"),
        "detail": named.get("detail"),
    }


def test_each_record_reads_its_own_result_as_a_single_answer() -> None:
    [chunk] = chunked(_plan([4, 5, 6]), 10, _ids())
    answer = _answer(
        [
            _result(6, "rejected", reason="replay.unknown_record", detail="no 6"),
            _result(4, "replayed", envelope_id="e-4", type="information.share"),
        ]
    )
    four, five, six = answers_of(chunk, answer)
    assert four == {**_answer(None), "envelope_id": "e-4", "type": "information.share"}
    assert five is None  # missing from the results: unanswered
    assert six == {
        **_answer(None, "rejected"),
        "reason": "replay.unknown_record",
        "detail": "no 6",
    }


def test_a_request_refused_whole_or_unanswered_answers_each_record_so() -> None:
    [chunk] = chunked(_plan([4, 5]), 10, _ids())
    refused = {**_answer(None, "rejected"), "reason": MALFORMED}
    assert answers_of(chunk, refused) == [refused, refused]
    assert answers_of(chunk, None) == [None, None]


def test_request_ids_are_distinct_and_name_their_run() -> None:
    new_id = request_ids("run")
    ids = [new_id() for _ in range(1000)]
    assert len(set(ids)) == 1000
    assert all(i.startswith("run-") for i in ids)
    assert request_ids("other")() != ids[0]
