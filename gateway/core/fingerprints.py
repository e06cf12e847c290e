"""Fingerprints of texts and files: sets of 64-bit features whose overlap measures containment.

Text: pairs of nearby tokens
----------------------------
A text's features are the *unordered pairs of content tokens*
(``gateway.core.normalise.tokens``) that stand close together. Provided text contributes the
pairs at most ``PROVIDED_SPAN`` = 2 tokens apart; a new text contributes the pairs at most
``CARRIED_SPAN`` = 4 apart. The asymmetry is what makes the measure robust to edits:

- a filler word inserted between two words moves them from distance 1 to 2 (or 2 to 4): the
  provided pair is still among the new text's pairs;
- a word dropped brings its neighbours from distance 2 to 1: the pair is still there, so dropping
  every third word keeps about a third of the provided pairs (and each dropped word only costs the
  pairs it was part of);
- pairs are unordered, so swapping neighbours costs nothing, and the set ignores sentence order.

Files: content-defined chunks
-----------------------------
A file's features are the CRC-32 of its *content-defined chunks* (cut where a rolling hash of the
last ``WINDOW`` bytes hits a pattern, about every ``AVERAGE_CHUNK`` bytes, never shorter than
``MIN_CHUNK``). A cut depends only on the bytes just before it, so a changed byte changes one or
two chunks, an appended tail only the last one, and each half of a split file keeps all chunks but
the one cut through. A TLSH digest (the maintained ``py-tlsh`` library) complements the chunks
for files changed all over, where no chunk survives but the byte statistics do.
"""

from __future__ import annotations

import itertools
import zlib
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import tlsh

Features = npt.NDArray[np.uint64]
Tokens = npt.NDArray[np.uint64]
Hits = list[tuple[int, int]]

PROVIDED_SPAN = 2
CARRIED_SPAN = 4
WINDOW = 16
AVERAGE_CHUNK = 256
MIN_CHUNK = 64
TLSH_MIN_BYTES = 64

EMPTY: Features = np.empty(0, dtype=np.uint64)
# An odd multiplier for the polynomial rolling hash; arithmetic wraps modulo 2**64.
_BASE = np.uint64(0x100000001B3)
_POWERS = np.array([int(_BASE) ** n % 2**64 for n in range(WINDOW)], dtype=np.uint64)


def token_hashes(words: Sequence[str]) -> Tokens:
    """The tokens of a text as 32-bit hashes, in order: what :func:`pairs` and
    :func:`aligned_share` compare."""
    return np.fromiter(map(zlib.crc32, map(str.encode, words)), dtype=np.uint64, count=len(words))


def pairs(hashes: Tokens, span: int) -> Features:
    """Sorted unique features of the unordered token pairs at most ``span`` apart."""
    distances = range(1, min(span, len(hashes) - 1) + 1)
    if not distances:
        return EMPTY
    # All distances at once, and sorted then deduplicated by hand: on a text's hundred-odd
    # tokens numpy's per-call overhead, not the arithmetic, is the cost.
    left = np.concatenate([hashes[:-distance] for distance in distances])
    right = np.concatenate([hashes[distance:] for distance in distances])
    features = np.sort((np.minimum(left, right) << np.uint64(32)) | np.maximum(left, right))
    first = np.empty(len(features), dtype=bool)
    first[0] = True
    np.not_equal(features[1:], features[:-1], out=first[1:])
    return features[first]


def chunks(data: bytes) -> Features:
    """Sorted unique CRC-32s of the content-defined chunks of ``data`` (see the docstring)."""
    if len(data) < MIN_CHUNK * 2:
        return np.array([zlib.crc32(data)], dtype=np.uint64) if data else EMPTY
    raw = np.frombuffer(data, dtype=np.uint8).astype(np.uint64)
    rolling = np.zeros(len(raw) - WINDOW + 1, dtype=np.uint64)
    for offset in range(WINDOW):
        rolling += raw[offset : offset + len(rolling)] * _POWERS[WINDOW - 1 - offset]
    # The high bits mix every byte of the window; cut after the window's last byte.
    candidates = np.flatnonzero((rolling >> np.uint64(40)) % np.uint64(AVERAGE_CHUNK) == 0)
    cuts: list[int] = []
    last = 0
    for position in (candidates + WINDOW).tolist():
        if position - last >= MIN_CHUNK and len(data) - position >= MIN_CHUNK:
            cuts.append(position)
            last = position
    bounds = [0, *cuts, len(data)]
    crcs = {zlib.crc32(data[start:end]) for start, end in itertools.pairwise(bounds)}
    return np.unique(np.fromiter(crcs, dtype=np.uint64, count=len(crcs)))


def fuzzy_digest(data: bytes) -> str | None:
    """The TLSH digest of ``data``; None when it is too short or too uniform to have one."""
    if len(data) < TLSH_MIN_BYTES:
        return None
    digest = str(tlsh.hash(data))
    return None if digest == "TNULL" else digest


def fuzzy_distance(a: str, b: str) -> int:
    """TLSH distance of two digests: 0 for the same file, about 30 for light edits."""
    return int(tlsh.diff(a, b))


def _chain_lengths(
    provided: Sequence[int], positions: dict[int, list[int]], skip: int, gap: int
) -> dict[tuple[int, int], int]:
    """For each match (i, j) of provided token i at carried position j, the longest in-order
    chain of matches ending there, each step advancing at most ``skip`` + 1 provided tokens and
    ``gap`` + 1 carried tokens."""
    lengths: dict[tuple[int, int], int] = {}
    for i, token in enumerate(provided):
        for j in positions.get(token, ()):
            best = 0
            for before in range(max(0, i - skip - 1), i):
                for k in positions.get(provided[before], ()):
                    if j - gap - 1 <= k < j:
                        best = max(best, lengths.get((before, k), 0))
            lengths[i, j] = best + 1
    return lengths


def hits_of(provided: Tokens, carried: Tokens) -> Hits:
    """(position, token) of every ``carried`` token that is one of ``provided``, in order."""
    where = np.flatnonzero(np.isin(carried, provided))
    return list(zip(where.tolist(), carried[where].tolist(), strict=True))


def aligned_share(
    provided: Sequence[int], hits: Hits, *, skip: int, gap: int, min_run: int
) -> float:
    """The share of ``provided`` tokens that appear among ``hits`` (see :func:`hits_of`) in
    runs of at least ``min_run`` in-order matches (tolerating ``skip`` dropped and ``gap``
    inserted tokens per step). Word deletions lower it only by the words deleted, insertions
    not at all."""
    if not provided or not hits:
        return 0.0
    positions: dict[int, list[int]] = {}
    for j, token in hits:
        positions.setdefault(token, []).append(j)
    last_j = hits[-1][0]
    forward = _chain_lengths(provided, positions, skip, gap)
    mirrored = {token: [last_j - j for j in reversed(js)] for token, js in positions.items()}
    backward = _chain_lengths(provided[::-1], mirrored, skip, gap)
    last_i = len(provided) - 1
    covered = {
        i
        for (i, j), length in forward.items()
        if length + backward[last_i - i, last_j - j] - 1 >= min_run
    }
    return len(covered) / len(provided)


def window_share(provided: Sequence[int], hits: Hits, window: int) -> float:
    """The largest share of the distinct ``provided`` tokens found together, in any order,
    within ``window`` consecutive carried tokens (``hits`` as from :func:`hits_of`): how a
    short text cut into pieces and scattered over nearby fields is still found whole."""
    wanted = set(provided)
    inside: dict[int, int] = {}
    best = start = 0
    for j, token in hits:
        inside[token] = inside.get(token, 0) + 1
        while hits[start][0] <= j - window:
            old = hits[start][1]
            inside[old] -= 1
            if not inside[old]:
                del inside[old]
            start += 1
        best = max(best, len(inside))
    return best / len(wanted) if wanted else 0.0
