"""A request re-delivering many records, proven equal record by record to a request for each
record alone: the same archive records, the same re-deliveries, the same answers."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from contracts import parse_status
from gateway import topology
from gateway.archive import Record
from gateway.core.control_requests import redeliver_request
from gateway.core.publications import Outgoing
from gateway.core.replay import NOT_REPLAYABLE, Redeliver, Refusal, unknown_record
from gateway.core.replay_plan import Chunk, Planned, answers_of
from gateway.workers.control_outcomes import redelivered
from gateway.workers.outcomes import Outcome
from gateway.workers.redeliveries import Decided, redelivered_many
from gateway.workers.refusals import refused
from tests.support.records import delivered_record

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
USER = "gw-sco-rats"


def _record(seq: int) -> Record:
    return delivered_record(seq, NOW)


def _decided(seq: int, fate: str) -> Decided:
    if fate == "unknown":
        return Decided(seq, None, unknown_record(seq))
    record = _record(seq)
    if fate == "refused":
        return Decided(seq, record, Refusal(NOT_REPLAYABLE, f"record {seq} is not replayable"))
    return Decided(seq, record, Redeliver(b'{"id": "e"}', f"e-{seq}", "CICA", "information.share"))


def _alone(request_id: str, item: Decided) -> Outcome:
    """What a request for this record alone leads to (the reference)."""
    one = redeliver_request(request_id, [item.seq]).one(item.seq)
    if isinstance(item.result, Redeliver):
        assert item.record is not None
        return redelivered(one, one.to_json(), item.record, item.result, NOW, USER)
    reason, detail = item.result.reason, item.result.detail
    return refused(one, one.to_json(), item.record, reason, detail, NOW, user=USER)


def _body(event: Outgoing) -> dict[str, Any]:
    return dict(json.loads(event.body))


@given(
    st.lists(
        st.tuples(
            st.integers(min_value=1, max_value=10**6),
            st.sampled_from(["replayed", "refused", "unknown"]),
        ),
        min_size=1,
        max_size=30,
        unique_by=lambda item: item[0],
    )
)
def test_each_record_is_archived_redelivered_and_answered_as_if_requested_alone(
    fates: list[tuple[int, str]],
) -> None:
    decided = [_decided(seq, fate) for seq, fate in fates]
    request = redeliver_request("r-many", [item.seq for item in decided])
    many = redelivered_many(request, decided, NOW, USER)
    alone = [_alone("r-many", item) for item in decided]

    assert many.entries == [entry for outcome in alone for entry in outcome.entries]
    *deliveries, event = many.effects
    assert deliveries == [e for o in alone for e in o.effects if e.exchange == topology.DELIVER]
    assert event.exchange == topology.STATUS
    assert event.correlation_id == "r-many"
    parse_status(event.body)  # the answer is a status event of the contract
    planned = tuple(Planned(item.record or _record(item.seq), request) for item in decided)
    single_answers = [_body(o.effects[-1]) for o in alone]
    assert answers_of(Chunk(request, planned), _body(event)) == single_answers
