"""The control worker's pure builders: what a request leads to, without a broker or archive."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from gateway import topology
from gateway.archive.records import Entry, Record
from gateway.core.control_requests import MALFORMED, UNAUTHORIZED, replay_request
from gateway.core.outbound_decision import Rejected
from gateway.workers.control_outcomes import refuse_message, reprocessed
from gateway.workers.outbound import delivery_of
from gateway.workers.submissions import Item
from tests.support.fakes import FakeArchive, FakeMessage, incoming

NOW = datetime.now(UTC)


def test_a_foreign_message_is_copied_to_gw_rejected_and_archived_unanswered() -> None:
    message = incoming(FakeMessage(b'{"request_id": "r-1"}', message_id="x-1", user_id="intruder"))

    outcome = refuse_message(message, NOW, UNAUTHORIZED, "not the gateway's user")

    [copy] = outcome.effects  # no answer: the sender is not the operator
    assert copy.exchange == topology.REJECTED
    assert copy.headers["x-gw-system"] == "intruder"
    [entry] = outcome.entries
    assert (entry.kind, entry.outcome, entry.reason) == ("control", "rejected", UNAUTHORIZED)


def test_a_malformed_request_with_a_readable_id_is_answered() -> None:
    message = incoming(FakeMessage(b'{"request_id": "r-2"}', message_id="x-2", user_id="gw"))

    outcome = refuse_message(message, NOW, MALFORMED, "action is missing")

    copy, answer = outcome.effects
    assert copy.exchange == topology.REJECTED
    assert answer.correlation_id == "r-2"
    assert json.loads(answer.body)["reason"] == MALFORMED


def quarantined_record() -> Record:
    entry = Entry(
        kind="submission",
        outcome="quarantined",
        occurred_at=NOW,
        payload=b'{"type": "information.share"}',
        message_id="m-1",
        system="case-desk",
        type="information.share",
    )
    return FakeArchive().add([entry])[0].record


def test_a_reprocessed_submission_refused_now_moves_to_gw_rejected() -> None:
    record = quarantined_record()
    request = replay_request("r-3", record.seq, "reprocess")
    message = incoming(FakeMessage(record.payload, message_id="r-3", user_id="gw"))
    item = Item(message, delivery_of(message), "reprocess:1")
    decision = Rejected("schema.invalid", "body.text is missing")

    outcome = reprocessed(request, item, record, decision, NOW, party="CICA", user="gw")

    copy, answer = outcome.effects
    assert copy.exchange == topology.REJECTED
    assert copy.headers["x-gw-system"] == "case-desk"
    assert json.loads(answer.body)["submission_id"] == "m-1"
    [entry] = outcome.entries
    assert (entry.outcome, entry.reason, entry.type) == (
        "rejected",
        "schema.invalid",
        "information.share",
    )
    assert outcome.result == "rejected"
    assert outcome.send is None
