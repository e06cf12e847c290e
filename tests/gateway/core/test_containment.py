"""The containment index answers as counting over every feature set it holds would."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.core.similarity import ContainmentIndex

feature_sets = st.lists(st.integers(0, 30), max_size=12).map(
    lambda values: np.unique(np.array(values, dtype=np.uint64))
)


@settings(max_examples=300)
@given(st.lists(feature_sets, max_size=12), st.integers(0, 12), st.lists(feature_sets, max_size=4))
def test_overlap_counts_the_shared_features_of_each_held_set(
    added: list[np.ndarray], evicted: int, queries: list[np.ndarray]
) -> None:
    index = ContainmentIndex()
    held = {index.add(features): features for features in added}
    for key in sorted(held)[:evicted]:
        assert index.remove(key).tolist() == held.pop(key).tolist()
    for query in queries:
        expected = {
            key: shared
            for key, features in held.items()
            if (shared := len(set(features.tolist()) & set(query.tolist())))
        }
        assert index.overlap(query) == expected
    # Looking features up leaves no trace: only the held sets' features have postings.
    assert len(index._postings) == len({f for features in held.values() for f in features.tolist()})
