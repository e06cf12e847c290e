"""The one builder of a request that forwards nothing: its record and its answer."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from gateway.archive.records import Entry, Record
from gateway.core.control_requests import ControlRequest, replay_request
from gateway.workers.refusals import Ending, Named, ended, refused
from tests.support.fakes import FakeArchive

NOW = datetime.now(UTC)


def held_record() -> Record:
    entry = Entry(
        kind="submission",
        outcome="held",
        occurred_at=NOW,
        payload=b"{}",
        message_id="m-1",
        type="information.share",
        recipient="SCO-RATS",
    )
    return FakeArchive().add([entry])[0].record


def test_a_refused_request_names_the_record_it_was_about() -> None:
    record = held_record()
    outcome = refused(
        replay_request("r-1", record.seq, "peer"), b"{}", record, "replay.x", "no", NOW, user="gw"
    )

    [entry] = outcome.entries
    assert (entry.kind, entry.outcome, entry.refers_to, entry.system) == (
        "replay",
        "rejected",
        record.seq,
        "gw",
    )
    assert (entry.type, entry.reason, entry.detail) == ("information.share", "replay.x", "no")
    [event] = outcome.effects
    answer = json.loads(event.body)
    assert event.correlation_id == "r-1"
    assert (answer["status"], answer["submission_id"], answer["type"]) == (
        "rejected",
        "m-1",
        "information.share",
    )
    assert outcome.result == "rejected"
    assert outcome.send is None


def test_a_refused_request_about_no_record_names_nothing() -> None:
    outcome = refused(
        replay_request("r-2", 9, "peer"), b"{}", None, "replay.x", "no", NOW, user="gw"
    )

    answer = json.loads(outcome.effects[0].body)
    assert (answer["submission_id"], answer["envelope_id"], answer["type"]) == (None, None, None)


def test_an_ending_that_leaves_the_submission_held_does_not_name_it() -> None:
    record = held_record()
    request = ControlRequest("r-3", "review_release", seq=record.seq, officer="lo-0002")
    ending = Ending("quarantined", "blocked", "consent.missing", "not released, still held")

    still_held = ended(request, b"{}", record, ending, NOW, user="gw")
    over = ended(request, b"{}", record, ending, NOW, user="gw", named=Named(record.message_id))

    assert json.loads(still_held.effects[0].body)["submission_id"] is None
    assert json.loads(over.effects[0].body)["submission_id"] == "m-1"
    assert still_held.entries[0].kind == "review"
    assert (still_held.entries[0].outcome, still_held.result) == ("quarantined", "quarantined")


def test_the_type_and_the_logged_result_can_be_given() -> None:
    record = held_record()
    ending = Ending("rejected", "rejected", "schema.invalid", "no")
    request = replay_request("r-4", record.seq, "reprocess")

    outcome = ended(request, b"{}", record, ending, NOW, user="gw", type_="other.type", result="x")

    assert outcome.entries[0].type == "other.type"
    assert json.loads(outcome.effects[0].body)["type"] == "other.type"
    assert outcome.result == "x"
