"""A text's features are exactly the reference's: the pairs of nearby tokens, one distance at a
time and deduplicated by ``np.unique`` (the implementation before the one-pass version)."""

from __future__ import annotations

import zlib

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.core.fingerprints import CARRIED_SPAN, PROVIDED_SPAN, Features, pairs, token_hashes


def reference_pairs(hashes: Features, span: int) -> Features:
    parts = []
    for distance in range(1, min(span, len(hashes) - 1) + 1):
        left, right = hashes[:-distance], hashes[distance:]
        parts.append((np.minimum(left, right) << np.uint64(32)) | np.maximum(left, right))
    return np.unique(np.concatenate(parts)) if parts else np.empty(0, dtype=np.uint64)


# Few distinct tokens make repeated pairs, which the deduplication must drop.
hashes = st.lists(st.integers(0, 5) | st.integers(0, 2**32 - 1), max_size=60).map(
    lambda values: np.array(values, dtype=np.uint64)
)


@settings(max_examples=1000)
@given(hashes, st.integers(-1, 7))
def test_pairs_are_the_references(tokens: Features, span: int) -> None:
    found, expected = pairs(tokens, span), reference_pairs(tokens, span)
    assert found.dtype == expected.dtype == np.uint64
    assert found.tolist() == expected.tolist()


@given(st.lists(st.text(), max_size=20))
def test_token_hashes_are_the_crc32_of_each_word(words: list[str]) -> None:
    assert token_hashes(words).tolist() == [zlib.crc32(word.encode()) for word in words]
    assert token_hashes(words).dtype == np.uint64


def test_the_spans_in_use_give_sorted_unique_features() -> None:
    tokens = np.array([3, 1, 3, 1, 2, 2**32 - 1], dtype=np.uint64)
    for span in (PROVIDED_SPAN, CARRIED_SPAN):
        features = pairs(tokens, span).tolist()
        assert features == sorted(set(features))
        assert features == reference_pairs(tokens, span).tolist()
