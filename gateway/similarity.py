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

import dataclasses
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from gateway.envelope_content import Content
from gateway.fingerprints import (
    CARRIED_SPAN,
    EMPTY,
    PROVIDED_SPAN,
    Features,
    Tokens,
    aligned_share,
    chunks,
    fuzzy_digest,
    fuzzy_distance,
    hits_of,
    pairs,
    token_hashes,
    window_share,
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
# Alignment (see gateway.fingerprints.aligned_share) is worked out for candidates with at least
# this share of their tokens present: any copy that keeps two thirds of the words has.
ALIGN_TOKEN_GATE = 0.5
# Before aligning, a token repeated this often (and at least FILLER_SHARE of the text) that is
# not in the provided text is taken for padding and left out.
FILLER_MIN_COUNT = 4
FILLER_SHARE = 0.05
# A short text's tokens all within this many times its length of each other, in any order,
# reproduce it (pieces scattered over a meeting invitation's fields, say); within the wider
# window they are worth a review only (SHORT_WIDE_CAP is under the blocking score, 1.0).
SHORT_WINDOW = 3
SHORT_WIDE_WINDOW = 6
SHORT_WIDE_CAP = 0.99
ALIGN_SKIP = 3
ALIGN_GAP = 6
MIN_RUN = 3
MEMORY_MESSAGES = 32
# What earlier messages add is judged more strictly: SCO-RATS's own earlier words on the same
# topic add up too, so fresh text plus them may reach 0.51 of a provided paragraph (measured).
ACCUMULATED_BLOCK = 0.65
MEMORY_CHARS = 200_000
SEAM_TOKENS = 16
# Work per submission is bounded: what lies beyond is not compared (the limits are far above
# what a liaison message carries, and attachments are bounded by the contracts).
MAX_QUERY_TOKENS = 200_000
MAX_FUZZY_DIGESTS = 20_000
MAX_THOROUGH = 16


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


class ContainmentIndex:
    """Feature sets under integer keys; for a query set, how many features of each it holds."""

    def __init__(self) -> None:
        self._postings: dict[int, list[int]] = {}
        self.features: list[Features] = []

    def add(self, features: Features) -> int:
        key = len(self.features)
        self.features.append(features)
        for feature in features.tolist():
            self._postings.setdefault(feature, []).append(key)
        return key

    def overlap(self, features: Features) -> dict[int, int]:
        counts: dict[int, int] = {}
        for feature in features.tolist():
            for key in self._postings.get(feature, ()):
                counts[key] = counts.get(key, 0) + 1
        return counts

    def containment(self, key: int, features: Features) -> float:
        own = self.features[key]
        return np.intersect1d(own, features, assume_unique=True).size / own.size


@dataclass(frozen=True)
class _Provided:
    envelope_id: str
    field: str
    kind: Kind
    tokens: tuple[int, ...] = ()


@dataclass(frozen=True)
class _Query:
    """A submission's fingerprints: per field, all joined, and its tokens in order."""

    fields: tuple[tuple[str, Features], ...]
    joined: Features
    tokens: Tokens = dataclasses.field(default_factory=lambda: EMPTY)
    # With earlier messages: the features that involve the new message (its own and those
    # spanning the seam between the earlier messages and it).
    seam: Features = dataclasses.field(default_factory=lambda: EMPTY)


def _union(parts: Sequence[Features]) -> Features:
    return np.unique(np.concatenate(parts)) if parts else EMPTY


def _text_query(content: Content) -> _Query:
    fields: list[tuple[str, Features]] = []
    joined: list[Tokens] = []
    budget = MAX_QUERY_TOKENS
    for field, text in content.texts:
        hashes = token_hashes(tokens(text)[:budget])
        budget -= len(hashes)
        fields.append((field, pairs(hashes, CARRIED_SPAN)))
        joined.append(hashes)
    sequence = np.concatenate(joined) if joined else EMPTY
    # Pairs across padding too: a copy with the same filler after every word still pairs up.
    unpadded = _unpadded(sequence, _padding(sequence))
    features = _union([pairs(sequence, CARRIED_SPAN), pairs(unpadded, CARRIED_SPAN)])
    return _Query(tuple(fields), features, sequence)


def _padding(sequence: Tokens) -> Tokens:
    """Tokens repeated so often in ``sequence`` that they are taken for padding."""
    values, counts = np.unique(sequence, return_counts=True)
    return values[counts >= max(FILLER_MIN_COUNT, FILLER_SHARE * len(sequence))]


def _unpadded(sequence: Tokens, padding: Tokens) -> Tokens:
    return sequence[~np.isin(sequence, padding)]


def _file_query(content: Content) -> _Query:
    fields = tuple((field, chunks(data)) for field, data in content.files)
    return _Query(fields, _union([features for _, features in fields]))


class _Memory:
    """What the last envelopes sent to one recipient carried, in order, as one long text (so
    pieces of a text sent one after the other join up) and one set of file chunks.

    Texts are kept as they were and fingerprinted only when a query needs them: most messages
    resemble nothing provided, and then their memory costs nothing but keeping the strings.
    """

    def __init__(self) -> None:
        self._sent: deque[tuple[Content, Features]] = deque()
        self._chars = 0
        self._tokens: dict[int, Tokens] = {}
        self._fingerprints: tuple[Tokens, Features, Features] | None = None

    def add(self, texts: Content, files: Features) -> None:
        self._sent.append((texts, files))
        self._chars += _chars(texts)
        while len(self._sent) > MEMORY_MESSAGES or (
            len(self._sent) > 1 and self._chars > MEMORY_CHARS
        ):
            oldest, _ = self._sent.popleft()
            self._chars -= _chars(oldest)
            self._tokens.pop(id(oldest), None)
        self._fingerprints = None

    def _fingerprinted(self) -> tuple[Tokens, Features, Features]:
        if self._fingerprints is None:
            for texts, _ in self._sent:
                if id(texts) not in self._tokens:
                    self._tokens[id(texts)] = _text_query(texts).tokens
            tokens = np.concatenate([self._tokens[id(texts)] for texts, _ in self._sent])
            files = _union([features for _, features in self._sent])
            self._fingerprints = (tokens, pairs(tokens, CARRIED_SPAN), files)
        return self._fingerprints

    def with_text(self, query: _Query) -> _Query:
        earlier, text_features, _ = self._fingerprinted()
        sequence = np.concatenate([earlier, query.tokens])
        padding = _padding(sequence)
        # Pairs joining the end of the earlier messages to the new one, across what repeats in
        # every message (subjects, fillers); only pairs with a token of the new message: the
        # earlier ones alone were judged when they were sent.
        tail = _unpadded(earlier[len(earlier) - SEAM_TOKENS :], padding)
        seam = np.setdiff1d(
            pairs(np.concatenate([tail, _unpadded(query.tokens, padding)]), CARRIED_SPAN),
            pairs(tail, CARRIED_SPAN),
            assume_unique=True,
        )
        features = _union([text_features, seam, query.joined])
        return _Query((), features, sequence, _union([seam, query.joined]))

    def with_files(self, query: _Query) -> _Query:
        files = self._fingerprinted()[2]
        return _Query((), _union([files, query.joined]), EMPTY, query.joined)


def _chars(content: Content) -> int:
    return sum(len(text) for _, text in content.texts)


class ResemblanceIndex:
    """Fingerprints of provided content, and of what was recently sent to each recipient."""

    def __init__(self) -> None:
        self._texts = ContainmentIndex()
        self._files = ContainmentIndex()
        self._provided: dict[tuple[str, int], _Provided] = {}
        self._fuzzy: list[tuple[str, _Provided]] = []
        self._sha256: dict[str, list[str]] = {}
        self._memory: dict[str, _Memory] = {}

    def add_provided(self, envelope_id: str, content: Content) -> None:
        """Index the content of a received envelope."""
        for digest in content.sha256:
            self._sha256.setdefault(digest, []).append(envelope_id)
        for field, text in content.texts:
            hashes = token_hashes(tokens(text))
            if len(hashes) >= MIN_TOKENS:
                kind: Kind = "text" if len(hashes) >= LONG_TOKENS else "short_text"
                key = self._texts.add(pairs(hashes, PROVIDED_SPAN))
                self._provided["t", key] = _Provided(
                    envelope_id, field, kind, tuple(hashes.tolist())
                )
        for field, data in content.files:
            key = self._files.add(chunks(data))
            self._provided["f", key] = _Provided(envelope_id, field, "file")
            fuzzy = fuzzy_digest(data)
            if fuzzy is not None and len(self._fuzzy) < MAX_FUZZY_DIGESTS:
                self._fuzzy.append((fuzzy, _Provided(envelope_id, field, "fuzzy")))

    def remember_sent(self, recipient: str, content: Content) -> None:
        """Remember what an envelope sent to ``recipient`` carried (the last few per recipient)."""
        texts = Content(content.texts)
        files = _file_query(content).joined if content.files else EMPTY
        self._memory.setdefault(recipient, _Memory()).add(texts, files)

    def resemblances(self, content: Content, recipient: str | None = None) -> list[Resemblance]:
        """Every provided text or file ``content`` resembles at review level or above, best
        first: blocking before review, then by score."""
        if not self._provided and not self._sha256:
            return []
        memory = self._memory.get(recipient) if recipient is not None else None
        found = [
            Resemblance(envelope_id, f"sha256 {digest}", "attachments", "sha256", 1.0, "block")
            for digest in content.sha256
            for envelope_id in self._sha256.get(digest, ())
        ]
        texts = _text_query(content)
        found += self._contained("t", self._texts, texts, memory.with_text if memory else None)
        files = _file_query(content)
        found += self._contained("f", self._files, files, memory.with_files if memory else None)
        found += self._fuzzy_matches(content)
        found.sort(key=lambda r: (r.level != "block", -r.score, r.matched_envelope_id))
        return found

    def _score(self, space: str, key: int, query: _Query) -> float:
        """Containment of provided text or file ``key`` in ``query``; for a text whose tokens
        are mostly there, the aligned share too (robust to deletions) and, for a short text,
        the share found together in a window (robust to scattering)."""
        index = self._texts if space == "t" else self._files
        score = index.containment(key, query.joined)
        provided = self._provided[space, key]
        if not provided.tokens or score >= 1:
            return score
        own = np.asarray(provided.tokens, dtype=np.uint64)
        # Padding is what repeats in the message and is not in the provided text.
        padding = np.setdiff1d(_padding(query.tokens), own)
        hits = hits_of(own, _unpadded(query.tokens, padding) if padding.size else query.tokens)
        if len({token for _, token in hits}) < ALIGN_TOKEN_GATE * len(set(provided.tokens)):
            return score
        aligned = aligned_share(
            provided.tokens, hits, skip=ALIGN_SKIP, gap=ALIGN_GAP, min_run=MIN_RUN
        )
        score = max(score, aligned)
        if provided.kind == "short_text" and score < 1:
            size = len(provided.tokens)
            score = max(score, window_share(provided.tokens, hits, SHORT_WINDOW * size))
            wide = window_share(provided.tokens, hits, SHORT_WIDE_WINDOW * size)
            score = max(score, min(wide, SHORT_WIDE_CAP))
        return score

    def _contained(
        self,
        space: str,
        index: ContainmentIndex,
        query: _Query,
        with_memory: Callable[[_Query], _Query] | None,
    ) -> list[Resemblance]:
        candidates = index.overlap(query.joined)
        remembered = with_memory(query) if with_memory else None
        seam = index.overlap(remembered.seam) if remembered is not None else {}
        if not candidates and not seam:
            return []
        per_field = [(field, index.overlap(features)) for field, features in query.fields]
        # The most promising first; beyond MAX_THOROUGH the pairs alone decide (bounded work
        # when a message resembles many received ones).
        ranked = sorted(
            set(candidates) | set(seam),
            key=lambda key: (
                -max(candidates.get(key, 0), seam.get(key, 0)) / index.features[key].size,
                key,
            ),
        )
        found = []
        for rank, key in enumerate(ranked):
            shared = candidates.get(key, 0)
            provided = self._provided[space, key]
            few = shared < MIN_SHARED_FEATURES and shared < index.features[key].size
            if few:
                score = 0.0
            elif rank < MAX_THOROUGH:
                score = self._score(space, key, query)
            else:
                score = shared / index.features[key].size
            level = level_of(provided.kind, score)
            accumulated = False
            if level != "block" and remembered is not None and rank < MAX_THOROUGH:
                earlier = self._score(space, key, remembered)
                earlier_level = level_of(provided.kind, earlier, accumulated=True)
                if _RANK[earlier_level] > _RANK[level]:
                    score, level, accumulated = earlier, earlier_level, True
            if level is not None:
                field = _field_name(per_field, key, shared)
                found.append(
                    Resemblance(
                        provided.envelope_id,
                        provided.field,
                        field,
                        provided.kind,
                        score,
                        level,
                        accumulated,
                    )
                )
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


_RANK: dict[Level | None, int] = {None: 0, "review": 1, "block": 2}


def _field_name(per_field: Iterable[tuple[str, dict[int, int]]], key: int, shared: int) -> str:
    """The field holding the provided text, or the fields holding its pieces, most first."""
    ranked = sorted(
        ((counts[key], field) for field, counts in per_field if counts.get(key)),
        key=lambda item: -item[0],
    )
    if not ranked or ranked[0][0] == shared or len(ranked) == 1:
        return ranked[0][1] if ranked else "all fields joined"
    return " + ".join(field for _, field in ranked[:4])
