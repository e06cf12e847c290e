"""A submission's fingerprints as the resemblance index queries them: per field, all its texts
joined, and its tokens in order; and what repeats so often in it that it is taken for padding.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from gateway.core.envelope_content import Content
from gateway.core.fingerprints import (
    CARRIED_SPAN,
    EMPTY,
    Features,
    Tokens,
    chunks,
    pairs,
    token_hashes,
)
from gateway.core.normalise import tokens

# A token repeated this often (and at least FILLER_SHARE of the text) that is not in the
# provided text is taken for padding and left out.
FILLER_MIN_COUNT = 4
FILLER_SHARE = 0.05
# Work per submission is bounded: what lies beyond is not compared (the limit is far above
# what a liaison message carries).
MAX_QUERY_TOKENS = 200_000


@dataclass(frozen=True)
class Query:
    """A submission's fingerprints: per field, all joined, and its tokens in order."""

    fields: tuple[tuple[str, Features], ...]
    joined: Features
    tokens: Tokens = dataclasses.field(default_factory=lambda: EMPTY)
    # With earlier messages: the features that involve the new message (its own and those
    # spanning the seam between the earlier messages and it).
    seam: Features = dataclasses.field(default_factory=lambda: EMPTY)


def union(parts: Sequence[Features]) -> Features:
    return np.unique(np.concatenate(parts)) if parts else EMPTY


def text_query(content: Content) -> Query:
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
    stripped = unpadded(sequence, padding_of(sequence))
    features = union([pairs(sequence, CARRIED_SPAN), pairs(stripped, CARRIED_SPAN)])
    return Query(tuple(fields), features, sequence)


def padding_of(sequence: Tokens) -> Tokens:
    """Tokens repeated so often in ``sequence`` that they are taken for padding."""
    values, counts = np.unique(sequence, return_counts=True)
    return values[counts >= max(FILLER_MIN_COUNT, FILLER_SHARE * len(sequence))]


def unpadded(sequence: Tokens, padding: Tokens) -> Tokens:
    return sequence[~np.isin(sequence, padding)]


def file_query(content: Content) -> Query:
    fields = tuple((field, chunks(data)) for field, data in content.files)
    return Query(fields, union([features for _, features in fields]))
