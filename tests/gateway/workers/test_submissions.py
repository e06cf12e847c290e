"""The outbound worker's pure builders: each decision's archive entry, published effects and
reported events, read without a broker, an archive or a metrics registry."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from gateway import topology
from gateway.core.consent import RouteDecision
from gateway.core.outbound_decision import Accepted, Blocked, Rejected, decide_submission
from gateway.workers.events import ConsentBlocked, Counted, Logged
from gateway.workers.outbound import delivery_of
from gateway.workers.submissions import Item, entry_for, frames_of, local_effects
from tests.gateway.workers.rigs import cica_rig, submitted
from tests.support.fakes import FakeArchive, FakeChannel, incoming

NOW = datetime.now(UTC)


def item(text: str, message_id: str) -> Item:
    message = incoming(submitted(text, message_id))
    return Item(message, delivery_of(message), f"submission:case-desk:{message_id}")


def accepted(text: str, message_id: str) -> Item:
    one = item(text, message_id)
    _, context = cica_rig(FakeChannel(), FakeArchive(), None)
    one.decision = decide_submission(one.delivery, context(NOW))
    assert isinstance(one.decision, Accepted)
    return one


def blocked() -> Item:
    one = accepted("Blocked.", "m-b")
    assert isinstance(one.decision, Accepted)
    route = RouteDecision(
        allowed=False,
        reason="consent.missing",
        missing=(("UNOCT", "env-1"), ("UNOCT", "env-2"), ("CTED", "env-3")),
        matched=(),
        providers=frozenset({"CICA", "UNOCT", "CTED"}),
        detail="UNOCT and CTED have not consented",
    )
    one.decision = Blocked(one.decision.submission, route)
    return one


def test_an_accepted_submission_is_archived_as_sent_and_answered_sent() -> None:
    one = accepted("Sent.", "m-1")
    assert isinstance(one.decision, Accepted)
    env = one.decision.envelope

    entry = entry_for(one, "CICA", NOW)
    assert (entry.kind, entry.outcome, entry.envelope_id) == ("envelope.out", "sent", env["id"])
    assert json.loads(entry.payload) == env
    assert entry.dedup_key == "submission:case-desk:m-1"

    effects = local_effects([one], NOW)
    [status] = effects.outgoing
    assert json.loads(status.body)["status"] == "sent"
    assert effects.events[0] == Counted("outbound", env["type"], "SCO-RATS", "forwarded")
    assert isinstance(effects.events[1], Logged)
    assert effects.events[1].event == "outbound.decided"
    assert effects.events[1].fields["decision"] == "accepted"


def test_a_blocked_submission_goes_to_quarantine_counting_each_missing_provider_once() -> None:
    one = blocked()

    assert entry_for(one, "CICA", NOW).outcome == "quarantined"
    effects = local_effects([one], NOW)
    copy, status = effects.outgoing
    assert copy.exchange == topology.QUARANTINE
    assert copy.headers["x-gw-system"] == "case-desk"
    assert json.loads(status.body)["status"] == "blocked"
    assert effects.events[:3] == [
        ConsentBlocked("CTED", "SCO-RATS"),
        ConsentBlocked("UNOCT", "SCO-RATS"),
        Counted("outbound", "information.share", "SCO-RATS", "quarantined", "consent.missing"),
    ]


def test_a_rejected_submission_goes_to_gw_rejected_with_its_reason() -> None:
    one = item("Refused.", "m-r")
    one.decision = Rejected("schema.invalid", "body.text is missing", type="information.share")

    entry = entry_for(one, "CICA", NOW)
    assert (entry.outcome, entry.reason, entry.type) == (
        "rejected",
        "schema.invalid",
        "information.share",
    )
    effects = local_effects([one], NOW)
    copy, status = effects.outgoing
    assert copy.exchange == topology.REJECTED
    assert copy.headers[topology.REASON_HEADER] == "schema.invalid"
    assert json.loads(status.body)["reason"] == "schema.invalid"
    assert effects.events[0] == Counted(
        "outbound", "information.share", "none", "rejected", "schema.invalid"
    )


def test_a_duplicate_is_archived_and_answered_duplicate() -> None:
    one = item("Again.", "m-d")

    entry = entry_for(one, "CICA", NOW)
    assert (entry.kind, entry.outcome) == ("submission", "duplicate")
    effects = local_effects([one], NOW)
    [status] = effects.outgoing
    assert json.loads(status.body)["status"] == "duplicate"
    assert effects.events[0] == Counted("outbound", "unknown", "none", "duplicate")


def test_frames_group_new_envelopes_and_allowed_resends_by_recipient() -> None:
    first, second = accepted("One.", "m-1"), accepted("Two.", "m-2")
    again = item("Again.", "m-3")
    assert isinstance(first.decision, Accepted)
    again.resend = first.decision.envelope
    refused = item("No.", "m-4")
    refused.decision = Rejected("schema.invalid", "no")

    frames = frames_of([first, second, again, refused])
    assert list(frames) == ["SCO-RATS"]
    assert [env["originator"]["submission_id"] for env in frames["SCO-RATS"]] == [
        "m-1",
        "m-2",
        "m-1",
    ]
