"""What the resemblance index has let go of: per provider, a fixed-size filter of the features
of the provided content it no longer holds.

The index keeps the fingerprints of the most recent provided envelopes only, so that memory does
not grow with every message received; the rest is read back from the archive when a submission
may reproduce it. This filter says when that can be: a Bloom filter answers "maybe" for every
feature it was given (never a false "no"), so a submission that shares no feature with any
evicted text of a provider cannot resemble one, and the archive is not read. Its size is fixed:
as it fills, "maybe" comes more often and the archive is read more often, never less safely.
"""

from __future__ import annotations

from typing import Final

import numpy as np

from gateway.core.fingerprints import Features

BITS_LOG2: Final = 26  # 2**26 bits: 8 MiB per provider with evicted content
# Odd multipliers: the features are hashes already, but pairs and chunk CRCs use few high bits.
_MIX: Final = (np.uint64(0x9E3779B97F4A7C15), np.uint64(0xC2B2AE3D27D4EB4F))
_SHIFT: Final = np.uint64(64 - BITS_LOG2)


def digest_features(digests: tuple[str, ...]) -> Features:
    """Attachment SHA-256 hex digests as features (their first 64 bits)."""
    return np.array([int(digest[:16], 16) for digest in digests], dtype=np.uint64)


class FeatureFilter:
    """A Bloom filter of 64-bit features, two probes each."""

    def __init__(self, bits_log2: int = BITS_LOG2) -> None:
        self._shift = np.uint64(64 - bits_log2)
        self._bits = np.zeros(1 << (bits_log2 - 3), dtype=np.uint8)

    def _probes(self, features: Features) -> list[np.ndarray]:
        with np.errstate(over="ignore"):
            return [(features * mix) >> self._shift for mix in _MIX]

    def add(self, features: Features) -> None:
        for probe in self._probes(features):
            np.bitwise_or.at(self._bits, probe >> np.uint64(3), _bit(probe))

    def hits(self, features: Features) -> int:
        """How many of ``features`` may have been added."""
        if not features.size:
            return 0
        present = np.ones(features.size, dtype=bool)
        for probe in self._probes(features):
            present &= (self._bits[probe >> np.uint64(3)] & _bit(probe)) != 0
        return int(present.sum())


def _bit(probe: np.ndarray) -> np.ndarray:
    return np.left_shift(np.uint8(1), (probe & np.uint64(7)).astype(np.uint8))


class Evicted:
    """Per provider, the features of its content the index no longer holds, and whether any of
    it was a file (a file is compared by its fuzzy digest too, which no feature filter gates)."""

    def __init__(self, bits_log2: int = BITS_LOG2) -> None:
        self._bits_log2 = bits_log2
        self._filters: dict[str, FeatureFilter] = {}
        self._with_files: set[str] = set()
        self.count = 0

    def add(self, provider: str, features: Features, *, files: bool) -> None:
        found = self._filters.get(provider)
        if found is None:
            found = self._filters[provider] = FeatureFilter(self._bits_log2)
        found.add(features)
        if files:
            self._with_files.add(provider)
        self.count += 1

    def suspects(self, features: Features, *, files: bool) -> list[str]:
        """Providers whose evicted content a submission with these features may resemble, in
        name order. The recipient's own provider is not left out: what it provided may lead,
        through its ``derived_from``, to another Party's information."""
        return sorted(
            provider
            for provider, found in self._filters.items()
            if (files and provider in self._with_files) or found.hits(features) > 0
        )
