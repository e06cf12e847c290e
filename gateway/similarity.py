"""Near-duplicate text detection for the undeclared-derivation clause of the third-party rule.

A submission that reproduces received text without declaring it in ``derived_from`` still
carries the provider's information. This module answers "which indexed texts does this text
nearly reproduce?" for English and Russian prose.

How a text is compared
----------------------
1. **Normalise**: Unicode NFKC, ``casefold()`` (Cyrillic included), and Cyrillic yo (U+0451)
   folded to ie (U+0435), as Russian writes either for the same letter. Words are maximal runs
   of Unicode letters and digits, so punctuation, case, line breaks and runs of whitespace make
   no difference.
2. **Shingle**: the set of overlapping word 2-grams (``SHINGLE_WORDS``). One edited word
   disturbs at most two shingles, so light edits of the short paragraphs liaison officers write
   (25 to 60 words) keep a copy far above the threshold; 3-grams were measured too and halve
   that margin (a 25-word text with three words changed falls to Jaccard 0.44) for no gain on
   unrelated pairs (0.20 against 0.23).
3. **Sketch**: a ``datasketch.MinHash`` (``NUM_PERM`` = 128 permutations, fixed ``SEED``) in a
   ``MinHashLSH`` built for a *lower* threshold (``LSH_THRESHOLD`` = 0.25) than the decision
   threshold, so banding rarely hides a true match.
4. **Confirm**: every LSH candidate is re-scored with the exact Jaccard similarity of the two
   shingle sets; only ``JACCARD_THRESHOLD`` = 0.4 or more counts. The reported score is this
   exact value, so MinHash noise can neither add nor drop a match near the threshold. 0.4 sits
   between the highest unrelated pair (0.23) and the lowest edited copy (0.60) measured below,
   nearer the unrelated side because a miss leaks information and a false positive only
   quarantines a message an operator can look at.

Short texts are never matched
-----------------------------
Texts of fewer than ``MIN_WORDS`` = 12 words are neither indexed nor queried. They have at most
eleven shingles, so one shared phrase already looks like a near-duplicate; and the short texts of
this domain (subjects, titles, "Meeting confirmed.") are exactly the ones both sides legitimately
repeat: a reply keeps its subject, every working group has a "Terms of reference". What they
disclose is negligible next to the body they head, and the body is compared.

Measured accuracy
-----------------
``tests/gateway/test_similarity.py`` holds 36 short paragraphs on counter-terrorism cooperation
(20 English, 16 Russian; several deliberately share boilerplate sentences) and five lightly
edited copies of each (sentences reordered, three words changed, whitespace and case changed,
an "FYI:" prefix or its Russian equivalent, and a combination of a prefix, a changed word and a
reordered sentence). Measured at the threshold above (the test prints the line ``similarity: ...``):

- false positives: 0 of 630 unrelated same-topic pairs and 0 of 6 300 edited-copy/other-text
  pairs (0.0 %); highest unrelated Jaccard 0.23, from two texts sharing a boilerplate opening
  and closing sentence;
- misses: 0 of 180 edited copies (0.0 %); lowest Jaccard of a copy 0.60, a 25-word Russian
  text with three words changed.

Known limits
------------
- A translation is not a near-duplicate: copying the English original of a received bilingual
  text is caught, translating it anew is not (both languages of every received text are
  indexed, so copying either original is caught).
- Jaccard compares whole texts: a received paragraph pasted into a much longer new text is
  missed once the new words outnumber the copied ones. Attachments are compared by hash
  elsewhere.
- Deliberate obfuscation (homoglyphs, systematic synonym replacement) is out of scope: this is
  a guard against careless forwarding, not against a determined insider.
"""

from __future__ import annotations

import re
import unicodedata
import zlib

import numpy as np
import numpy.typing as npt
from datasketch import MinHash, MinHashLSH

SHINGLE_WORDS = 2
MIN_WORDS = 12
NUM_PERM = 128
SEED = 1
JACCARD_THRESHOLD = 0.4
LSH_THRESHOLD = 0.25

_WORD = re.compile(r"[^\W_]+")

ShingleSet = npt.NDArray[np.uint64]


def words(text: str) -> list[str]:
    """The normalised words of ``text`` (see the module docstring)."""
    folded = unicodedata.normalize("NFKC", text).casefold().replace("\u0451", "\u0435")
    return _WORD.findall(folded)


def shingles(text: str) -> ShingleSet | None:
    """Sorted unique 32-bit hashes (CRC-32) of the word 2-grams of ``text``; None when too short.

    Hashes rather than strings keep an index of a large archive small; 32 bits are what the
    MinHash permutations use anyway, and a collision among a text's few dozen shingles is
    negligible.
    """
    tokens = words(text)
    if len(tokens) < MIN_WORDS:
        return None
    grams = {
        " ".join(tokens[i : i + SHINGLE_WORDS]) for i in range(len(tokens) - SHINGLE_WORDS + 1)
    }
    hashed = np.fromiter((zlib.crc32(g.encode()) for g in grams), dtype=np.uint64, count=len(grams))
    return np.unique(hashed)


def jaccard(a: ShingleSet, b: ShingleSet) -> float:
    """Exact Jaccard similarity of two shingle sets as returned by :func:`shingles`."""
    common = np.intersect1d(a, b, assume_unique=True).size
    return common / (a.size + b.size - common)


# Drawing the permutations is most of the cost of a new MinHash: draw them once.
_PERMUTATIONS = MinHash(num_perm=NUM_PERM, seed=SEED)


def _identity(value: int) -> int:
    return value


def _sketch(shingle_set: ShingleSet) -> MinHash:
    # The shingles are already 32-bit hashes, so they feed the permutations directly.
    sketch = MinHash(
        num_perm=NUM_PERM,
        seed=SEED,
        hashfunc=_identity,
        permutations=_PERMUTATIONS.permutations,
        scheme=_PERMUTATIONS.scheme,
    )
    sketch.update_batch(shingle_set.tolist())
    return sketch


class TextIndex:
    """Texts under caller-chosen keys, searchable for near-duplicates of a query text."""

    def __init__(self) -> None:
        self._lsh = MinHashLSH(threshold=LSH_THRESHOLD, num_perm=NUM_PERM)
        self._shingles: dict[str, ShingleSet] = {}

    def add(self, key: str, text: str) -> bool:
        """Index ``text`` under ``key``; False (and nothing indexed) when it is too short.

        Raises ValueError when ``key`` is already indexed: keys name immutable texts.
        """
        if key in self._shingles:
            raise ValueError(f"text key already indexed: {key!r}")
        shingle_set = shingles(text)
        if shingle_set is None:
            return False
        self._lsh.insert(key, _sketch(shingle_set))
        self._shingles[key] = shingle_set
        return True

    def query(self, text: str, min_score: float = JACCARD_THRESHOLD) -> list[tuple[str, float]]:
        """Keys whose text ``text`` nearly reproduces, with the exact Jaccard, best first.

        ``min_score`` below the decision threshold finds weaker resemblances (the release
        review's); below ``LSH_THRESHOLD`` the LSH returns only part of them.
        """
        if not self._shingles:
            return []
        shingle_set = shingles(text)
        if shingle_set is None:
            return []
        scored = []
        for key in self._lsh.query(_sketch(shingle_set)):
            score = jaccard(shingle_set, self._shingles[key])
            if score >= min_score:
                scored.append((key, score))
        scored.sort(key=lambda item: (-item[1], item[0]))
        return scored

    def __len__(self) -> int:
        return len(self._shingles)

    def __contains__(self, key: object) -> bool:
        return key in self._shingles
