"""The third-party rule: may a message go to a recipient (design section 4).

"The information received under the present Protocol may not be transmitted to third parties
without the prior consent of the providing Party." :func:`decide_route` answers from the
provenance index and the :class:`~gateway.core.consent_registry.ConsentRegistry` (its semantics are
described there), in pure steps: gather the information the message carries, check each of its
envelopes against every target, then word the answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from gateway.core.consent_registry import ConsentRegistry
from gateway.core.envelope_content import Content
from gateway.core.provenance import KnownEnvelope, ProvenanceError, ProvenanceIndex, providers_of
from gateway.core.resemblance import Resemblance

CONSENT_MISSING = "consent.missing"
UNDECLARED_DERIVATION = "consent.undeclared_derivation"


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


@dataclass(frozen=True)
class _Information:
    """What a message carries: its declared closure and the closures of undeclared matches."""

    declared: frozenset[str]
    envelopes: dict[str, KnownEnvelope]
    found: Sequence[Resemblance]
    # Each undeclared match, with the evidence of the resemblance.
    evidence: dict[str, list[str]]
    # Each envelope outside the declared closure, with the matches that brought it in.
    through: dict[str, list[str]]


@dataclass(frozen=True)
class _Coverage:
    missing: dict[tuple[str, str], list[str]]
    covered: list[str]


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


def _information(
    derived_from: Sequence[str], content: Content, recipient: str, index: ProvenanceIndex
) -> _Information:
    """The envelopes whose information the message carries; ProvenanceError on an unknown one.

    The closure of each match is taken separately, so a refusal names the match that caused it.
    """
    closure = providers_of(derived_from, index)
    declared = closure.ids
    found = index.resemblances(content, recipient)
    evidence = _undeclared_matches(declared, found)
    envelopes = {known.id: known for known in closure.envelopes}
    through: dict[str, list[str]] = {}
    for matched_id in evidence:
        for known in providers_of([matched_id], index).envelopes:
            envelopes.setdefault(known.id, known)
            if known.id not in declared:
                through.setdefault(known.id, []).append(matched_id)
    return _Information(declared, envelopes, found, evidence, through)


def _targets(recipient: str, this_party: str, pre_approved_now: Sequence[str]) -> list[str]:
    """The recipient, then each onward recipient the message pre-approves, once each."""
    onward = dict.fromkeys(pre_approved_now)
    return [recipient] + [party for party in onward if party not in (recipient, this_party)]


def _coverage(
    envelopes: Sequence[KnownEnvelope],
    targets: Sequence[str],
    this_party: str,
    registry: ConsentRegistry,
    at: datetime,
) -> _Coverage:
    """Which envelopes lack consent for which target, and what covers the others."""
    recipient = targets[0]
    missing: dict[tuple[str, str], list[str]] = {}
    covered: list[str] = []
    for target in targets:
        exempt = {target, this_party, recipient}
        for known in envelopes:
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
    return _Coverage(missing, covered)


def _unconsented(
    information: _Information,
    recipient: str,
    this_party: str,
    index: ProvenanceIndex,
    registry: ConsentRegistry,
    at: datetime,
) -> tuple[Resemblance, ...]:
    weak = []
    for resemblance in information.found:
        known = index.get(resemblance.matched_envelope_id)
        if resemblance.level != "review" or known is None or known.id in information.declared:
            continue
        if known.provider in (recipient, this_party) or recipient in known.pre_approved:
            continue
        if registry.covers(known.provider, known, recipient, at) is None:
            weak.append(resemblance)
    return tuple(weak)


def _allowed_detail(recipient: str, covered: Sequence[str]) -> str:
    return f"allowed to {recipient}: " + (
        "; ".join(covered) if covered else "no information of another Party needs consent"
    )


def _refusal(information: _Information, missing: dict[tuple[str, str], list[str]]) -> RouteDecision:
    """The refusal naming every undeclared match behind a gap, then every gap."""
    envelopes, evidence = information.envelopes, information.evidence
    culprits = sorted(
        {m for _, envelope_id in missing for m in information.through.get(envelope_id, ())}
    )
    lines = [
        f"reproduces received envelope {m} of {envelopes[m].provider} "
        f"({', '.join(evidence[m])}) without declaring it in derived_from"
        for m in culprits
    ]
    lines.extend(
        f"no consent from {provider} for envelope {envelope_id} to {', '.join(recipients)}"
        for (provider, envelope_id), recipients in sorted(missing.items())
    )
    return RouteDecision(
        False,
        UNDECLARED_DERIVATION if culprits else CONSENT_MISSING,
        tuple(sorted(missing)),
        tuple(evidence),
        frozenset(known.provider for known in envelopes.values()),
        "; ".join(lines),
    )


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
    if content is None:
        content = Content.of_texts(texts, attachment_sha256)
    try:
        information = _information(derived_from, content, recipient, index)
    except ProvenanceError as error:
        return _refused(error)
    targets = _targets(recipient, this_party, pre_approved_now)
    envelopes = list(information.envelopes.values())
    coverage = _coverage(envelopes, targets, this_party, registry, at)
    if coverage.missing:
        return _refusal(information, coverage.missing)
    return RouteDecision(
        True,
        None,
        (),
        tuple(information.evidence),
        frozenset(known.provider for known in envelopes),
        _allowed_detail(recipient, coverage.covered),
        _unconsented(information, recipient, this_party, index, registry, at),
    )
