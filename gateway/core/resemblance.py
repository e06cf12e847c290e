"""What a resemblance between a submission and provided content is, and when it blocks.

:class:`gateway.core.similarity.ResemblanceIndex` finds them; this module says what each one means.

Two thresholds: block and review
--------------------------------
Every resemblance has a ``level``: ``"block"`` (the rule treats the envelope as reproduced: it is
quarantined unless consent covers it) or ``"review"`` (a weaker resemblance, below the blocking
threshold but above the review threshold, that a release review may hold for a person to look at).
Per kind of evidence:

================  =====================================  ========  ========
kind              score                                  block     review
================  =====================================  ========  ========
``sha256``        1.0 for the same attachment hash       1.0       --
``text``          containment, P of 12+ tokens           0.50      0.20
``short_text``    containment, P of 4 to 11 tokens       1.0       0.60
``file``          containment of content-defined chunks  0.50      0.20
``fuzzy``         1 - TLSH distance / 100                0.70      0.50
================  =====================================  ========  ========

Provided texts of fewer than ``MIN_TOKENS`` = 4 content tokens are not compared at all: "Terms of
reference", "Meeting confirmed", a date or a place name say too little to be someone's
information and are what both sides legitimately repeat. From 4 tokens on, a short provided text
(a subject, a title, a sentence) must be reproduced whole (every pair of its tokens present,
which insertions, confusables and invisible characters do not change) to block; half of it is
worth a review. ``tests/gateway/core/test_similarity.py`` measures these thresholds on a corpus of
unrelated paragraphs in both languages and on evasive copies (see the README for the figures).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["sha256", "text", "short_text", "file", "fuzzy"]
Level = Literal["block", "review"]

MIN_TOKENS = 4
LONG_TOKENS = 12
# (block, review) per kind; see the module docstring.
THRESHOLDS: dict[Kind, tuple[float, float]] = {
    "sha256": (1.0, 1.0),
    "text": (0.50, 0.20),
    "short_text": (1.0, 0.60),
    "file": (0.50, 0.20),
    "fuzzy": (0.70, 0.50),
}
# What earlier messages add is judged more strictly: SCO-RATS's own earlier words on the same
# topic add up too, so fresh text plus them may reach 0.51 of a provided paragraph (measured).
ACCUMULATED_BLOCK = 0.65
RANK: dict[Level | None, int] = {None: 0, "review": 1, "block": 2}


@dataclass(frozen=True)
class Resemblance:
    """A provided text or file found in a submission, and how much of it."""

    matched_envelope_id: str
    provided_field: str
    field: str
    kind: Kind
    score: float
    level: Level
    accumulated: bool = False

    def describe(self) -> str:
        if self.kind == "sha256":
            return f"attachment {self.provided_field}"
        where = f"{self.field}, with earlier messages" if self.accumulated else self.field
        return (
            f"{self.kind} {self.score:.2f} of {self.matched_envelope_id} {self.provided_field} "
            f"in {where}"
        )


def level_of(kind: Kind, score: float, accumulated: bool = False) -> Level | None:
    """The level of a score; an accumulated score needs ``ACCUMULATED_BLOCK`` to block."""
    block, review = THRESHOLDS[kind]
    if accumulated:
        block = max(block, ACCUMULATED_BLOCK)
    if score >= block:
        return "block"
    return "review" if score >= review else None


def best_first(found: list[Resemblance]) -> list[Resemblance]:
    """Blocking before review, then by score (then by envelope, for a stable order)."""
    return sorted(found, key=lambda r: (r.level != "block", -r.score, r.matched_envelope_id))
