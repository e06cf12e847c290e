"""What the last envelopes sent to one recipient carried, for the resemblance index: pieces of
a provided text sent one after the other add up (``accumulated`` resemblances).
"""

from __future__ import annotations

from collections import deque

import numpy as np

from gateway.core.envelope_content import Content
from gateway.core.fingerprints import CARRIED_SPAN, EMPTY, Features, Tokens, pairs
from gateway.core.submission_prints import Query, padding_of, text_query, union, unpadded

MEMORY_MESSAGES = 32
MEMORY_CHARS = 200_000
SEAM_TOKENS = 16


class SentMemory:
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
                    self._tokens[id(texts)] = text_query(texts).tokens
            tokens = np.concatenate([self._tokens[id(texts)] for texts, _ in self._sent])
            files = union([features for _, features in self._sent])
            self._fingerprints = (tokens, pairs(tokens, CARRIED_SPAN), files)
        return self._fingerprints

    def with_text(self, query: Query) -> Query:
        earlier, text_features, _ = self._fingerprinted()
        sequence = np.concatenate([earlier, query.tokens])
        padding = padding_of(sequence)
        # Pairs joining the end of the earlier messages to the new one, across what repeats in
        # every message (subjects, fillers); only pairs with a token of the new message: the
        # earlier ones alone were judged when they were sent.
        tail = unpadded(earlier[len(earlier) - SEAM_TOKENS :], padding)
        seam = np.setdiff1d(
            pairs(np.concatenate([tail, unpadded(query.tokens, padding)]), CARRIED_SPAN),
            pairs(tail, CARRIED_SPAN),
            assume_unique=True,
        )
        features = union([text_features, seam, query.joined])
        return Query((), features, sequence, union([seam, query.joined]))

    def with_files(self, query: Query) -> Query:
        files = self._fingerprinted()[2]
        return Query((), union([files, query.joined]), EMPTY, query.joined)


def _chars(content: Content) -> int:
    return sum(len(text) for _, text in content.texts)
