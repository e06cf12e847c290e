"""decide_submission: every reason a submission is refused, and the envelope it becomes."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from gateway.core.keys import Keyring
from gateway.core.outbound_decision import (
    Accepted,
    Blocked,
    Delivery,
    OutboundContext,
    OutboundDecision,
    Rejected,
    decide_submission,
)
from gateway.core.signing import verify_envelope
from gateway.core.state import PartyState
from tests.gateway.trust_helpers import (
    NOW,
    assignment_envelope,
    new_key,
    next_id,
    signed,
    withdrawal_envelope,
)
from tests.support.parties import assignment, share, submission

CICA_KEY = new_key("CICA", "CICA-2026-1")
RATS_KEY = new_key("SCO-RATS", "SCO-RATS-2026-1")
LIMIT = 64 * 1024


def accredited_state(*recipients: str, officer: str = "lo-0001") -> PartyState:
    """CICA's state after it sent an assignment of ``officer`` to each of ``recipients``."""
    state = PartyState("CICA")
    for recipient in recipients:
        sent = assignment_envelope(CICA_KEY, officer, recipient=recipient)
        state.sent(sent, "assign-" + recipient, NOW - timedelta(minutes=5))
    return state


def context(state: PartyState | None = None) -> OutboundContext:
    return OutboundContext(
        party="CICA",
        counterparties=frozenset({"SCO-RATS", "UNOCT"}),
        max_message_bytes=LIMIT,
        signing_key=CICA_KEY,
        state=state if state is not None else accredited_state("SCO-RATS", "UNOCT"),
        now=NOW,
        new_id=lambda: "01960f7e-aaaa-7bbb-8ccc-000000000001",
        roster_admins=frozenset({"case-desk"}),
        third_parties=frozenset({"UNOCT"}),
    )


def delivery(doc: dict[str, Any] | bytes, **properties: Any) -> Delivery:
    body = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    facts: dict[str, Any] = {
        "message_id": "m-1",
        "user_id": "case-desk",
        "content_type": "application/json",
        "headers": {},
        "redelivered": False,
    }
    facts.update(properties)
    return Delivery(body=body, **facts)


def decide(doc: dict[str, Any] | bytes, ctx: OutboundContext | None = None, **props: Any) -> Any:
    return decide_submission(delivery(doc, **props), ctx or context())


def reason(decision: OutboundDecision) -> str:
    assert isinstance(decision, Rejected), decision
    assert decision.detail
    return decision.reason


GOOD = share("SCO-RATS", "Travel patterns of a listed group.")


# --- the AMQP properties and the size ---------------------------------------------------------


def test_too_large_is_refused_before_anything_else() -> None:
    huge = b"{" + b" " * LIMIT + b"}"
    assert reason(decide(huge, message_id=None, user_id=None)) == "schema.too_large"


def test_a_body_at_the_limit_is_not_too_large() -> None:
    doc = json.dumps(GOOD).encode()
    padded = doc[:-1] + b" " * (LIMIT - len(doc)) + b"}"
    assert len(padded) == LIMIT
    assert isinstance(decide(padded), Accepted)


@pytest.mark.parametrize("message_id", [None, ""])
def test_missing_message_id(message_id: str | None) -> None:
    assert reason(decide(GOOD, message_id=message_id)) == "submission.missing_message_id"


@pytest.mark.parametrize("user_id", [None, ""])
def test_missing_user_id(user_id: str | None) -> None:
    assert reason(decide(GOOD, user_id=user_id)) == "submission.missing_user_id"


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/xml", "json"])
def test_wrong_content_type(content_type: str | None) -> None:
    assert reason(decide(GOOD, content_type=content_type)) == "submission.wrong_content_type"


def test_content_type_parameters_and_case_are_accepted() -> None:
    assert isinstance(decide(GOOD, content_type="Application/JSON; charset=utf-8"), Accepted)


# --- the contract and the route -----------------------------------------------------------------


def test_invalid_json_and_schema_errors_carry_the_contract_code() -> None:
    assert reason(decide(b"\x00\xff not json")) == "schema.invalid_json"
    assert reason(decide({"type": "information.share"})) == "schema.missing_field"
    assert reason(decide({**GOOD, "type": "no.such.type"})) == "schema.unknown_type"


def test_the_originator_cannot_come_from_the_body() -> None:
    forged = {**GOOD, "originator": {"party": "SCO-RATS", "system": "someone-else"}}
    assert reason(decide(forged)) == "schema.extra_field"


def test_unknown_recipient() -> None:
    assert reason(decide({**GOOD, "recipient": "INTERPOL"})) == "route.unknown_recipient"


def test_a_back_office_cannot_submit_a_receipt() -> None:
    body = {
        "envelope_id": next_id(),
        "envelope_sha256": "ab" * 32,
        "status": "delivered",
        "received_at": "2026-06-01T11:59:00Z",
    }
    assert reason(decide(submission("receipt", "SCO-RATS", body))) == "submission.reserved_type"


def test_a_routing_key_that_is_not_the_body_type_is_refused() -> None:
    decision = decide(GOOD, routing_key="information.request")
    assert isinstance(decision, Rejected)
    assert decision.reason == "submission.routing_key_mismatch"
    assert "information.request" in decision.detail
    assert isinstance(decide(GOOD, routing_key="information.share"), Accepted)


@pytest.mark.parametrize(
    ("doc", "properties", "expected_type"),
    [
        ({**GOOD, "body": {**GOOD["body"], "text": {"en": " "}}}, {}, "information.share"),
        ({**GOOD, "recipient": "INTERPOL"}, {}, "information.share"),
        (GOOD, {"content_type": "text/plain"}, "information.share"),
        ({**GOOD, "type": "no.such.type"}, {}, None),
        (b"\x00 not json", {}, None),
        ([GOOD], {}, None),
    ],
)
def test_a_rejection_keeps_the_type_when_it_could_be_read(
    doc: Any, properties: dict[str, Any], expected_type: str | None
) -> None:
    body = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    decision = decide(body, **properties)
    assert isinstance(decision, Rejected)
    assert decision.type == expected_type


# --- the liaison officer ------------------------------------------------------------------------


def test_officer_required_by_the_type() -> None:
    decision = decide({**GOOD, "officer": None})
    assert reason(decision) == "schema.missing_field"
    assert isinstance(decision, Rejected)
    assert "officer" in decision.detail


def test_officer_not_accredited() -> None:
    decision = decide(share("SCO-RATS", "Unknown officer.", officer="lo-9999"))
    assert reason(decision) == "roster.officer_not_accredited"
    assert isinstance(decision, Rejected)
    assert "lo-9999" in decision.detail


def test_officer_accredited_after_an_assignment_and_refused_after_a_withdrawal() -> None:
    state = PartyState("CICA")
    doc = share("SCO-RATS", "By lo-0042.", officer="lo-0042")
    assert reason(decide(doc, context(state))) == "roster.officer_not_accredited"
    state.sent(assignment_envelope(CICA_KEY, "lo-0042"), "a", NOW - timedelta(minutes=2))
    assert isinstance(decide(doc, context(state)), Accepted)
    state.sent(withdrawal_envelope(CICA_KEY, "lo-0042"), "w", NOW - timedelta(minutes=1))
    assert reason(decide(doc, context(state))) == "roster.officer_not_accredited"


def test_an_officer_on_another_partys_roster_does_not_count() -> None:
    state = PartyState("CICA")
    state.received(assignment_envelope(RATS_KEY, "lo-0001", recipient="CICA"), NOW)
    assert reason(decide(GOOD, context(state))) == "roster.officer_not_accredited"


def test_an_officer_never_announced_to_the_recipient_is_refused() -> None:
    # On CICA's roster, but only UNOCT was told: SCO-RATS's gateway would refuse the envelope.
    decision = decide(GOOD, context(accredited_state("UNOCT")))
    assert reason(decision) == "roster.officer_not_accredited"
    assert isinstance(decision, Rejected)
    assert "SCO-RATS" in decision.detail
    assert isinstance(decide(GOOD, context(accredited_state("UNOCT", "SCO-RATS"))), Accepted)


def test_types_without_an_officer_need_no_roster() -> None:
    doc = submission("liaison.assignment", "SCO-RATS", assignment("lo-0042"))
    assert isinstance(decide(doc, context(PartyState("CICA"))), Accepted)


def test_only_a_roster_administrator_may_submit_an_assignment() -> None:
    doc = submission("liaison.assignment", "SCO-RATS", assignment("lo-0042"))
    decision = decide(doc, context(PartyState("CICA")), user_id="analysis-tool")
    assert reason(decision) == "roster.not_an_administrator"
    assert isinstance(decision, Rejected)
    assert "analysis-tool" in decision.detail


def test_a_third_party_gets_the_gateways_submission_id_not_the_back_offices() -> None:
    # A message_id chosen by a back-office system is a field no detector compares.
    to_third = decide({**GOOD, "recipient": "UNOCT"}, message_id="the couriers' names")
    to_partner = decide(GOOD, message_id="sub-42")
    assert isinstance(to_third, Accepted)
    assert isinstance(to_partner, Accepted)
    originator = to_third.envelope["originator"]
    assert originator["submission_id"] == to_third.envelope["id"]
    assert "couriers" not in json.dumps(to_third.envelope)
    assert to_partner.envelope["originator"]["submission_id"] == "sub-42"


# --- accepted: the envelope ---------------------------------------------------------------------


def test_accepted_envelope_shape_and_signature() -> None:
    doc = {**GOOD, "correlation_id": "case-7", "handling": {"pre_approved": ["UNOCT"]}}
    decision = decide(doc, message_id="sub-42", user_id="case-desk")
    assert isinstance(decision, Accepted)
    envelope = decision.envelope
    assert envelope == {
        "id": "01960f7e-aaaa-7bbb-8ccc-000000000001",
        "type": "information.share",
        "version": 1,
        "originator": {
            "party": "CICA",
            "system": "case-desk",
            "officer": "lo-0001",
            "submission_id": "sub-42",
        },
        "recipient": "SCO-RATS",
        "created_at": "2026-06-01T12:00:00.000000Z",
        "correlation_id": "case-7",
        "in_reply_to": None,
        "derived_from": [],
        "handling": {"onward": "consent-required", "pre_approved": ["UNOCT"]},
        "body": GOOD["body"],
        "signature": envelope["signature"],
    }
    assert envelope["signature"]["alg"] == "ed25519"
    assert envelope["signature"]["key_id"] == "CICA-2026-1"
    key = verify_envelope(envelope, Keyring([CICA_KEY.public()]), NOW)
    assert key.key_id == "CICA-2026-1"


def test_the_system_is_the_validated_amqp_user() -> None:
    decision = decide(GOOD, user_id="analysis-desk")
    assert isinstance(decision, Accepted)
    assert decision.envelope["originator"]["system"] == "analysis-desk"


# --- the third-party rule -----------------------------------------------------------------------


def test_blocked_by_the_third_party_rule() -> None:
    state = accredited_state("SCO-RATS", "UNOCT")
    received = signed(RATS_KEY, recipient="CICA", officer="lo-0117")
    state.received(received, NOW - timedelta(minutes=1))
    onward = share("UNOCT", "Passing it on.", derived_from=[received["id"]])
    decision = decide(onward, context(state))
    assert isinstance(decision, Blocked)
    assert not decision.route.allowed
    assert decision.route.reason == "consent.missing"
    assert "SCO-RATS" in decision.route.providers
    # Back to the provider itself needs no consent.
    back = share("SCO-RATS", "Answering you.", derived_from=[received["id"]])
    assert isinstance(decide(back, context(state)), Accepted)


def test_the_third_party_rule_comes_before_the_recipients_roster_copy() -> None:
    # A blocked route is quarantined (consent can release it), not refused for the roster.
    state = accredited_state("SCO-RATS")
    received = signed(RATS_KEY, recipient="CICA", officer="lo-0117")
    state.received(received, NOW - timedelta(minutes=1))
    onward = share("UNOCT", "Passing it on.", derived_from=[received["id"]])
    assert isinstance(decide(onward, context(state)), Blocked)
