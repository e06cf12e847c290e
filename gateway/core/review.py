"""The release review: which submissions wait for a person before they go, and who may decide.

The third-party rule quarantines a clear resemblance to another Party's information that no
consent covers; no detector catches a determined paraphrase, so the rule does not rest on it
alone. Per counterparty, ``review`` says what else waits in the ``held`` state for a person of
the sending Party:

- ``off``: nothing;
- ``on_match``: a weaker resemblance (score at or above ``review.threshold``, below the
  blocking threshold) to a received envelope that no consent covers: not pre-approved for the
  recipient, no live grant of its provider for it, and not the recipient's own information.
  Consented content and this Party's own fresh information (which resembles nothing received)
  are never held;
- ``always``: every submission to that counterparty.

A held submission goes on only when a person releases it: an officer of this Party, accredited
now with one of the configured roles, who is not the officer named on the submission (four
eyes). The release runs every check again, the third-party rule included; a refusal ends it.
Nothing here does I/O.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Literal

from gateway.core.consent_registry import ConsentRegistry
from gateway.core.provenance import KnownEnvelope, ProvenanceIndex
from gateway.core.roster import Roster

ReviewMode = Literal["off", "on_match", "always"]

HELD_ALWAYS: Final = "review.always"
HELD_RESEMBLANCE: Final = "review.resemblance"
REFUSED: Final = "review.refused"
NOT_HELD: Final = "review.not_held"
ALREADY_DECIDED: Final = "review.already_decided"
SAME_OFFICER: Final = "review.same_officer"
NOT_A_REVIEWER: Final = "review.not_a_reviewer"

# The detector's review level for text (gateway.core.resemblance.THRESHOLDS), measured on the 36
# paragraphs (20 English, 16 Russian) of tests/gateway/fresh_text.py;
# tests/gateway/core/test_review.py prints the figures. Unrelated paragraphs: 6 of 1,260
# queries held (0.5 %), the highest 0.30,
# all from paragraphs sharing boilerplate sentences. Copies of part of a paragraph in new text:
# 30 % copied, 30 of 36 held; 40 %, all 36 held; 50 %, 15 blocked and 21 held; 60 %, all blocked.
DEFAULT_THRESHOLD: Final = 0.2

RESEMBLES_HEADER: Final = "x-gw-resembles"
OFFICER_HEADER: Final = "x-gw-officer"
# Outcomes of a review record that settle its held submission (a release the rule stops now
# leaves it held: it may be refused, or released once consent arrives).
SETTLED: Final = frozenset({"released", "refused"})


@dataclass(frozen=True)
class Resemblance:
    """A received envelope a submission resembles, and how much (the detector's score)."""

    envelope_id: str
    provider: str
    score: float


@dataclass(frozen=True)
class ReviewNeed:
    """Why a submission waits for a person, with what it resembles."""

    reason: str
    resembles: tuple[Resemblance, ...]
    detail: str


def resemblances(
    known: KnownEnvelope, index: ProvenanceIndex, threshold: float
) -> list[tuple[KnownEnvelope, float]]:
    """Received envelopes the submission resembles with a score >= ``threshold``, best score
    per envelope, best first.

    The one place the review asks the detector (``gateway.core.similarity``): every field, every
    attachment's content and what was recently sent to the same recipient count. The detector
    reports only resemblances at its own review level or above (per kind of evidence), so a
    ``threshold`` below those changes nothing.
    """
    best: dict[str, float] = {}
    for found in index.resemblances(known.readable(), known.recipient):
        if found.score >= threshold:
            envelope_id = found.matched_envelope_id
            best[envelope_id] = max(found.score, best.get(envelope_id, 0.0))
    ranked = sorted(best.items(), key=lambda item: (-item[1], item[0]))
    return [
        (envelope, score)
        for envelope_id, score in ranked
        if (envelope := index.get(envelope_id)) is not None
    ]


def _uncovered(
    known: KnownEnvelope,
    found: Sequence[tuple[KnownEnvelope, float]],
    *,
    this_party: str,
    registry: ConsentRegistry,
    at: datetime,
) -> tuple[Resemblance, ...]:
    recipient = known.recipient
    return tuple(
        Resemblance(other.id, other.provider, round(score, 4))
        for other, score in found
        if other.provider not in (this_party, recipient)
        and recipient not in other.pre_approved
        and registry.covers(other.provider, other, recipient, at) is None
    )


def review_need(
    known: KnownEnvelope,
    *,
    mode: ReviewMode,
    found: Sequence[tuple[KnownEnvelope, float]],
    this_party: str,
    registry: ConsentRegistry,
    at: datetime,
) -> ReviewNeed | None:
    """Whether the submission ``known`` (which the third-party rule allowed) waits for a
    person; ``found`` is :func:`resemblances` for it."""
    if mode == "off":
        return None
    uncovered = _uncovered(known, found, this_party=this_party, registry=registry, at=at)
    listed = "; ".join(
        f"envelope {r.envelope_id} of {r.provider} (score {r.score:.2f})" for r in uncovered
    )
    if mode == "always":
        detail = f"every submission to {known.recipient} waits for review"
        return ReviewNeed(
            HELD_ALWAYS, uncovered, detail + (f"; resembles {listed}" if listed else "")
        )
    if not uncovered:
        return None
    return ReviewNeed(
        HELD_RESEMBLANCE,
        uncovered,
        f"resembles, without consent for {known.recipient}: {listed}",
    )


def held_headers(need: ReviewNeed, officer: str | None) -> tuple[tuple[str, str], ...]:
    """What the archive keeps of a hold beside the submission, for ``gateway review show``."""
    resembles = [
        {"envelope_id": r.envelope_id, "provider": r.provider, "score": r.score}
        for r in need.resembles
    ]
    return ((RESEMBLES_HEADER, json.dumps(resembles)), (OFFICER_HEADER, officer or ""))


def resembles_of(headers: Sequence[tuple[str, str]]) -> tuple[Resemblance, ...]:
    """The resemblances :func:`held_headers` archived (none when unreadable)."""
    raw = dict(headers).get(RESEMBLES_HEADER)
    try:
        items = json.loads(raw) if raw else []
        return tuple(
            Resemblance(str(i["envelope_id"]), str(i["provider"]), float(i["score"])) for i in items
        )
    except (ValueError, TypeError, KeyError):
        return ()


def officer_of(headers: Sequence[tuple[str, str]]) -> str | None:
    return dict(headers).get(OFFICER_HEADER) or None


def review_key(seq: int) -> str:
    """The claim of the one decision (release or refusal) a held submission gets."""
    return f"review:{seq}"


def check_reviewer(
    person: str,
    *,
    submission_officer: str | None,
    roster: Roster,
    party: str,
    roles: Collection[str],
    at: datetime,
) -> tuple[str, str] | None:
    """(reason, detail) when ``person`` may not release or refuse this submission."""
    if person == submission_officer:
        return (
            SAME_OFFICER,
            f"{person} is the officer named on the submission; another officer must decide",
        )
    accreditation = next((a for a in roster.officers(party) if a.officer_id == person), None)
    if accreditation is None or not roster.is_accredited(party, person, at):
        return NOT_A_REVIEWER, f"{person} is not accredited on {party}'s liaison roster now"
    if accreditation.role not in roles:
        return (
            NOT_A_REVIEWER,
            f"{person}'s role {accreditation.role!r} is not one of the reviewer roles "
            f"({', '.join(sorted(roles))})",
        )
    return None
