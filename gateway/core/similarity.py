"""Which provided content does a submission reproduce, and how much of it: :class:`Resemblance`
(``gateway.core.resemblance``).

The undeclared-derivation clause of the third-party rule asks, for a submission on its way to a
third party, "which received envelopes does it carry information of without declaring them?".
:class:`ResemblanceIndex` holds the fingerprints (``gateway.core.fingerprints``) of every received
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

Thresholds and levels are in ``gateway.core.resemblance``; the submission's side of the
comparison in ``gateway.core.submission_prints``, the memory of what was sent in
``gateway.core.sent_memory``.
"""

from __future__ import annotations

from collections import OrderedDict, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from gateway.core.envelope_content import Content
from gateway.core.evicted import Evicted, digest_features
from gateway.core.fingerprints import (
    EMPTY,
    PROVIDED_SPAN,
    Features,
    aligned_share,
    chunks,
    fuzzy_digest,
    fuzzy_distance,
    hits_of,
    pairs,
    token_hashes,
    window_share,
)
from gateway.core.normalise import tokens
from gateway.core.resemblance import (
    LONG_TOKENS,
    MIN_TOKENS,
    RANK,
    Kind,
    Resemblance,
    best_first,
    level_of,
)
from gateway.core.sent_memory import SentMemory
from gateway.core.submission_prints import (
    Query,
    file_query,
    padding_of,
    text_query,
    union,
    unpadded,
)

MIN_SHARED_FEATURES = 2
# Alignment (see gateway.core.fingerprints.aligned_share) is worked out for candidates with at least
# this share of their tokens present: any copy that keeps two thirds of the words has.
ALIGN_TOKEN_GATE = 0.5
# A short text's tokens all within this many times its length of each other, in any order,
# reproduce it (pieces scattered over a meeting invitation's fields, say); within the wider
# window they are worth a review only (SHORT_WIDE_CAP is under the blocking score, 1.0).
SHORT_WINDOW = 3
SHORT_WIDE_WINDOW = 6
SHORT_WIDE_CAP = 0.99
ALIGN_SKIP = 3
ALIGN_GAP = 6
MIN_RUN = 3
# Work per submission is bounded: what lies beyond is not compared (the limits are far above
# what a liaison message carries, and attachments are bounded by the contracts).
MAX_FUZZY_DIGESTS = 20_000
MAX_THOROUGH = 16


class ContainmentIndex:
    """Feature sets under integer keys; for a query set, how many features of each it holds."""

    def __init__(self) -> None:
        # A defaultdict: adding a text's hundred-odd features is one C-level lookup each.
        self._postings: defaultdict[int, list[int]] = defaultdict(list)
        self.features: dict[int, Features] = {}
        self._next = 0

    def add(self, features: Features) -> int:
        key = self._next
        self._next += 1
        self.features[key] = features
        postings = self._postings
        for feature in features.tolist():
            postings[feature].append(key)
        return key

    def remove(self, key: int) -> Features:
        """Forget ``key``; its features. Keys go oldest first, so each is found at the front."""
        features = self.features.pop(key)
        for feature in features.tolist():
            keys = self._postings[feature]
            keys.remove(key)
            if not keys:
                del self._postings[feature]
        return features

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
class _Held:
    """What one provided envelope put in the index, to take out again when it is evicted."""

    provider: str
    keys: tuple[tuple[str, int], ...]
    sha256: tuple[str, ...]
    fuzzy: bool


class ResemblanceIndex:
    """Fingerprints of provided content, and of what was recently sent to each recipient.

    With a ``capacity``, only that many provided envelopes are held, the oldest evicted first;
    ``evicted`` tells which providers' evicted content a submission may resemble (to be read
    back from the archive, see ``gateway.core.provenance``). ``memory`` shares the sent-memory of
    another index: the archive's evicted content is compared through a passing index like this.
    """

    def __init__(
        self, capacity: int | None = None, memory: dict[str, SentMemory] | None = None
    ) -> None:
        self._texts = ContainmentIndex()
        self._files = ContainmentIndex()
        self._provided: dict[tuple[str, int], _Provided] = {}
        self._fuzzy: list[tuple[str, _Provided]] = []
        self._sha256: dict[str, list[str]] = {}
        self.memory: dict[str, SentMemory] = {} if memory is None else memory
        self._capacity = capacity
        self._held: OrderedDict[str, _Held] = OrderedDict()
        self.evicted = Evicted()

    def add_provided(self, envelope_id: str, content: Content, provider: str = "") -> None:
        """Index the content of a received envelope."""
        for digest in content.sha256:
            self._sha256.setdefault(digest, []).append(envelope_id)
        keys: list[tuple[str, int]] = []
        for field, text in content.texts:
            hashes = token_hashes(tokens(text))
            if len(hashes) >= MIN_TOKENS:
                kind: Kind = "text" if len(hashes) >= LONG_TOKENS else "short_text"
                key = self._texts.add(pairs(hashes, PROVIDED_SPAN))
                self._provided["t", key] = _Provided(
                    envelope_id, field, kind, tuple(hashes.tolist())
                )
                keys.append(("t", key))
        fuzzy = False
        for field, data in content.files:
            key = self._files.add(chunks(data))
            self._provided["f", key] = _Provided(envelope_id, field, "file")
            keys.append(("f", key))
            tlsh = fuzzy_digest(data)
            if tlsh is not None and len(self._fuzzy) < MAX_FUZZY_DIGESTS:
                self._fuzzy.append((tlsh, _Provided(envelope_id, field, "fuzzy")))
                fuzzy = True
        self._held[envelope_id] = _Held(provider, tuple(keys), content.sha256, fuzzy)
        while self._capacity is not None and len(self._held) > self._capacity:
            self._evict(*self._held.popitem(last=False))

    def _evict(self, envelope_id: str, held: _Held) -> None:
        features = [digest_features(held.sha256)]
        for space, key in held.keys:
            features.append((self._texts if space == "t" else self._files).remove(key))
            del self._provided[space, key]
        for digest in held.sha256:
            ids = self._sha256[digest]
            ids.remove(envelope_id)
            if not ids:
                del self._sha256[digest]
        if held.fuzzy:
            self._fuzzy = [item for item in self._fuzzy if item[1].envelope_id != envelope_id]
        self.evicted.add(held.provider, union(features), files=held.fuzzy)

    def holds(self, envelope_id: str) -> bool:
        """Is this provided envelope's content in the index (not evicted)?"""
        return envelope_id in self._held

    def held_count(self) -> int:
        return len(self._held)

    def suspects(self, content: Content, recipient: str | None = None) -> list[str]:
        """Providers whose evicted content ``content`` may resemble (``gateway.core.evicted``)."""
        if not self.evicted.count:
            return []
        texts, files = text_query(content), file_query(content)
        parts = [texts.joined, files.joined, digest_features(content.sha256)]
        memory = self.memory.get(recipient) if recipient is not None else None
        if memory is not None:
            parts += [memory.with_text(texts).joined, memory.with_files(files).joined]
        return self.evicted.suspects(union(parts), files=bool(content.files))

    def remember_sent(self, recipient: str, content: Content) -> None:
        """Remember what an envelope sent to ``recipient`` carried (the last few per recipient)."""
        texts = Content(content.texts)
        files = file_query(content).joined if content.files else EMPTY
        self.memory.setdefault(recipient, SentMemory()).add(texts, files)

    def resemblances(self, content: Content, recipient: str | None = None) -> list[Resemblance]:
        """Every provided text or file ``content`` resembles at review level or above, best
        first: blocking before review, then by score."""
        if not self._provided and not self._sha256:
            return []
        memory = self.memory.get(recipient) if recipient is not None else None
        found = [
            Resemblance(envelope_id, f"sha256 {digest}", "attachments", "sha256", 1.0, "block")
            for digest in content.sha256
            for envelope_id in self._sha256.get(digest, ())
        ]
        texts = text_query(content)
        found += self._contained("t", self._texts, texts, memory.with_text if memory else None)
        files = file_query(content)
        found += self._contained("f", self._files, files, memory.with_files if memory else None)
        found += self._fuzzy_matches(content)
        return best_first(found)

    def _score(self, space: str, key: int, query: Query) -> float:
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
        padding = np.setdiff1d(padding_of(query.tokens), own)
        hits = hits_of(own, unpadded(query.tokens, padding) if padding.size else query.tokens)
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
        query: Query,
        with_memory: Callable[[Query], Query] | None,
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
                if RANK[earlier_level] > RANK[level]:
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


def _field_name(per_field: Iterable[tuple[str, dict[int, int]]], key: int, shared: int) -> str:
    """The field holding the provided text, or the fields holding its pieces, most first."""
    ranked = sorted(
        ((counts[key], field) for field, counts in per_field if counts.get(key)),
        key=lambda item: -item[0],
    )
    if not ranked or ranked[0][0] == shared or len(ranked) == 1:
        return ranked[0][1] if ranked else "all fields joined"
    return " + ".join(field for _, field in ranked[:4])
