"""The inbound worker's pure builders: the archive entries, published effects and reported
events of refused frames, refused envelopes and deliveries."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway import topology
from gateway.core.inbound_decision import InboundContext, Refused, Verified, decide_envelope
from gateway.core.keys import Keyring
from gateway.core.state import PartyState
from gateway.workers.arrivals import (
    Arrival,
    FrameError,
    Plan,
    compact,
    entries,
    local_effects,
    receipt_envelope,
    short,
)
from gateway.workers.events import Counted, EndToEnd, Logged
from tests.gateway.trust_helpers import assignment_envelope
from tests.gateway.workers.rigs import CICA_KEY, frame, from_cica
from tests.support.fakes import FakeMessage, incoming

NOW = datetime.now(UTC)


def verified(raw: dict[str, object]) -> Verified:
    """``raw`` verified now, as SCO-RATS's inbound worker would."""
    now = datetime.now(UTC)
    state = PartyState("SCO-RATS")
    state.received(
        assignment_envelope(CICA_KEY, "lo-0001", created_at=now - timedelta(hours=1)), now
    )
    ctx = InboundContext(
        party="SCO-RATS",
        keyring=Keyring([CICA_KEY.public()]),
        state=state,
        now=now,
        max_age=timedelta(hours=1),
        max_skew=timedelta(minutes=2),
    )
    decision = decide_envelope(raw, ctx)
    assert isinstance(decision, Verified)
    return decision


def test_a_frame_refused_whole_is_archived_copied_and_reported() -> None:
    message = incoming(FakeMessage(b"not json", message_id="f-1"))
    plan = Plan(bad_frames=[FrameError(message, "frame.invalid", "not a frame")])

    [entry] = entries(plan, "SCO-RATS", NOW)
    assert (entry.kind, entry.outcome, entry.reason) == ("frame", "rejected", "frame.invalid")
    effects = local_effects(plan, NOW)
    [copy] = effects.outgoing
    assert copy.exchange == topology.REJECTED
    assert copy.headers["x-gw-stage"] == "inbound"
    counted, logged = effects.events
    assert counted == Counted("inbound", "unknown", "none", "rejected", "frame.invalid")
    assert isinstance(logged, Logged)
    assert (logged.level, logged.event, logged.fields["bytes"]) == (
        "warning",
        "inbound.frame_refused",
        8,
    )


def test_a_refused_envelope_keeps_only_short_encodable_fields_of_what_it_claims() -> None:
    raw = {"id": "x" * 200, "type": "information.share", "originator": {"party": "CICA"}}
    message = incoming(FakeMessage(b"{}", message_id="f-2"))
    arrival = Arrival(message, raw, Refused("signature.invalid", "bad signature"))
    plan = Plan(arrivals=[arrival])

    [entry] = entries(plan, "SCO-RATS", NOW)
    assert (entry.outcome, entry.provider, entry.envelope_id) == ("rejected", "CICA", "x" * 200)
    effects = local_effects(plan, NOW)
    [copy] = effects.outgoing
    assert copy.message_id is None  # too long for an AMQP property
    assert json.loads(copy.body) == raw
    [counted, logged] = effects.events
    assert counted == Counted(
        "inbound", "information.share", "none", "rejected", "signature.invalid"
    )
    assert isinstance(logged, Logged)
    assert logged.fields["provider"] == "CICA"
    assert logged.fields["envelope_id"] is None


def test_a_delivered_envelope_is_archived_with_its_receipt_and_delivered() -> None:
    raw = from_cica("Delivered.")
    decision = verified(raw)
    arrival = Arrival(incoming(frame(raw)), raw, decision, key="envelope:CICA:1", deliver=True)
    receipt = receipt_envelope("SCO-RATS", decision.envelope, raw, NOW)
    arrival.receipt = {**receipt, "signature": {"value": "sig"}}

    delivered, receipt_out = entries(Plan(arrivals=[arrival]), "SCO-RATS", NOW)
    assert (delivered.kind, delivered.outcome, delivered.dedup_key) == (
        "envelope.in",
        "delivered",
        "envelope:CICA:1",
    )
    assert (receipt_out.kind, receipt_out.recipient, receipt_out.provider) == (
        "receipt.out",
        "CICA",
        "SCO-RATS",
    )
    assert receipt["in_reply_to"] == raw["id"]
    effects = local_effects(Plan(arrivals=[arrival]), NOW)
    [delivery] = effects.outgoing
    assert delivery.exchange == topology.DELIVER
    assert delivery.body == compact(raw)
    counted, end_to_end, logged = effects.events
    assert counted == Counted("inbound", "information.share", "CICA", "delivered")
    assert isinstance(end_to_end, EndToEnd)
    assert isinstance(logged, Logged)
    assert logged.event == "inbound.delivered"


def test_a_duplicate_is_archived_as_such_and_not_delivered() -> None:
    raw = from_cica("Twice.")
    arrival = Arrival(incoming(frame(raw)), raw, verified(raw), key="envelope:CICA:2")

    [entry] = entries(Plan(arrivals=[arrival]), "SCO-RATS", NOW)
    assert (entry.outcome, entry.dedup_key) == ("duplicate", "envelope:CICA:2")
    effects = local_effects(Plan(arrivals=[arrival]), NOW)
    assert effects.outgoing == []
    assert effects.events == [Counted("inbound", "information.share", "CICA", "duplicate")]


def test_short_drops_long_and_unencodable_values() -> None:
    assert short("ok") == "ok"
    assert short("x" * 101) is None
    assert short("\ud800") is None
    assert short(42) is None
    assert compact({"a": "\ud800"}) == b'{"a":"\\ud800"}'


def reference_compact(obj: dict[str, Any]) -> bytes:
    try:
        return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()
    except UnicodeEncodeError:
        return json.dumps(obj, separators=(",", ":")).encode()


# Whatever a decoded frame can hold: floats, integers of any size, lone surrogates, any keys.
_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
    | st.text(alphabet=st.characters(codec="utf-8"))
    | st.text(alphabet=st.characters(categories=["Cs", "Ll"])),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=300)
@given(st.dictionaries(st.text(), _json, max_size=6))
def test_compact_writes_the_standard_encoders_bytes(obj: dict[str, Any]) -> None:
    assert compact(obj) == reference_compact(obj)
