"""Which provided content does a submission reproduce, and how much of it: :class:`Resemblance`.

The undeclared-derivation clause of the third-party rule asks, for a submission on its way to a
third party, "which received envelopes does it carry information of without declaring them?".
:class:`ResemblanceIndex` holds the fingerprints (``gateway.fingerprints``) of every received
text and file and answers with a :class:`Resemblance` per provided text or file it finds.

The measure: containment
------------------------
The score of a provided text P is the share of P's features found in the submission:
``|features(P) ∩ features(submission)| / |features(P)|``. Unlike a Jaccard similarity, padding
the copy with any amount of new text does not lower it. It is computed for each field alone and
for all of the submission's texts joined (so a text split across fields adds up), and, when the
submission itself carries part of P, once more with the features of the last
``MEMORY_MESSAGES`` envelopes this gateway sent to the same recipient added (so a text spread over
several messages adds up too; the result says ``accumulated``).

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
worth a review. ``tests/gateway/test_similarity.py`` measures these thresholds on a corpus of
unrelated paragraphs in both languages and on evasive copies (see the README for the figures).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from gateway.envelope_content import Content
from gateway.fingerprints import (
    CARRIED_SPAN,
    PROVIDED_SPAN,
    Features,
    aligned_share,
    chunks,
    fuzzy_digest,
    fuzzy_distance,
    pairs,
    token_hashes,
)
from gateway.normalise import tokens

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
MIN_SHARED_FEATURES = 2
# Alignment (see gateway.fingerprints.aligned_share) is worked out for candidates that share
# at least this share of pairs: any copy that keeps two thirds of the words does.
ALIGN_CANDIDATE = 0.1
ALIGN_SKIP = 3
ALIGN_GAP = 6
MIN_RUN = 3
MEMORY_MESSAGES = 32
# Work per submission is bounded: what lies beyond is not compared (the limits are far above
# what a liaison message carries, and attachments are bounded by the contracts).
MAX_QUERY_TOKENS = 200_000
MAX_FUZZY_DIGESTS = 20_000
_EMPTY: Features = np.empty(0, dtype=np.uint64)


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


def level_of(kind: Kind, score: float) -> Level | None:
    block, review = THRESHOLDS[kind]
    if score >= block:
        return "block"
    return "review" if score >= review else None


class ContainmentIndex:
    """Feature sets under integer keys; for a query set, how many features of each it holds."""

    def __init__(self) -> None:
        self._postings: dict[int, list[int]] = {}
        self.sizes: list[int] = []

    def add(self, features: Features) -> int:
        key = len(self.sizes)
        self.sizes.append(len(features))
        for feature in features.tolist():
            self._postings.setdefault(feature, []).append(key)
        return key

    def overlap(self, features: Features) -> dict[int, int]:
        counts: dict[int, int] = {}
        for feature in features.tolist():
            for key in self._postings.get(feature, ()):
                counts[key] = counts.get(key, 0) + 1
        return counts


@dataclass(frozen=True)
class _Provided:
    envelope_id: str
    field: str
    kind: Kind


class _Memory:
    """The features of the last envelopes sent to one recipient."""

    def __init__(self) -> None:
        self.sent: deque[tuple[Features, Features]] = deque(maxlen=MEMORY_MESSAGES)
        self._union: tuple[Features, Features] | None = None

    def add(self, texts: Features, files: Features) -> None:
        self.sent.append((texts, files))
        self._union = None

    def union(self) -> tuple[Features, Features]:
        if self._union is None:
            texts = [t for t, _ in self.sent]
            files = [f for _, f in self.sent]
            self._union = (
                np.unique(np.concatenate(texts)) if texts else _EMPTY,
                np.unique(np.concatenate(files)) if files else _EMPTY,
            )
        return self._union


@dataclass(frozen=True)
class _Query:
    """A submission's fingerprints: per field, and all joined."""

    fields: tuple[tuple[str, Features], ...]
    joined: Features
    memory: Features
    sequence: tuple[int, ...] = ()


def _union(parts: Sequence[Features]) -> Features:
    return np.unique(np.concatenate(parts)) if parts else _EMPTY


def _text_query(content: Content, memory: Features) -> _Query:
    fields: list[tuple[str, Features]] = []
    joined: list[str] = []
    for field, text in content.texts:
        words = tokens(text)[: MAX_QUERY_TOKENS - len(joined)]
        fields.append((field, pairs(words, CARRIED_SPAN)))
        joined.extend(words)
    features = pairs(joined, CARRIED_SPAN)
    return _Query(
        tuple(fields),
        features,
        np.setdiff1d(memory, features, assume_unique=True),
        tuple(token_hashes(joined)),
    )


def _file_query(files: Sequence[tuple[str, Features]], memory: Features) -> _Query:
    joined = _union([features for _, features in files])
    return _Query(tuple(files), joined, np.setdiff1d(memory, joined, assume_unique=True))


class ResemblanceIndex:
    """Fingerprints of provided content, and of what was recently sent to each recipient."""

    def __init__(self) -> None:
        self._texts = ContainmentIndex()
        self._files = ContainmentIndex()
        self._provided: dict[tuple[str, int], _Provided] = {}
        self._sequences: dict[int, list[int]] = {}
        self._fuzzy: list[tuple[str, _Provided]] = []
        self._sha256: dict[str, list[str]] = {}
        self._memory: dict[str, _Memory] = {}

    def add_provided(self, envelope_id: str, content: Content) -> None:
        """Index the content of a received envelope."""
        for digest in content.sha256:
            self._sha256.setdefault(digest, []).append(envelope_id)
        for field, text in content.texts:
            words = tokens(text)
            if len(words) >= MIN_TOKENS:
                kind: Kind = "text" if len(words) >= LONG_TOKENS else "short_text"
                key = self._texts.add(pairs(words, PROVIDED_SPAN))
                self._provided["t", key] = _Provided(envelope_id, field, kind)
                self._sequences[key] = token_hashes(words)
        for field, data in content.files:
            key = self._files.add(chunks(data))
            self._provided["f", key] = _Provided(envelope_id, field, "file")
            fuzzy = fuzzy_digest(data)
            if fuzzy is not None and len(self._fuzzy) < MAX_FUZZY_DIGESTS:
                self._fuzzy.append((fuzzy, _Provided(envelope_id, field, "fuzzy")))

    def remember_sent(self, recipient: str, content: Content) -> None:
        """Remember what an envelope sent to ``recipient`` carried (the last few per recipient)."""
        texts = _text_query(content, _EMPTY).joined
        files = _union([chunks(data) for _, data in content.files])
        self._memory.setdefault(recipient, _Memory()).add(texts, files)

    def resemblances(self, content: Content, recipient: str | None = None) -> list[Resemblance]:
        """Every provided text or file ``content`` resembles at review level or above, best
        first: blocking before review, then by score."""
        memory_texts, memory_files = (
            self._memory[recipient].union() if recipient in self._memory else (_EMPTY, _EMPTY)
        )
        found = [
            Resemblance(envelope_id, f"sha256 {digest}", "attachments", "sha256", 1.0, "block")
            for digest in content.sha256
            for envelope_id in self._sha256.get(digest, ())
        ]
        found += self._contained("t", self._texts, _text_query(content, memory_texts))
        files = [(field, chunks(data)) for field, data in content.files]
        found += self._contained("f", self._files, _file_query(files, memory_files))
        found += self._fuzzy_matches(content)
        found.sort(key=lambda r: (r.level != "block", -r.score, r.matched_envelope_id))
        return found

    def _contained(self, space: str, index: ContainmentIndex, query: _Query) -> list[Resemblance]:
        joined = index.overlap(query.joined)
        if not joined:
            return []
        per_field = [(field, index.overlap(features)) for field, features in query.fields]
        remembered = index.overlap(query.memory) if len(query.memory) else {}
        found = []
        for key, shared in joined.items():
            if shared < MIN_SHARED_FEATURES and shared < index.sizes[key]:
                continue
            provided = self._provided[space, key]
            score = shared / index.sizes[key]
            if space == "t" and score >= ALIGN_CANDIDATE:
                aligned = aligned_share(
                    self._sequences[key],
                    query.sequence,
                    skip=ALIGN_SKIP,
                    gap=ALIGN_GAP,
                    min_run=MIN_RUN,
                )
                score = max(score, aligned)
            memory_score = (shared + remembered.get(key, 0)) / index.sizes[key]
            resemblance = _assess(provided, score, memory_score, per_field, shared, key)
            if resemblance is not None:
                found.append(resemblance)
        return found

    def _fuzzy_matches(self, content: Content) -> list[Resemblance]:
        found = []
        for field, data in content.files:
            digest = fuzzy_digest(data)
            if digest is None:
                continue
            for provided_digest, provided in self._fuzzy:
                score = max(0.0, 1 - fuzzy_distance(digest, provided_digest) / 100)
                level = level_of("fuzzy", score)
                if level is not None:
                    found.append(
                        Resemblance(
                            provided.envelope_id, provided.field, field, "fuzzy", score, level
                        )
                    )
        return found

    def __len__(self) -> int:
        return len(self._provided) + len(self._sha256)


def _fields_holding(per_field: Iterable[tuple[str, dict[int, int]]], key: int) -> list[str]:
    ranked = sorted(
        ((counts[key], field) for field, counts in per_field if counts.get(key)),
        key=lambda item: -item[0],
    )
    return [field for _, field in ranked]


def _assess(
    provided: _Provided,
    score: float,
    with_memory: float,
    per_field: list[tuple[str, dict[int, int]]],
    shared: int,
    key: int,
) -> Resemblance | None:
    """The resemblance of one provided text or file, naming the field(s) that hold it."""
    kind = provided.kind
    level = level_of(kind, score)
    accumulated = False
    if level != "block" and level_of(kind, with_memory) not in (None, level):
        score, level, accumulated = with_memory, level_of(kind, with_memory), True
    if level is None:
        return None
    holders = _fields_holding(per_field, key)
    best = max((counts.get(key, 0) for _, counts in per_field), default=0)
    field = holders[0] if best == shared or len(holders) == 1 else " + ".join(holders[:4])
    return Resemblance(provided.envelope_id, provided.field, field, kind, score, level, accumulated)
