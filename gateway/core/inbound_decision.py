"""Inbound decisions: whether one envelope from a counterparty is accepted, as a pure function.

The signature is verified first, over the raw JSON, before the schema or anything else looks at
the content: nothing unverified is parsed into models, logged in detail or delivered.

An envelope that verifies with one of this Party's own keys is refused as ``signature.own_key``:
only our gateway signs with them, so it is one of our envelopes reflected back (or a keyring that
pins our own key), never a counterparty's message. It is not ``signature.party_mismatch``:
originator and key owner agree, and the operator needs to tell the two problems apart.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from contracts import ContractError, Envelope, parse_envelope
from contracts.registry import spec_for
from gateway.core.freshness import FreshnessError, check_fresh
from gateway.core.keys import Keyring
from gateway.core.signing import SignatureError, verify_envelope
from gateway.core.state import PartyState


@dataclass(frozen=True)
class Refused:
    reason: str
    detail: str


@dataclass(frozen=True)
class Verified:
    envelope: Envelope
    raw: Mapping[str, Any]
    key_id: str


InboundDecision = Verified | Refused


@dataclass(frozen=True)
class InboundContext:
    party: str
    keyring: Keyring
    state: PartyState
    now: datetime
    max_age: timedelta
    max_skew: timedelta


def decide_envelope(raw: Mapping[str, Any], ctx: InboundContext) -> InboundDecision:
    try:
        key = verify_envelope(raw, ctx.keyring, ctx.now)
    except SignatureError as exc:
        return Refused(exc.code, exc.detail)
    if key.party == ctx.party:
        return Refused(
            "signature.own_key",
            f"key {key.key_id} is {ctx.party}'s own; no counterparty signs with it",
        )
    try:
        envelope = parse_envelope(raw)
    except ContractError as exc:
        return Refused(exc.code, exc.message)
    if envelope.recipient != ctx.party:
        return Refused(
            "route.wrong_recipient", f"envelope is for {envelope.recipient}, not {ctx.party}"
        )
    try:
        check_fresh(envelope.created_at, ctx.now, ctx.max_age, ctx.max_skew)
    except FreshnessError as exc:
        return Refused(exc.code, str(exc))
    return Verified(envelope, raw, key.key_id)


def check_officer(envelope: Envelope, ctx: InboundContext) -> Refused | None:
    """The sender's officer must be on the sender's roster as this gateway knows it.

    Separate from ``decide_envelope`` because it depends on the roster, which earlier envelopes
    of the same frame may change (an assignment followed by the officer's first message).
    """
    provider = envelope.originator.party
    officer = envelope.originator.officer
    if spec_for(envelope.type, envelope.version).needs_officer and (
        officer is None or not ctx.state.roster.is_accredited(provider, officer, ctx.now)
    ):
        return Refused(
            "roster.officer_not_accredited",
            f"officer {officer} is not on {provider}'s liaison roster as known to {ctx.party}",
        )
    return None
