"""The third-party rule: the consent registry and the routing decision (design section 4).

"The information received under the present Protocol may not be transmitted to third parties
without the prior consent of the providing Party." Everything here is pure state and pure
functions: the shell feeds :class:`ConsentRegistry` the ``consent.decision`` and
``consent.revocation`` envelopes it archives (at start, by replaying the archive in order) and
asks :func:`decide_route` before anything is published toward a counterparty.

Consent semantics
-----------------
- A ``granted`` decision by provider P is a :class:`Grant`: P's envelopes in scope (listed
  ``envelope_ids``, or every envelope of P in the ``correlation_id`` thread, including later
  ones) may go to the listed recipients from the moment it is applied until ``expires_at``
  (exclusive) or a revocation, whichever comes first. A grant from P never covers an envelope
  whose provider is not P.
- A ``denied`` decision grants nothing and withdraws nothing: earlier grants stand until P
  revokes them.
- A revocation applies to every routing decision made at or after its own time. Only the
  Party that made the decision can revoke it; anyone else's revocation changes nothing and is
  reported as ``"not_provider"``. A revocation that arrives before its decision is held and
  applied when the decision arrives.
- Applying the same decision id twice changes nothing (archive replays and redeliveries).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Literal

from gateway.envelope_content import Content
from gateway.provenance import KnownEnvelope, ProvenanceError, ProvenanceIndex, providers_of
from gateway.resemblance import Resemblance

CONSENT_MISSING = "consent.missing"
UNDECLARED_DERIVATION = "consent.undeclared_derivation"

GrantStatus = Literal["live", "expired", "revoked", "denied", "pending"]
RevocationOutcome = Literal["revoked", "already_revoked", "held", "not_provider", "not_granted"]


@dataclass(frozen=True)
class Grant:
    """One consent decision of a provider: what may go to whom, and for how long.

    Denied decisions are recorded with the same shape (for ``gateway consent list``) but never
    cover anything.
    """

    decision_id: str
    provider: str
    recipients: frozenset[str]
    envelope_ids: frozenset[str]
    correlation_id: str | None
    granted_at: datetime
    expires_at: datetime | None
    conditions: str | None

    def in_scope(self, envelope: KnownEnvelope) -> bool:
        return envelope.provider == self.provider and (
            envelope.id in self.envelope_ids
            or (self.correlation_id is not None and envelope.correlation_id == self.correlation_id)
        )


@dataclass(frozen=True)
class Revocation:
    decision_id: str
    provider: str
    reason: str | None
    at: datetime


@dataclass(frozen=True)
class DecisionRecord:
    """Everything ``gateway consent show`` prints about one decision."""

    grant: Grant
    granted: bool
    request_id: str | None
    revocation: Revocation | None


def _aware(value: datetime, name: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware")
    return value


def _timestamp(value: Any, name: str) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"{name} is not an RFC 3339 string")
    return _aware(datetime.fromisoformat(value), name)


def _bilingual(value: Any, name: str) -> str | None:
    """Both originals of a bilingual text as one string (neither language is primary)."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        parts = [
            f"{lang}: {value[lang]}" for lang in ("en", "ru") if isinstance(value.get(lang), str)
        ]
        if parts:
            return "\n".join(parts)
    raise ValueError(f"{name} is not a bilingual text")


def _strings(value: Any, name: str) -> frozenset[str]:
    if value is None:
        return frozenset()
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValueError(f"{name} is not a list of strings")
    return frozenset(value)


class ConsentRegistry:
    """Every consent decision and revocation this gateway has seen, queryable at any instant."""

    def __init__(self) -> None:
        self._records: dict[str, DecisionRecord] = {}
        self._by_provider: dict[str, list[str]] = {}
        self._held: dict[str, list[Revocation]] = {}

    def apply_decision(
        self, decision_id: str, provider: str, body: Mapping[str, Any], at: datetime
    ) -> DecisionRecord:
        """Record a ``consent.decision`` body that ``provider`` made at ``at``.

        Raises ValueError on a body the rule cannot interpret (no scope, bad timestamp): the
        contracts refuse those first, and a guessed scope could leak.
        """
        existing = self._records.get(decision_id)
        if existing is not None:
            return existing
        decision = body.get("decision")
        if decision not in ("granted", "denied"):
            raise ValueError(f"decision must be 'granted' or 'denied', not {decision!r}")
        scope = body.get("scope")
        if not isinstance(scope, Mapping):
            raise ValueError("scope is not an object")
        envelope_ids = _strings(scope.get("envelope_ids"), "scope.envelope_ids")
        correlation_id = scope.get("correlation_id")
        if correlation_id is not None and not isinstance(correlation_id, str):
            raise ValueError("scope.correlation_id is not a string")
        if not envelope_ids and not correlation_id:
            raise ValueError("scope names neither envelope_ids nor a correlation_id")
        request_id = body.get("request_id")
        grant = Grant(
            decision_id=decision_id,
            provider=provider,
            recipients=_strings(body.get("recipients"), "recipients"),
            envelope_ids=envelope_ids,
            correlation_id=correlation_id or None,
            granted_at=_aware(at, "at"),
            expires_at=_timestamp(body.get("expires_at"), "expires_at"),
            conditions=_bilingual(body.get("conditions"), "conditions"),
        )
        held = [rev for rev in self._held.pop(decision_id, []) if rev.provider == provider]
        record = DecisionRecord(
            grant=grant,
            granted=decision == "granted",
            request_id=request_id if isinstance(request_id, str) else None,
            revocation=min(held, key=lambda rev: rev.at) if held else None,
        )
        self._records[decision_id] = record
        self._by_provider.setdefault(provider, []).append(decision_id)
        return record

    def apply_revocation(
        self, provider: str, body: Mapping[str, Any], at: datetime
    ) -> RevocationOutcome:
        """Record a ``consent.revocation`` body that ``provider`` made at ``at``.

        Returns what happened: ``revoked``; ``already_revoked`` (an earlier revocation stands);
        ``held`` (the decision is not known yet, the revocation waits for it);
        ``not_provider`` (someone other than the decision's provider tried: ignored);
        ``not_granted`` (the decision was a denial: nothing to revoke).
        """
        decision_id = body.get("decision_id")
        if not isinstance(decision_id, str) or not decision_id:
            raise ValueError("revocation names no decision_id")
        revocation = Revocation(
            decision_id=decision_id,
            provider=provider,
            reason=_bilingual(body.get("reason"), "reason"),
            at=_aware(at, "at"),
        )
        record = self._records.get(decision_id)
        if record is None:
            self._held.setdefault(decision_id, []).append(revocation)
            return "held"
        if record.grant.provider != provider:
            return "not_provider"
        if not record.granted:
            return "not_granted"
        if record.revocation is not None and record.revocation.at <= at:
            return "already_revoked"
        self._records[decision_id] = replace(record, revocation=revocation)
        return "revoked"

    def status(self, decision_id: str, at: datetime) -> GrantStatus | None:
        """The state of a decision at ``at``; None for an unknown decision id.

        ``pending`` means ``at`` is before the decision was made (a question about the past).
        """
        record = self._records.get(decision_id)
        if record is None:
            return None
        _aware(at, "at")
        grant = record.grant
        if not record.granted:
            return "denied"
        if record.revocation is not None and at >= record.revocation.at:
            return "revoked"
        if at < grant.granted_at:
            return "pending"
        if grant.expires_at is not None and at >= grant.expires_at:
            return "expired"
        return "live"

    def live_grants(self, provider: str, at: datetime) -> list[Grant]:
        """Grants by ``provider`` in force at ``at``, in the order they were made."""
        return [
            self._records[decision_id].grant
            for decision_id in self._by_provider.get(provider, ())
            if self.status(decision_id, at) == "live"
        ]

    def covers(
        self, provider: str, envelope: KnownEnvelope, recipient: str, at: datetime
    ) -> Grant | None:
        """A grant by ``provider`` letting ``envelope`` go to ``recipient`` at ``at``, if any.

        Only an envelope of ``provider`` itself can be covered (see :meth:`Grant.in_scope`).
        """
        for grant in self.live_grants(provider, at):
            if recipient in grant.recipients and grant.in_scope(envelope):
                return grant
        return None

    def grants(self) -> list[Grant]:
        """Every decision, granted or denied, in the order they were applied."""
        return [record.grant for record in self._records.values()]

    def record(self, decision_id: str) -> DecisionRecord | None:
        return self._records.get(decision_id)

    def __len__(self) -> int:
        return len(self._records)


@dataclass(frozen=True)
class RouteDecision:
    """The answer of the third-party rule for one message toward one recipient."""

    allowed: bool
    reason: str | None
    missing: tuple[tuple[str, str], ...]
    matched: tuple[str, ...]
    providers: frozenset[str]
    detail: str
    # Weaker resemblances (level "review") to received envelopes whose provider has not
    # consented to this recipient: what a release review may hold for a person to look at.
    unconsented: tuple[Resemblance, ...] = ()


def _refused(error: ProvenanceError) -> RouteDecision:
    return RouteDecision(False, error.code, (), (), frozenset(), error.detail)


def _undeclared_matches(
    declared: frozenset[str], found: Sequence[Resemblance]
) -> dict[str, list[str]]:
    """Received envelopes the message reproduces without declaring them, with the evidence."""
    evidence: dict[str, list[str]] = {}
    for resemblance in found:
        if resemblance.level == "block" and resemblance.matched_envelope_id not in declared:
            evidence.setdefault(resemblance.matched_envelope_id, []).append(resemblance.describe())
    return dict(sorted(evidence.items()))


def _unconsented(
    found: Sequence[Resemblance],
    declared: frozenset[str],
    recipient: str,
    this_party: str,
    index: ProvenanceIndex,
    registry: ConsentRegistry,
    at: datetime,
) -> tuple[Resemblance, ...]:
    weak = []
    for resemblance in found:
        known = index.get(resemblance.matched_envelope_id)
        if resemblance.level != "review" or known is None or known.id in declared:
            continue
        if known.provider in (recipient, this_party) or recipient in known.pre_approved:
            continue
        if registry.covers(known.provider, known, recipient, at) is None:
            weak.append(resemblance)
    return tuple(weak)


def decide_route(
    *,
    this_party: str,
    recipient: str,
    derived_from: Sequence[str],
    attachment_sha256: Sequence[str],
    texts: Sequence[str],
    content: Content | None = None,
    pre_approved_now: Sequence[str] = (),
    index: ProvenanceIndex,
    registry: ConsentRegistry,
    at: datetime,
) -> RouteDecision:
    """May a message with this provenance and content go from ``this_party`` to ``recipient``?

    The message's information is the closure of its declared ``derived_from`` plus, for every
    received envelope it reproduces undeclared (a blocking :class:`Resemblance` of ``content``,
    or of ``texts`` and ``attachment_sha256`` when no content is given), that envelope's
    closure. Each envelope E of provider P in it, with P neither the recipient
    (information going back to its provider always passes) nor this Party, needs the recipient
    in E's ``handling.pre_approved`` or a live grant from P covering E for the recipient.

    ``pre_approved_now`` are the onward recipients the message itself pre-approves. Each of
    them is checked like the recipient, except that information of the recipient itself is
    exempt: this Party may only pre-approve onward transmission of what it could send to that
    Party itself, or it would launder other providers' information through its own approval.

    Refusals: ``provenance.unknown_reference`` (nothing else is checked), else
    ``consent.undeclared_derivation`` when any missing consent comes from an undeclared match,
    else ``consent.missing``. ``missing`` lists every (provider, envelope id) lacking consent.
    """
    try:
        declared = providers_of(derived_from, index)
    except ProvenanceError as error:
        return _refused(error)
    declared_ids = declared.ids
    if content is None:
        content = Content.of_texts(texts, attachment_sha256)
    found = index.resemblances(content, recipient)
    evidence = _undeclared_matches(declared_ids, found)
    # The closure of each match separately, so a refusal names the match that caused it.
    through: dict[str, list[str]] = {}
    envelopes = {known.id: known for known in declared.envelopes}
    try:
        for matched_id in evidence:
            for known in providers_of([matched_id], index).envelopes:
                envelopes.setdefault(known.id, known)
                if known.id not in declared_ids:
                    through.setdefault(known.id, []).append(matched_id)
    except ProvenanceError as error:
        return _refused(error)

    targets = [recipient] + [
        onward
        for onward in dict.fromkeys(pre_approved_now)
        if onward not in (recipient, this_party)
    ]
    missing: dict[tuple[str, str], list[str]] = {}
    covered: list[str] = []
    for target in targets:
        exempt = {target, this_party, recipient}
        for known in envelopes.values():
            if known.provider in exempt:
                continue
            if target in known.pre_approved:
                covered.append(f"{known.id} of {known.provider} pre-approved for {target}")
                continue
            grant = registry.covers(known.provider, known, target, at)
            if grant is not None:
                covered.append(
                    f"{known.id} of {known.provider} for {target} by decision {grant.decision_id}"
                )
                continue
            missing.setdefault((known.provider, known.id), []).append(target)

    providers = frozenset(known.provider for known in envelopes.values())
    matched = tuple(evidence)
    if not missing:
        detail = f"allowed to {recipient}: " + (
            "; ".join(covered) if covered else "no information of another Party needs consent"
        )
        weak = _unconsented(found, declared_ids, recipient, this_party, index, registry, at)
        return RouteDecision(True, None, (), matched, providers, detail, weak)

    culprits = sorted({m for _, envelope_id in missing for m in through.get(envelope_id, ())})
    lines: list[str] = []
    if culprits:
        reason = UNDECLARED_DERIVATION
        lines.extend(
            f"reproduces received envelope {m} of {envelopes[m].provider} "
            f"({', '.join(evidence[m])}) without declaring it in derived_from"
            for m in culprits
        )
    else:
        reason = CONSENT_MISSING
    for (provider, envelope_id), recipients in sorted(missing.items()):
        lines.append(
            f"no consent from {provider} for envelope {envelope_id} to {', '.join(recipients)}"
        )
    return RouteDecision(
        False, reason, tuple(sorted(missing)), matched, providers, "; ".join(lines)
    )
