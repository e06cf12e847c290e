"""The consent registry and the routing decision, clause by clause (design section 4)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gateway.core.consent import (
    CONSENT_MISSING,
    UNDECLARED_DERIVATION,
    RouteDecision,
    decide_route,
)
from gateway.core.consent_registry import ConsentRegistry
from gateway.core.provenance import UNKNOWN_REFERENCE, KnownEnvelope, ProvenanceIndex

A, B, C, D = "CICA", "SCO-RATS", "UNOCT", "INTERPOL"  # this gateway is B's
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
SECOND = timedelta(seconds=1)
HOUR = timedelta(hours=1)

TEXT_A = (
    "Information was received about a group planning to travel through the region to conflict "
    "zones using forged travel documents and a network of safe houses along the northern route."
)
TEXT_C = (
    "A training course on investigating the use of cryptocurrencies by terrorist organisations "
    "was completed last week and thirty investigators from member states attended the course."
)
TEXT_OWN = (
    "The Secretariat proposes to hold the annual consultations on the margins of the General "
    "Assembly in New York to review the implementation of the joint plan of action."
)
DIGEST_A = "a1" * 32


def known(
    envelope_id: str,
    provider: str,
    *,
    received: bool = True,
    thread: str | None = None,
    derived_from: tuple[str, ...] = (),
    pre_approved: tuple[str, ...] = (),
    texts: tuple[str, ...] = (),
    attachments: tuple[str, ...] = (),
) -> KnownEnvelope:
    return KnownEnvelope(
        id=envelope_id,
        provider=provider,
        recipient=B if received else A,
        type="information.share",
        correlation_id=thread,
        derived_from=derived_from,
        pre_approved=pre_approved,
        attachment_sha256=attachments,
        texts=texts,
        received=received,
    )


def grant_body(
    *,
    envelope_ids: list[str] | None = None,
    thread: str | None = None,
    recipients: tuple[str, ...] = (C,),
    decision: str = "granted",
    expires_at: datetime | None = None,
    **extra: Any,
) -> dict[str, Any]:
    scope: dict[str, Any] = {}
    if envelope_ids is not None:
        scope["envelope_ids"] = envelope_ids
    if thread is not None:
        scope["correlation_id"] = thread
    return {
        "request_id": "req-1",
        "decision": decision,
        "scope": scope,
        "recipients": list(recipients),
        "expires_at": expires_at.isoformat().replace("+00:00", "Z") if expires_at else None,
        "conditions": None,
        **extra,
    }


W = known("w", A, thread="t-1", texts=(TEXT_A,), attachments=(DIGEST_A,))


class World:
    """An index and a registry, as B's gateway holds them."""

    def __init__(self, *envelopes: KnownEnvelope) -> None:
        self.index = ProvenanceIndex()
        self.registry = ConsentRegistry()
        for envelope in envelopes:
            self.index.add(envelope)

    def route(
        self,
        recipient: str,
        derived_from: tuple[str, ...] = (),
        *,
        texts: tuple[str, ...] = (),
        attachments: tuple[str, ...] = (),
        pre_approved_now: tuple[str, ...] = (),
        at: datetime = T0,
    ) -> RouteDecision:
        return decide_route(
            this_party=B,
            recipient=recipient,
            derived_from=derived_from,
            attachment_sha256=attachments,
            texts=texts,
            pre_approved_now=pre_approved_now,
            index=self.index,
            registry=self.registry,
            at=at,
        )


class TestRegistry:
    def test_grant_by_envelope_ids_covers_exactly_those_for_listed_recipients(self) -> None:
        registry = ConsentRegistry()
        record = registry.apply_decision("d1", A, grant_body(envelope_ids=["w"]), T0)
        assert record.granted
        assert record.request_id == "req-1"
        assert registry.covers(A, W, C, T0) == record.grant
        assert registry.covers(A, W, D, T0) is None
        assert registry.covers(A, known("w2", A, thread="t-1"), C, T0) is None

    def test_grant_never_covers_an_envelope_of_another_provider(self) -> None:
        registry = ConsentRegistry()
        registry.apply_decision("d1", C, grant_body(envelope_ids=["w"], thread="t-1"), T0)
        assert registry.covers(C, W, C, T0) is None
        assert registry.covers(A, W, C, T0) is None

    def test_grant_by_thread_covers_the_providers_envelopes_in_it_even_later_ones(self) -> None:
        registry = ConsentRegistry()
        registry.apply_decision("d1", A, grant_body(thread="t-1"), T0)
        later = known("later", A, thread="t-1")
        assert registry.covers(A, W, C, T0) is not None
        assert registry.covers(A, later, C, T0 + HOUR) is not None
        assert registry.covers(A, known("x", A, thread="t-2"), C, T0) is None
        assert registry.covers(A, known("y", A), C, T0) is None

    def test_consent_must_be_prior(self) -> None:
        registry = ConsentRegistry()
        registry.apply_decision("d1", A, grant_body(envelope_ids=["w"]), T0)
        assert registry.covers(A, W, C, T0 - SECOND) is None
        assert registry.status("d1", T0 - SECOND) == "pending"
        assert registry.status("d1", T0) == "live"

    def test_expiry_is_exclusive(self) -> None:
        registry = ConsentRegistry()
        registry.apply_decision("d1", A, grant_body(envelope_ids=["w"], expires_at=T0 + HOUR), T0)
        grant = registry.covers(A, W, C, T0 + HOUR - SECOND)
        assert grant is not None
        assert grant.expires_at == T0 + HOUR
        assert registry.covers(A, W, C, T0 + HOUR) is None
        assert registry.status("d1", T0 + HOUR) == "expired"
        assert registry.live_grants(A, T0 + HOUR) == []

    def test_denied_decision_grants_nothing_and_withdraws_nothing(self) -> None:
        registry = ConsentRegistry()
        registry.apply_decision("d1", A, grant_body(envelope_ids=["w"]), T0)
        denied = registry.apply_decision(
            "d2", A, grant_body(envelope_ids=["w"], recipients=(C, D), decision="denied"), T0
        )
        assert not denied.granted
        assert registry.status("d2", T0) == "denied"
        covering = registry.covers(A, W, C, T0 + SECOND)
        assert covering is not None
        assert covering.decision_id == "d1"
        assert registry.covers(A, W, D, T0 + SECOND) is None
        assert [g.decision_id for g in registry.live_grants(A, T0)] == ["d1"]

    def test_revocation_by_the_provider_applies_from_its_instant_on(self) -> None:
        registry = ConsentRegistry()
        registry.apply_decision("d1", A, grant_body(envelope_ids=["w"]), T0)
        outcome = registry.apply_revocation(A, {"decision_id": "d1", "reason": "done"}, T0 + HOUR)
        assert outcome == "revoked"
        assert registry.covers(A, W, C, T0 + HOUR - SECOND) is not None
        assert registry.covers(A, W, C, T0 + HOUR) is None
        assert registry.status("d1", T0 + HOUR) == "revoked"
        record = registry.record("d1")
        assert record is not None
        assert record.revocation is not None
        assert record.revocation.reason == "done"

    def test_revocation_by_another_party_is_ignored_and_reported(self) -> None:
        registry = ConsentRegistry()
        registry.apply_decision("d1", A, grant_body(envelope_ids=["w"]), T0)
        assert registry.apply_revocation(C, {"decision_id": "d1"}, T0) == "not_provider"
        assert registry.apply_revocation(B, {"decision_id": "d1"}, T0) == "not_provider"
        assert registry.covers(A, W, C, T0 + HOUR) is not None
        assert registry.status("d1", T0 + HOUR) == "live"

    def test_revocation_before_its_decision_is_held_for_the_same_provider_only(self) -> None:
        registry = ConsentRegistry()
        assert registry.apply_revocation(A, {"decision_id": "d1"}, T0) == "held"
        assert registry.apply_revocation(C, {"decision_id": "d2"}, T0) == "held"
        registry.apply_decision("d1", A, grant_body(envelope_ids=["w"]), T0 + SECOND)
        registry.apply_decision("d2", A, grant_body(envelope_ids=["w"]), T0 + SECOND)
        assert registry.status("d1", T0 + HOUR) == "revoked"
        assert registry.status("d2", T0 + HOUR) == "live"

    def test_second_revocation_keeps_the_earliest(self) -> None:
        registry = ConsentRegistry()
        registry.apply_decision("d1", A, grant_body(envelope_ids=["w"]), T0)
        assert registry.apply_revocation(A, {"decision_id": "d1"}, T0 + 5 * HOUR) == "revoked"
        assert registry.apply_revocation(A, {"decision_id": "d1"}, T0 + 6 * HOUR) == (
            "already_revoked"
        )
        assert registry.apply_revocation(A, {"decision_id": "d1"}, T0 + 3 * HOUR) == "revoked"
        assert registry.status("d1", T0 + 4 * HOUR) == "revoked"

    def test_revoking_a_denial_changes_nothing(self) -> None:
        registry = ConsentRegistry()
        registry.apply_decision("d1", A, grant_body(envelope_ids=["w"], decision="denied"), T0)
        assert registry.apply_revocation(A, {"decision_id": "d1"}, T0) == "not_granted"
        assert registry.status("d1", T0) == "denied"

    def test_replayed_decision_changes_nothing(self) -> None:
        registry = ConsentRegistry()
        first = registry.apply_decision("d1", A, grant_body(envelope_ids=["w"]), T0)
        again = registry.apply_decision(
            "d1", A, grant_body(envelope_ids=["x"], recipients=(D,)), T0
        )
        assert again == first
        assert len(registry) == 1
        assert registry.covers(A, W, C, T0) is not None

    def test_listing_and_showing(self) -> None:
        registry = ConsentRegistry()
        conditions = {"en": "Analysts only", "ru": "Только аналитикам"}
        registry.apply_decision("d1", A, grant_body(thread="t-1", conditions=conditions), T0)
        registry.apply_decision("d2", C, grant_body(envelope_ids=["x"], decision="denied"), T0)
        grants = registry.grants()
        assert [g.decision_id for g in grants] == ["d1", "d2"]
        assert grants[0].conditions == "en: Analysts only\nru: Только аналитикам"
        assert grants[0].correlation_id == "t-1"
        assert grants[0].envelope_ids == frozenset()
        assert grants[0].recipients == {C}
        assert grants[0].granted_at == T0
        assert registry.status("nope", T0) is None
        assert registry.record("nope") is None
        assert registry.live_grants(C, T0) == []

    @pytest.mark.parametrize(
        ("body", "message"),
        [
            (grant_body(envelope_ids=["w"], decision="maybe"), "decision"),
            ({**grant_body(envelope_ids=["w"]), "scope": None}, "scope"),
            (grant_body(), "scope names neither"),
            (grant_body(envelope_ids=[]), "scope names neither"),
            (grant_body(envelope_ids="w"), "envelope_ids"),  # type: ignore[arg-type]
            ({**grant_body(thread="t"), "scope": {"correlation_id": 3}}, "correlation_id"),
            ({**grant_body(thread="t"), "recipients": "UNOCT"}, "recipients"),
            ({**grant_body(thread="t"), "expires_at": "2026-03-01T00:00:00"}, "timezone"),
            ({**grant_body(thread="t"), "expires_at": 5}, "RFC 3339"),
            ({**grant_body(thread="t"), "conditions": {"fr": "x"}}, "bilingual"),
        ],
    )
    def test_uninterpretable_decisions_are_refused(
        self, body: dict[str, Any], message: str
    ) -> None:
        with pytest.raises(ValueError, match=message):
            ConsentRegistry().apply_decision("d1", A, body, T0)

    def test_naive_times_are_refused(self) -> None:
        registry = ConsentRegistry()
        naive = datetime(2026, 3, 1)
        with pytest.raises(ValueError, match="timezone"):
            registry.apply_decision("d1", A, grant_body(thread="t"), naive)
        with pytest.raises(ValueError, match="timezone"):
            registry.apply_revocation(A, {"decision_id": "d1"}, naive)
        with pytest.raises(ValueError, match="decision_id"):
            registry.apply_revocation(A, {}, T0)


class TestDecideRoute:
    def test_nothing_derived_passes(self) -> None:
        decision = World().route(C, texts=(TEXT_OWN,))
        assert decision == RouteDecision(
            allowed=True,
            reason=None,
            missing=(),
            matched=(),
            providers=frozenset(),
            detail=f"allowed to {C}: no information of another Party needs consent",
        )

    def test_own_information_passes(self) -> None:
        world = World(known("mine", B, received=False))
        decision = world.route(C, ("mine",))
        assert decision.allowed
        assert decision.providers == {B}

    def test_received_information_to_a_third_party_needs_consent(self) -> None:
        decision = World(W).route(C, ("w",))
        assert not decision.allowed
        assert decision.reason == CONSENT_MISSING
        assert decision.missing == ((A, "w"),)
        assert decision.matched == ()
        assert decision.providers == {A}
        assert decision.detail == f"no consent from {A} for envelope w to {C}"

    def test_third_party_information_to_the_partner_needs_consent_too(self) -> None:
        decision = World(known("x", C)).route(A, ("x",))
        assert decision.reason == CONSENT_MISSING
        assert decision.missing == ((C, "x"),)

    def test_information_going_back_to_its_provider_always_passes(self) -> None:
        world = World(W, known("mine", B, received=False, derived_from=("w",)))
        assert world.route(A, ("mine",)).allowed
        assert world.route(A, ("w",), texts=(TEXT_A,), attachments=(DIGEST_A,)).allowed

    def test_pre_approved_recipient_passes_and_others_do_not(self) -> None:
        world = World(known("w", A, pre_approved=(C,)))
        decision = world.route(C, ("w",))
        assert decision.allowed
        assert "pre-approved" in decision.detail
        assert world.route(D, ("w",)).missing == ((A, "w"),)

    def test_live_grant_passes_and_names_the_decision(self) -> None:
        world = World(W)
        world.registry.apply_decision("d1", A, grant_body(envelope_ids=["w"]), T0)
        decision = world.route(C, ("w",))
        assert decision.allowed
        assert "d1" in decision.detail
        assert not world.route(D, ("w",)).allowed

    def test_thread_grant_passes(self) -> None:
        world = World(W)
        world.registry.apply_decision("d1", A, grant_body(thread="t-1"), T0)
        assert world.route(C, ("w",)).allowed

    def test_revoked_grant_stops_the_next_route(self) -> None:
        world = World(W)
        world.registry.apply_decision("d1", A, grant_body(envelope_ids=["w"]), T0)
        world.registry.apply_revocation(A, {"decision_id": "d1"}, T0 + HOUR)
        assert world.route(C, ("w",), at=T0 + HOUR - SECOND).allowed
        assert world.route(C, ("w",), at=T0 + HOUR).reason == CONSENT_MISSING

    def test_expired_grant_does_not_count(self) -> None:
        world = World(W)
        world.registry.apply_decision("d1", A, grant_body(thread="t-1", expires_at=T0 + HOUR), T0)
        assert world.route(C, ("w",), at=T0 + HOUR - SECOND).allowed
        assert world.route(C, ("w",), at=T0 + HOUR).missing == ((A, "w"),)

    def test_consent_from_someone_else_does_not_count(self) -> None:
        world = World(W)
        world.registry.apply_decision("d1", C, grant_body(envelope_ids=["w"]), T0)
        world.registry.apply_decision("d2", B, grant_body(envelope_ids=["w"]), T0)
        assert not world.route(C, ("w",)).allowed

    def test_derivative_of_a_derivative_needs_the_original_providers_consent(self) -> None:
        world = World(
            W,
            known("mine-1", B, received=False, derived_from=("w",)),
            known("mine-2", B, received=False, derived_from=("mine-1",)),
        )
        decision = world.route(C, ("mine-2",))
        assert decision.missing == ((A, "w"),)
        assert decision.providers == {A, B}

    def test_every_provider_is_checked_and_only_the_lacking_ones_reported(self) -> None:
        world = World(W, known("x", C), known("mine", B, received=False, derived_from=("w", "x")))
        assert world.route(A, ("mine",)).missing == ((C, "x"),)
        assert world.route(C, ("mine",)).missing == ((A, "w"),)
        decision = world.route(D, ("mine",))
        assert decision.missing == ((A, "w"), (C, "x"))
        assert decision.detail == (
            f"no consent from {A} for envelope w to {D}; no consent from {C} for envelope x to {D}"
        )

    def test_unknown_reference_is_an_error_not_a_pass(self) -> None:
        decision = World(W).route(A, ("w", "ghost"))
        assert not decision.allowed
        assert decision.reason == UNKNOWN_REFERENCE
        assert "ghost" in decision.detail
        assert decision.missing == ()

    def test_undeclared_attachment_copy_is_refused_naming_the_match(self) -> None:
        decision = World(W).route(C, attachments=(DIGEST_A.upper(),))
        assert not decision.allowed
        assert decision.reason == UNDECLARED_DERIVATION
        assert decision.matched == ("w",)
        assert decision.missing == ((A, "w"),)
        assert decision.detail == (
            f"reproduces received envelope w of {A} (attachment sha256 {DIGEST_A}) without "
            f"declaring it in derived_from; no consent from {A} for envelope w to {C}"
        )

    def test_undeclared_text_copy_is_refused_naming_the_match(self) -> None:
        copy = "FYI: " + TEXT_A.upper().replace("forged", "fake")
        decision = World(W).route(C, texts=("Subject line", copy))
        assert decision.reason == UNDECLARED_DERIVATION
        assert decision.matched == ("w",)
        assert "(text " in decision.detail
        assert "of w text[0] in text[1]" in decision.detail

    def test_short_or_unrelated_text_is_not_an_undeclared_copy(self) -> None:
        decision = World(W).route(C, texts=("Forged travel documents", TEXT_C, TEXT_OWN))
        assert decision.allowed
        assert decision.matched == ()

    def test_undeclared_copy_passes_when_going_back_to_its_provider(self) -> None:
        decision = World(W).route(A, texts=(TEXT_A,), attachments=(DIGEST_A,))
        assert decision.allowed
        assert decision.matched == ("w",)
        assert decision.providers == {A}

    def test_undeclared_copy_passes_when_consent_covers_it(self) -> None:
        world = World(W)
        world.registry.apply_decision("d1", A, grant_body(envelope_ids=["w"]), T0)
        assert world.route(C, texts=(TEXT_A,)).allowed

    def test_declared_copy_is_plain_missing_consent(self) -> None:
        decision = World(W).route(C, ("w",), texts=(TEXT_A,), attachments=(DIGEST_A,))
        assert decision.reason == CONSENT_MISSING
        assert decision.matched == ()

    def test_copy_of_an_own_envelope_is_not_undeclared_derivation(self) -> None:
        world = World(known("mine", B, received=False, texts=(TEXT_OWN,), attachments=("ff" * 32,)))
        decision = world.route(C, texts=(TEXT_OWN,), attachments=("ff" * 32,))
        assert decision.allowed
        assert decision.matched == ()

    def test_undeclared_copy_brings_the_matched_envelopes_own_sources(self) -> None:
        world = World(known("x", C), known("w", A, texts=(TEXT_A,), derived_from=("x",)))
        decision = world.route(A, texts=(TEXT_A,))
        assert decision.reason == UNDECLARED_DERIVATION
        assert decision.missing == ((C, "x"),)
        assert decision.matched == ("w",)
        assert "reproduces received envelope w" in decision.detail

    def test_undeclared_derivation_wins_over_plain_missing_consent(self) -> None:
        world = World(W, known("x", C))
        decision = world.route(D, ("x",), attachments=(DIGEST_A,))
        assert decision.reason == UNDECLARED_DERIVATION
        assert decision.missing == ((A, "w"), (C, "x"))

    def test_laundering_a_copy_through_an_own_envelope_is_caught(self) -> None:
        # B sent A's text back to A (always allowed), then tries to pass it on as its own.
        world = World(W, known("mine", B, received=False, texts=(TEXT_A,)))
        decision = world.route(C, ("mine",), texts=(TEXT_A,))
        assert decision.reason == UNDECLARED_DERIVATION
        assert decision.matched == ("w",)

    def test_onward_pre_approval_must_be_backed_by_consent(self) -> None:
        world = World(W)
        world.registry.apply_decision("d1", A, grant_body(envelope_ids=["w"]), T0)
        assert world.route(C, ("w",)).allowed
        decision = world.route(C, ("w",), pre_approved_now=(D,))
        assert decision.reason == CONSENT_MISSING
        assert decision.missing == ((A, "w"),)
        assert D in decision.detail
        world.registry.apply_decision("d2", A, grant_body(envelope_ids=["w"], recipients=(D,)), T0)
        assert world.route(C, ("w",), pre_approved_now=(D, B, C)).allowed

    def test_envelope_pre_approval_counts_only_for_the_recipients_it_names(self) -> None:
        world = World(known("w", A, pre_approved=(C,)))
        assert world.route(C, ("w",)).allowed
        decision = world.route(C, ("w",), pre_approved_now=(D,))
        assert decision.missing == ((A, "w"),)
        assert decision.detail == f"no consent from {A} for envelope w to {D}"

    def test_onward_pre_approval_of_the_providers_own_information_is_its_business(self) -> None:
        world = World(W)
        assert world.route(A, ("w",), pre_approved_now=(C,)).allowed
        refused = world.route(C, ("w",), pre_approved_now=(A,))
        assert refused.detail == f"no consent from {A} for envelope w to {C}"
