"""decide_envelope and check_officer: every reason an envelope from a counterparty is refused."""

from __future__ import annotations

import base64
from datetime import timedelta
from typing import Any

import pytest

from contracts import Envelope
from gateway.core.inbound_decision import (
    InboundContext,
    InboundDecision,
    Refused,
    Verified,
    check_officer,
    decide_envelope,
)
from gateway.core.keys import Keyring
from gateway.core.signing import sign_envelope
from gateway.core.state import PartyState
from tests.gateway.trust_helpers import (
    NOW,
    assignment_envelope,
    envelope,
    new_key,
    signed,
    withdrawal_envelope,
)

CICA_KEY = new_key("CICA", "CICA-2026-1")
CICA_NEXT = new_key("CICA", "CICA-2026-2", start=NOW - timedelta(days=1))
CICA_EXPIRED = new_key("CICA", "CICA-2025-1", start=NOW - timedelta(days=400), days=365)
UNOCT_KEY = new_key("UNOCT", "UNOCT-2026-1")
RATS_KEY = new_key("SCO-RATS", "SCO-RATS-2026-1")
ROGUE = new_key("CICA", "CICA-2026-1")
STRANGER = new_key("CICA", "CICA-9999-1")
KEYRING = Keyring(k.public() for k in (CICA_KEY, CICA_NEXT, CICA_EXPIRED, UNOCT_KEY))
MAX_AGE = timedelta(hours=1)
MAX_SKEW = timedelta(minutes=2)


def context(
    state: PartyState | None = None, keyring: Keyring = KEYRING, party: str = "SCO-RATS"
) -> InboundContext:
    return InboundContext(
        party=party,
        keyring=keyring,
        state=state if state is not None else PartyState(party),
        now=NOW,
        max_age=MAX_AGE,
        max_skew=MAX_SKEW,
    )


def reason(decision: InboundDecision) -> str:
    assert isinstance(decision, Refused), decision
    assert decision.detail
    return decision.reason


def decide(raw: dict[str, Any], ctx: InboundContext | None = None) -> InboundDecision:
    return decide_envelope(raw, ctx or context())


# --- accepted -----------------------------------------------------------------------------------


def test_a_good_envelope_is_verified_and_parsed() -> None:
    raw = signed(CICA_KEY)
    decision = decide(raw)
    assert isinstance(decision, Verified)
    assert decision.key_id == "CICA-2026-1"
    assert decision.raw is raw
    assert isinstance(decision.envelope, Envelope)
    assert decision.envelope.id == raw["id"]
    assert decision.envelope.originator.party == "CICA"


def test_both_keys_of_a_rotation_verify() -> None:
    for key in (CICA_KEY, CICA_NEXT):
        decision = decide(signed(key))
        assert isinstance(decision, Verified)
        assert decision.key_id == key.key_id


# --- signature codes ----------------------------------------------------------------------------


def test_missing_signature() -> None:
    assert reason(decide(envelope())) == "signature.missing"


def test_malformed_signature() -> None:
    raw = signed(CICA_KEY)
    raw["signature"]["value"] = "not base64!"
    assert reason(decide(raw)) == "signature.malformed"


def test_forged_signature() -> None:
    raw = signed(CICA_KEY)
    raw["signature"]["value"] = base64.b64encode(bytes(64)).decode()
    assert reason(decide(raw)) == "signature.bad"


def test_tampered_body() -> None:
    raw = signed(CICA_KEY)
    raw["body"]["text"] = {"en": "Words CICA never signed."}
    assert reason(decide(raw)) == "signature.bad"


def test_tampered_originator() -> None:
    raw = signed(CICA_KEY)
    raw["originator"]["officer"] = "lo-0002"
    assert reason(decide(raw)) == "signature.bad"


def test_swapped_key_id() -> None:
    raw = signed(CICA_KEY)
    raw["signature"]["key_id"] = "CICA-2026-2"
    assert reason(decide(raw)) == "signature.bad"


def test_a_rogue_key_under_a_pinned_key_id() -> None:
    assert reason(decide(signed(ROGUE))) == "signature.bad"


def test_unknown_key() -> None:
    assert reason(decide(signed(STRANGER))) == "signature.unknown_key"


def test_expired_key() -> None:
    assert reason(decide(signed(CICA_EXPIRED))) == "signature.key_not_valid"


def test_originator_party_is_not_the_keys_owner() -> None:
    assert reason(decide(signed(UNOCT_KEY, party="CICA"))) == "signature.party_mismatch"


def test_an_envelope_signed_with_our_own_key_is_refused() -> None:
    # Pinned by mistake, our own key would make a reflected envelope of ours look genuine.
    keyring = Keyring(k.public() for k in (CICA_KEY, RATS_KEY))
    reflected = signed(RATS_KEY, recipient="SCO-RATS")
    assert reason(decide(reflected, context(keyring=keyring))) == "signature.own_key"
    assert isinstance(decide(signed(CICA_KEY), context(keyring=keyring)), Verified)


def test_the_signature_is_checked_before_the_schema() -> None:
    unsigned = envelope(body={"nonsense": True})
    assert reason(decide(unsigned)) == "signature.missing"
    forged = {**signed(CICA_KEY), "body": {"nonsense": True}}
    assert reason(decide(forged)) == "signature.bad"


# --- schema, recipient, freshness ---------------------------------------------------------------


def test_schema_error_of_a_signed_envelope() -> None:
    assert reason(decide(signed(CICA_KEY, body={"topics": []}))) == "schema.missing_field"
    assert reason(decide(signed(CICA_KEY, "no.such.type", body={}))) == "schema.unknown_type"


def test_a_signed_envelope_without_its_officer_is_a_schema_error() -> None:
    assert reason(decide(signed(CICA_KEY, officer=None))) == "schema.missing_field"


def test_wrong_recipient() -> None:
    assert reason(decide(signed(CICA_KEY, recipient="UNOCT"))) == "route.wrong_recipient"


def test_too_old() -> None:
    raw = signed(CICA_KEY, created_at=NOW - MAX_AGE - timedelta(seconds=1))
    assert reason(decide(raw)) == "replay.too_old"
    assert isinstance(decide(signed(CICA_KEY, created_at=NOW - MAX_AGE)), Verified)


def test_future_dated() -> None:
    raw = signed(CICA_KEY, created_at=NOW + MAX_SKEW + timedelta(seconds=1))
    assert reason(decide(raw)) == "replay.future"
    assert isinstance(decide(signed(CICA_KEY, created_at=NOW + MAX_SKEW)), Verified)


def test_re_signing_a_back_dated_copy_needs_the_key() -> None:
    # Changing created_at breaks the signature: the replay window cannot be dodged.
    raw = signed(CICA_KEY, created_at=NOW - timedelta(hours=5))
    raw["created_at"] = signed(CICA_KEY)["created_at"]
    assert reason(decide(raw)) == "signature.bad"


# --- the officer against the receiver's copy of the sender's roster -----------------------------


def verified(raw: dict[str, Any], ctx: InboundContext) -> Envelope:
    decision = decide(raw, ctx)
    assert isinstance(decision, Verified)
    return decision.envelope


def test_officer_not_on_the_senders_roster_is_refused() -> None:
    ctx = context()
    refused = check_officer(verified(signed(CICA_KEY, officer="lo-0042"), ctx), ctx)
    assert refused is not None
    assert refused.reason == "roster.officer_not_accredited"
    assert "lo-0042" in refused.detail


def test_officer_accepted_after_the_assignment_arrived() -> None:
    state = PartyState("SCO-RATS")
    ctx = context(state)
    state.received(assignment_envelope(CICA_KEY, "lo-0042"), NOW - timedelta(minutes=1))
    assert check_officer(verified(signed(CICA_KEY, officer="lo-0042"), ctx), ctx) is None


def test_officer_refused_after_a_withdrawal() -> None:
    state = PartyState("SCO-RATS")
    ctx = context(state)
    state.received(assignment_envelope(CICA_KEY, "lo-0042"), NOW - timedelta(minutes=2))
    state.received(withdrawal_envelope(CICA_KEY, "lo-0042"), NOW - timedelta(minutes=1))
    refused = check_officer(verified(signed(CICA_KEY, officer="lo-0042"), ctx), ctx)
    assert refused is not None
    assert refused.reason == "roster.officer_not_accredited"


def test_an_officer_on_another_partys_roster_does_not_count() -> None:
    state = PartyState("SCO-RATS")
    ctx = context(state)
    state.received(assignment_envelope(UNOCT_KEY, "lo-0042"), NOW - timedelta(minutes=1))
    refused = check_officer(verified(signed(CICA_KEY, officer="lo-0042"), ctx), ctx)
    assert refused is not None


@pytest.mark.parametrize("officer", ["lo-0042", None])
def test_types_without_an_officer_pass(officer: str | None) -> None:
    ctx = context()
    assignment = assignment_envelope(CICA_KEY, "lo-0042")
    assignment["originator"]["officer"] = officer
    raw = sign_envelope(assignment, CICA_KEY)
    assert check_officer(verified(raw, ctx), ctx) is None
