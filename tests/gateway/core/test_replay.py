"""The pure part of replay and release: requests, per-record decisions, planning, text."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from itertools import count
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from contracts.amqp import OPERATOR_SYSTEM
from gateway import topology
from gateway.archive import Record
from gateway.core.control_requests import (
    MALFORMED,
    ControlRequest,
    RequestError,
    parse_control_request,
    release_request,
    replay_request,
    request_id_of,
    submit_request,
)
from gateway.core.inbound_decision import InboundContext
from gateway.core.keys import Keyring, SigningKey
from gateway.core.outbound_decision import OutboundContext
from gateway.core.replay import (
    NOT_REPLAYABLE,
    TOO_OLD,
    UNREADABLE,
    Redeliver,
    Refusal,
    Resend,
    ResendBlocked,
    answer,
    decide_redelivery,
    decide_resend,
    operator_delivery,
    reprocess_delivery,
    reprocess_key,
    request_entry,
)
from gateway.core.replay_plan import (
    Selection,
    pause_before,
    plan_lines,
    plan_replay,
    released_records,
    result_of,
    summary,
)
from gateway.core.signing import sign_envelope
from gateway.core.stamping import new_envelope_id, rfc3339
from gateway.core.state import PartyState

NOW = datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC)
MAX_AGE = timedelta(days=1)


def _key(party: str) -> SigningKey:
    return SigningKey(
        party,
        f"{party}-test-1",
        NOW - timedelta(days=30),
        NOW + timedelta(days=700),
        Ed25519PrivateKey.generate(),
    )


CICA, RATS = _key("CICA"), _key("SCO-RATS")


def envelope(
    key: SigningKey,
    recipient: str,
    *,
    created_at: datetime = NOW,
    derived_from: tuple[str, ...] = (),
    text: str = "Movements of a listed group.",
) -> dict[str, Any]:
    unsigned = {
        "id": new_envelope_id(),
        "type": "information.share",
        "version": 1,
        "originator": {
            "party": key.party,
            "system": "desk",
            "officer": "lo-1",
            "submission_id": "sub-1",
        },
        "recipient": recipient,
        "created_at": rfc3339(created_at),
        "correlation_id": None,
        "in_reply_to": None,
        "derived_from": list(derived_from),
        "handling": {"onward": "consent-required", "pre_approved": []},
        "body": {
            "subject": {"en": "Exchange of information"},
            "text": {"en": text},
            "topics": ["counter-terrorism"],
            "attachments": [],
        },
    }
    return sign_envelope(unsigned, key)


def payload(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def record(seq: int, kind: str, outcome: str, body: bytes = b"{}", **fields: Any) -> Record:
    at = fields.pop("recorded_at", NOW)
    return Record(
        seq=seq,
        recorded_at=at,
        prev_hash="0" * 64,
        hash="1" * 64,
        kind=kind,
        outcome=outcome,
        occurred_at=fields.pop("occurred_at", at),
        payload=body,
        **fields,
    )


def envelope_record(
    seq: int, kind: str, outcome: str, env: dict[str, Any], **fields: Any
) -> Record:
    return record(
        seq,
        kind,
        outcome,
        payload(env),
        envelope_id=env["id"],
        type=env["type"],
        provider=env["originator"]["party"],
        recipient=env["recipient"],
        **fields,
    )


def inbound_context(now: datetime) -> InboundContext:
    return InboundContext(
        party="SCO-RATS",
        keyring=Keyring([CICA.public()]),
        state=PartyState("SCO-RATS"),
        now=now,
        max_age=MAX_AGE,
        max_skew=timedelta(minutes=2),
    )


def outbound_context(state: PartyState, now: datetime = NOW) -> OutboundContext:
    return OutboundContext(
        party="SCO-RATS",
        counterparties=frozenset({"CICA", "UNOCT"}),
        max_message_bytes=1 << 20,
        signing_key=RATS,
        state=state,
        now=now,
        new_id=new_envelope_id,
    )


# --- requests --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "request_",
    [
        replay_request("r-1", 7, "deliver"),
        replay_request("r-2", 8, "peer"),
        release_request("r-3", 9),
        submit_request("r-4", {"type": "consent.request", "recipient": "CICA"}),
    ],
)
def test_requests_survive_the_wire(request_: ControlRequest) -> None:
    assert parse_control_request(request_.to_json()) == request_


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[1, 2]",
        b'{"action": "replay", "seq": 1, "target": "deliver"}',
        b'{"request_id": "", "action": "replay", "seq": 1, "target": "deliver"}',
        b'{"request_id": "r", "action": "delete", "seq": 1}',
        b'{"request_id": "r", "action": "replay", "seq": 1}',
        b'{"request_id": "r", "action": "replay", "seq": 1, "target": "elsewhere"}',
        b'{"request_id": "r", "action": "release", "seq": 1, "target": "peer"}',
        b'{"request_id": "r", "action": "release", "seq": 0}',
        b'{"request_id": "r", "action": "release", "seq": true}',
        b'{"request_id": "r", "action": "release", "seq": "3"}',
        b'{"request_id": "r", "action": "submit", "submission": "text"}',
    ],
)
def test_malformed_requests_are_refused_with_a_reason(body: bytes) -> None:
    with pytest.raises(RequestError) as caught:
        parse_control_request(body)
    assert caught.value.code == MALFORMED
    assert caught.value.detail


def test_the_request_id_of_a_broken_request_is_read_when_possible() -> None:
    assert request_id_of(b'{"request_id": "r-9", "action": "nonsense"}') == "r-9"
    assert request_id_of(b'{"request_id": 5}') is None
    assert request_id_of(b"[]") is None
    assert request_id_of(b"\xff") is None


def test_a_release_is_archived_as_a_release_and_refers_to_its_record() -> None:
    request = release_request("r-1", 12)
    quarantined = record(12, "submission", "quarantined", type="information.share")
    entry = request_entry(
        request, "released", at=NOW, body=request.to_json(), system="gw", record=quarantined
    )
    assert (entry.kind, entry.outcome, entry.refers_to) == ("release", "released", 12)
    assert (entry.message_id, entry.system, entry.type) == ("r-1", "gw", "information.share")
    assert entry.headers == (("x-gw-target", "reprocess"),)
    assert replay_request("r-2", 3, "peer").record_kind == "replay"


def test_an_answer_is_a_status_event_correlated_to_the_request() -> None:
    event = answer(
        "replayed", "r-1", at=NOW, submission_id="sub-1", envelope_id="e-1", type="receipt"
    )
    assert event.exchange == topology.STATUS
    assert event.routing_key == "operator.replayed.receipt"
    assert event.correlation_id == "r-1"
    assert json.loads(event.body)["submission_id"] == "sub-1"


# --- deliver ---------------------------------------------------------------------------------


def test_an_accepted_envelope_is_verified_again_and_redelivered_unchanged() -> None:
    env = envelope(CICA, "SCO-RATS")
    archived = envelope_record(4, "envelope.in", "delivered", env)
    result = decide_redelivery(archived, inbound_context(NOW))
    assert result == Redeliver(archived.payload, env["id"], "CICA", "information.share")


def test_an_old_envelope_is_judged_as_of_its_arrival_not_today() -> None:
    received = NOW - timedelta(days=30)
    env = envelope(CICA, "SCO-RATS", created_at=received)
    archived = envelope_record(4, "envelope.in", "delivered", env, occurred_at=received)
    assert isinstance(decide_redelivery(archived, inbound_context(received)), Redeliver)
    refused = decide_redelivery(archived, inbound_context(NOW))
    assert isinstance(refused, Refusal)
    assert refused.reason == "replay.too_old"


def test_an_edited_archived_envelope_is_not_redelivered() -> None:
    env = envelope(CICA, "SCO-RATS")
    env["body"]["text"] = {"en": "Something else."}
    result = decide_redelivery(
        envelope_record(4, "envelope.in", "delivered", env), inbound_context(NOW)
    )
    assert isinstance(result, Refusal)
    assert result.reason == "signature.bad"


@pytest.mark.parametrize(
    ("kind", "outcome", "body", "reason"),
    [
        ("envelope.in", "rejected", b"{}", NOT_REPLAYABLE),
        ("envelope.out", "sent", b"{}", NOT_REPLAYABLE),
        ("receipt.out", "sent", b"{}", NOT_REPLAYABLE),
        ("envelope.in", "delivered", b"[not an object]", UNREADABLE),
    ],
)
def test_only_accepted_inbound_envelopes_are_redelivered(
    kind: str, outcome: str, body: bytes, reason: str
) -> None:
    result = decide_redelivery(record(3, kind, outcome, body), inbound_context(NOW))
    assert isinstance(result, Refusal)
    assert result.reason == reason


# --- peer ------------------------------------------------------------------------------------


def onward_setup() -> tuple[PartyState, dict[str, Any], dict[str, Any], Record]:
    """SCO-RATS received E from CICA, and sent F (derived from E) to UNOCT."""
    state = PartyState("SCO-RATS")
    received = envelope(CICA, "SCO-RATS")
    state.received(received, NOW - timedelta(hours=2))
    sent = envelope(RATS, "UNOCT", derived_from=(received["id"],), created_at=NOW)
    return state, received, sent, envelope_record(9, "envelope.out", "sent", sent)


def grant(state: PartyState, envelope_id: str, at: datetime) -> str:
    decision_id = new_envelope_id()
    body = {
        "decision": "granted",
        "scope": {"envelope_ids": [envelope_id]},
        "recipients": ["UNOCT"],
    }
    state.consent.apply_decision(decision_id, "CICA", body, at)
    return decision_id


def test_a_sent_envelope_goes_again_unchanged_while_consent_is_live() -> None:
    state, received, sent, archived = onward_setup()
    grant(state, received["id"], NOW - timedelta(hours=1))
    result = decide_resend(archived, outbound_context(state), Keyring([RATS.public()]), MAX_AGE)
    assert result == Resend(sent, "UNOCT")


def test_a_revoked_consent_stops_the_resend() -> None:
    state, received, _, archived = onward_setup()
    decision_id = grant(state, received["id"], NOW - timedelta(hours=1))
    state.consent.apply_revocation("CICA", {"decision_id": decision_id}, NOW - timedelta(minutes=5))
    result = decide_resend(archived, outbound_context(state), Keyring([RATS.public()]), MAX_AGE)
    assert isinstance(result, ResendBlocked)
    assert result.route.reason == "consent.missing"
    assert result.route.missing == (("CICA", received["id"]),)
    assert result.recipient == "UNOCT"


def test_going_back_to_the_provider_needs_no_consent() -> None:
    state = PartyState("SCO-RATS")
    received = envelope(CICA, "SCO-RATS")
    state.received(received, NOW)
    reply = envelope(RATS, "CICA", derived_from=(received["id"],))
    archived = envelope_record(3, "envelope.out", "sent", reply)
    result = decide_resend(archived, outbound_context(state), Keyring([RATS.public()]), MAX_AGE)
    assert isinstance(result, Resend)


def test_an_envelope_older_than_the_replay_window_is_not_resent() -> None:
    state = PartyState("SCO-RATS")
    old = envelope(RATS, "CICA", created_at=NOW - timedelta(days=2))
    archived = envelope_record(3, "envelope.out", "sent", old)
    result = decide_resend(archived, outbound_context(state), Keyring([RATS.public()]), MAX_AGE)
    assert isinstance(result, Refusal)
    assert result.reason == TOO_OLD


def test_a_resend_checks_our_signature_and_the_recipient() -> None:
    state = PartyState("SCO-RATS")
    keys = Keyring([RATS.public()])
    edited = envelope(RATS, "CICA")
    edited["recipient"] = "UNOCT"
    result = decide_resend(
        envelope_record(3, "envelope.out", "sent", edited), outbound_context(state), keys, MAX_AGE
    )
    assert isinstance(result, Refusal)
    assert result.reason == "signature.bad"
    elsewhere = envelope(RATS, "EU-CTC")
    result = decide_resend(
        envelope_record(4, "envelope.out", "sent", elsewhere),
        outbound_context(state),
        keys,
        MAX_AGE,
    )
    assert isinstance(result, Refusal)
    assert result.reason == "route.unknown_recipient"
    duplicate = envelope_record(5, "envelope.out", "duplicate", envelope(RATS, "CICA"))
    result = decide_resend(duplicate, outbound_context(state), keys, MAX_AGE)
    assert isinstance(result, Refusal)
    assert result.reason == NOT_REPLAYABLE


# --- reprocess and operator submissions ------------------------------------------------------


def test_an_archived_submission_is_decided_again_from_its_original_bytes() -> None:
    archived = record(
        6, "submission", "quarantined", b'{"type": "x"}', message_id="m-1", system="case-desk"
    )
    delivery = reprocess_delivery(archived)
    assert not isinstance(delivery, Refusal)
    assert (delivery.body, delivery.message_id, delivery.user_id) == (
        b'{"type": "x"}',
        "m-1",
        "case-desk",
    )
    assert delivery.content_type == "application/json"
    refused = reprocess_delivery(record(7, "submission", "duplicate"))
    assert isinstance(refused, Refusal)
    assert refused.reason == NOT_REPLAYABLE
    assert reprocess_key(6) == "reprocess:6"


def test_an_operator_submission_comes_from_system_operator() -> None:
    request = submit_request("r-5", {"type": "consent.request"})
    delivery = operator_delivery(request)
    assert (delivery.user_id, delivery.message_id) == (OPERATOR_SYSTEM, "r-5")
    assert json.loads(delivery.body) == {"type": "consent.request"}


# --- planning --------------------------------------------------------------------------------


def ids() -> Any:
    counter = count(1)
    return lambda: f"req-{next(counter)}"


def test_a_plan_replays_each_envelope_once_and_skips_what_the_target_cannot_take() -> None:
    a, b = envelope(CICA, "SCO-RATS"), envelope(CICA, "SCO-RATS")
    found = [
        envelope_record(5, "envelope.in", "duplicate", a),
        envelope_record(2, "envelope.in", "duplicate", b),
        envelope_record(4, "envelope.in", "delivered", b),
        envelope_record(6, "envelope.in", "rejected", a),
        record(3, "receipt.out", "sent", envelope_id="r-1"),
        envelope_record(2, "envelope.in", "duplicate", b),
    ]
    plan = plan_replay(found, "deliver", released={}, new_id=ids())
    assert [(p.record.seq, p.request) for p in plan.planned] == [
        (4, replay_request("req-1", 4, "deliver")),
        (5, replay_request("req-2", 5, "deliver")),
    ]
    assert sorted(s.record.seq for s in plan.skipped) == [2, 3, 6]
    lines = plan_lines(plan, dry_run=True)
    assert lines[0].startswith("would replay to deliver: seq 4 ")
    assert lines[-1] == "2 to replay to deliver, 3 skipped"


def test_a_plan_skips_submissions_already_released() -> None:
    waiting = record(3, "submission", "quarantined", message_id="m-3")
    released = record(8, "submission", "rejected", message_id="m-8")
    release = record(11, "release", "released", refers_to=8, envelope_id="e-1")
    plan = plan_replay([released, waiting], "reprocess", released={8: release}, new_id=ids())
    assert [p.record.seq for p in plan.planned] == [3]
    [skipped] = plan.skipped
    assert skipped.why == "already released by seq 11 as envelope e-1"


def test_released_records_are_the_requests_that_let_their_record_through() -> None:
    found = released_records(
        [
            record(10, "release", "quarantined", refers_to=3),
            record(11, "release", "released", refers_to=3),
            record(12, "replay", "replayed", refers_to=4),
            record(13, "replay", "rejected", refers_to=5),
            record(14, "submission", "quarantined", refers_to=6),
        ]
    )
    assert {seq: r.seq for seq, r in found.items()} == {3: 11, 4: 12}


def test_a_selection_narrows_the_targets_records() -> None:
    early, late = NOW - timedelta(hours=1), NOW + timedelta(hours=1)
    selection = Selection(since=NOW, until=late, types=("information.share",))
    assert selection.matches(record(1, "envelope.in", "delivered", type="information.share"))
    assert not selection.matches(record(2, "envelope.in", "delivered", recorded_at=early))
    assert not selection.matches(record(3, "envelope.in", "delivered", recorded_at=late))
    assert not selection.matches(record(4, "envelope.in", "delivered", type="receipt"))
    assert Selection().search_kinds_outcomes("deliver") == (
        ["envelope.in"],
        ["delivered", "duplicate"],
    )
    assert Selection(outcomes=("quarantined",)).search_kinds_outcomes("reprocess") == (
        ["submission"],
        ["quarantined"],
    )
    assert Selection(outcomes=("rejected",)).search_kinds_outcomes("deliver")[1] == []
    assert Selection(kinds=("submission",)).search_kinds_outcomes("peer")[0] == []


def test_pacing_spreads_requests_at_the_rate() -> None:
    assert pause_before(5, None, 0.0) == 0.0
    assert pause_before(0, 10.0, 0.0) == 0.0
    assert pause_before(5, 10.0, 0.2) == pytest.approx(0.3)
    assert pause_before(5, 10.0, 0.9) == 0.0


def test_the_summary_counts_results() -> None:
    results = [
        result_of({"status": "replayed"}),
        result_of(None),
        result_of({"status": "replayed"}),
    ]
    assert summary(results, skipped=2) == "summary: replayed 2, unanswered 1, skipped 2"
    assert summary([]) == "summary: nothing to do"
