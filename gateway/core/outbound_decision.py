"""Outbound decisions: what happens to one submission, as a pure function.

Order matters and is part of the contract: size, AMQP properties, schema, types only the gateway
makes, the routing key, route, roster administrators, liaison officer, the third-party rule, the
recipient's copy of our roster, the release review, and only then stamping and signing. The
first failing check names the reason; nothing that fails a check is signed. The recipient's copy
comes after the third-party rule so that a route the rule stops is quarantined (and can be
released by consent) rather than refused.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from contracts import ContractError, Submission, parse_submission
from contracts.amqp import CONTENT_TYPE
from contracts.parsing import readable_type
from contracts.registry import GATEWAY_ONLY_TYPES, spec_for
from gateway.core.attachment_content import UNPACK_REFUSED
from gateway.core.consent import RouteDecision, decide_route
from gateway.core.keys import SigningKey
from gateway.core.provenance import KnownEnvelope, known_from_envelope
from gateway.core.review import DEFAULT_THRESHOLD, ReviewMode, ReviewNeed, resemblances, review_need
from gateway.core.signing import sign_envelope_with_digest
from gateway.core.stamping import stamp
from gateway.core.state import PartyState

# A liaison.assignment accredits an officer at both Parties: only the systems the configuration
# names as roster administrators may submit one.
ROSTER_TYPES = frozenset({"liaison.assignment"})
NOT_ROSTER_ADMIN = "roster.not_an_administrator"


@dataclass(frozen=True)
class Delivery:
    """The facts of one consumed AMQP message that decisions may look at."""

    body: bytes
    message_id: str | None
    user_id: str | None
    content_type: str | None
    headers: Mapping[str, Any]
    redelivered: bool
    # The routing key it was published with; None for submissions that never crossed gw.submit
    # (operator submissions, re-processed records), which have no key to disagree with.
    routing_key: str | None = None


@dataclass(frozen=True)
class Rejected:
    reason: str
    detail: str
    # The message type when it could be read, so that the status event, metrics, archive and
    # log still say what was refused.
    type: str | None = None


@dataclass(frozen=True)
class Blocked:
    submission: Submission
    route: RouteDecision


@dataclass(frozen=True)
class Accepted:
    submission: Submission
    envelope: dict[str, Any]
    # Computed while deciding and signing; applying the envelope to the state reuses them.
    digest: str
    known: KnownEnvelope

    def apply(self, state: PartyState, submission_id: str, at: datetime) -> None:
        """Teach ``state`` the envelope being sent, without canonicalising it or walking its
        content again."""
        state.sent(self.envelope, submission_id, at, digest=self.digest, known=self.known)


@dataclass(frozen=True)
class Held:
    """Allowed by the third-party rule, but waiting for a person's release (gateway.core.review)."""

    submission: Submission
    need: ReviewNeed


OutboundDecision = Accepted | Rejected | Blocked | Held


@dataclass(frozen=True)
class OutboundContext:
    party: str
    counterparties: frozenset[str]
    max_message_bytes: int
    signing_key: SigningKey
    state: PartyState
    now: datetime
    new_id: Callable[[], str]
    roster_admins: frozenset[str] = frozenset()
    # Counterparties that get a gateway-made submission_id: the AMQP message_id is chosen by a
    # back-office system, and carried unchecked it is a field no detector looks at.
    third_parties: frozenset[str] = frozenset()
    review: Mapping[str, ReviewMode] = field(default_factory=dict)
    review_threshold: float = DEFAULT_THRESHOLD


def _check_delivery(delivery: Delivery, ctx: OutboundContext) -> Rejected | None:
    if len(delivery.body) > ctx.max_message_bytes:
        return Rejected(
            "schema.too_large",
            f"body is {len(delivery.body)} bytes; the limit is {ctx.max_message_bytes}",
        )
    if not delivery.message_id:
        return Rejected("submission.missing_message_id", "AMQP property message_id is required")
    if not delivery.user_id:
        return Rejected(
            "submission.missing_user_id",
            "AMQP property user_id is required; RabbitMQ validates it against the connection",
        )
    content_type = (delivery.content_type or "").split(";")[0].strip().lower()
    if content_type != CONTENT_TYPE:
        return Rejected(
            "submission.wrong_content_type",
            f"content_type must be {CONTENT_TYPE}, got {delivery.content_type!r}",
        )
    return None


def _check_officer(submission: Submission, ctx: OutboundContext) -> Rejected | None:
    # The contract already refuses a type that needs an officer without one.
    officer = submission.officer
    if officer is None or not spec_for(submission.type, submission.version).needs_officer:
        return None
    if not ctx.state.roster.is_accredited(ctx.party, officer, ctx.now):
        return Rejected(
            "roster.officer_not_accredited",
            f"officer {officer} is not on {ctx.party}'s liaison roster",
        )
    return None


def _check_announced(submission: Submission, ctx: OutboundContext) -> Rejected | None:
    """Refuse here what the recipient would refuse: an officer it was never told about."""
    officer = submission.officer
    if officer is None or not spec_for(submission.type, submission.version).needs_officer:
        return None
    known = ctx.state.announced.get(submission.recipient)
    if known is None or not known.is_accredited(ctx.party, officer, ctx.now):
        return Rejected(
            "roster.officer_not_accredited",
            f"officer {officer} is on {ctx.party}'s liaison roster, but no liaison.assignment "
            f"has put them on {submission.recipient}'s copy of it",
        )
    return None


def route_of(known: KnownEnvelope, ctx: OutboundContext) -> RouteDecision:
    """The third-party rule for an envelope on its way to its recipient: the same check for a
    new submission, a replay to the peer and a quarantine release."""
    return decide_route(
        this_party=ctx.party,
        recipient=known.recipient,
        derived_from=known.derived_from,
        attachment_sha256=known.attachment_sha256,
        texts=known.texts,
        content=known.readable(),
        pre_approved_now=known.pre_approved,
        index=ctx.state.provenance,
        registry=ctx.state.consent,
        at=ctx.now,
    )


def _check_submission(submission: Submission, delivery: Delivery) -> Rejected | None:
    if submission.type in GATEWAY_ONLY_TYPES:
        return Rejected(
            "submission.reserved_type", f"{submission.type} is made by the gateway, not submitted"
        )
    if delivery.routing_key is not None and delivery.routing_key != submission.type:
        # Systems bound to gw.submit by key (and audits of it) must see what the body is.
        return Rejected(
            "submission.routing_key_mismatch",
            f"routing key {delivery.routing_key[:128]!r} is not the body's type "
            f"{submission.type!r}",
        )
    return None


def review_of(known: KnownEnvelope, ctx: OutboundContext) -> ReviewNeed | None:
    """Whether a submission the rule allowed waits for a person (see gateway.core.review)."""
    mode = ctx.review.get(known.recipient, "off")
    if mode == "off":
        return None
    return review_need(
        known,
        mode=mode,
        found=resemblances(known, ctx.state.provenance, ctx.review_threshold),
        this_party=ctx.party,
        registry=ctx.state.consent,
        at=ctx.now,
    )


def decide_submission(
    delivery: Delivery, ctx: OutboundContext, *, reviewed: bool = False
) -> OutboundDecision:
    """``reviewed``: a person released it (gateway.core.review); every other check runs again."""
    decision = _decide(delivery, ctx, reviewed)
    if isinstance(decision, Rejected) and decision.type is None:
        return replace(decision, type=readable_type(delivery.body))
    return decision


def _decide(delivery: Delivery, ctx: OutboundContext, reviewed: bool) -> OutboundDecision:
    rejected = _check_delivery(delivery, ctx)
    if rejected is not None:
        return rejected
    try:
        submission = parse_submission(delivery.body)
    except ContractError as exc:
        return Rejected(exc.code, exc.message)
    rejected = _check_submission(submission, delivery)
    if rejected is not None:
        return rejected
    if submission.recipient not in ctx.counterparties:
        return Rejected(
            "route.unknown_recipient",
            f"recipient {submission.recipient} is not a configured counterparty",
        )
    assert delivery.message_id is not None
    assert delivery.user_id is not None
    if submission.type in ROSTER_TYPES and delivery.user_id not in ctx.roster_admins:
        return Rejected(
            NOT_ROSTER_ADMIN,
            f"system {delivery.user_id} is not one of the roster administrators "
            f"(config key roster_admins) and may not submit {submission.type}",
        )
    rejected = _check_officer(submission, ctx)
    if rejected is not None:
        return rejected
    envelope_id = ctx.new_id()
    envelope = stamp(
        submission,
        party=ctx.party,
        system=delivery.user_id,
        submission_id=envelope_id
        if submission.recipient in ctx.third_parties
        else delivery.message_id,
        envelope_id=envelope_id,
        created_at=ctx.now,
    )
    known = known_from_envelope(envelope, received=False)
    if known.content is not None and known.content.refusal is not None:
        return Rejected(UNPACK_REFUSED, known.content.refusal)
    route = route_of(known, ctx)
    if not route.allowed:
        return Blocked(submission, route)
    rejected = _check_announced(submission, ctx)
    if rejected is not None:
        return rejected
    need = None if reviewed else review_of(known, ctx)
    if need is not None:
        return Held(submission, need)
    signed, digest = sign_envelope_with_digest(envelope, ctx.signing_key)
    return Accepted(submission, signed, digest, known)
