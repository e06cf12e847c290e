"""Where a piece of information came from: the envelopes a gateway knows and their providers.

The archive replays every envelope it holds, oldest first, into a :class:`ProvenanceIndex` at
start and adds each new one as it passes; the third-party rule (``gateway.consent``) reads it.

What counts as the text of an envelope
--------------------------------------
:func:`known_from_envelope` walks the whole ``body`` (nested objects and lists alike) and keeps

- both strings of every bilingual object, that is every object with an ``"en"`` or ``"ru"``
  string member (subject, text, title, mandate, agenda, purpose, conditions, ... whatever the
  contract calls the field), and
- every plain string under a key named ``"text"``.

Other plain strings (ids, officer codes, dates, enum values) are identifiers, not prose. Each
kept string is one text, compared on its own; empty strings and repeats are dropped.

Attachments are the ``sha256`` members (lower-cased) of the objects in any ``"attachments"``
list in the body.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gateway.similarity import JACCARD_THRESHOLD, TextIndex

UNKNOWN_REFERENCE = "provenance.unknown_reference"


class ProvenanceError(Exception):
    """A provenance question that cannot be answered; ``code`` is a stable reason code."""

    def __init__(self, code: str, detail: str, references: Sequence[str] = ()) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail
        self.references = tuple(references)


@dataclass(frozen=True)
class KnownEnvelope:
    """What the third-party rule needs to know about one archived envelope."""

    id: str
    provider: str
    recipient: str
    type: str
    correlation_id: str | None
    derived_from: tuple[str, ...]
    pre_approved: tuple[str, ...]
    attachment_sha256: tuple[str, ...]
    texts: tuple[str, ...]
    received: bool


def _required_str(envelope: Mapping[str, Any], *path: str) -> str:
    value: Any = envelope
    for key in path:
        value = value.get(key) if isinstance(value, Mapping) else None
    if not isinstance(value, str) or not value:
        raise ValueError(f"envelope has no {'.'.join(path)} string")
    return value


def _str_list(value: Any, name: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValueError(f"envelope {name} is not a list of strings")
    return tuple(value)


def _walk_texts(node: Any) -> Iterator[str]:
    if isinstance(node, Mapping):
        for key, value in node.items():
            if key in ("en", "ru", "text") and isinstance(value, str):
                yield value
            else:
                yield from _walk_texts(value)
    elif isinstance(node, list):
        for item in node:
            yield from _walk_texts(item)


def _walk_attachments(node: Any) -> Iterator[str]:
    if isinstance(node, Mapping):
        for key, value in node.items():
            if key == "attachments" and isinstance(value, list):
                for item in value:
                    digest = item.get("sha256") if isinstance(item, Mapping) else None
                    if isinstance(digest, str) and digest:
                        yield digest.lower()
            yield from _walk_attachments(value)
    elif isinstance(node, list):
        for item in node:
            yield from _walk_attachments(item)


def _unique(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(value for value in values if value.strip()))


def known_from_envelope(envelope: Mapping[str, Any], received: bool) -> KnownEnvelope:
    """Extract a :class:`KnownEnvelope` from an envelope JSON object (design section 3).

    Raises ValueError when a member the rule depends on is missing or has the wrong type: such
    an envelope never passed the contracts, and guessing its provenance would be unsafe.
    """
    correlation_id = envelope.get("correlation_id")
    if correlation_id is not None and not isinstance(correlation_id, str):
        raise ValueError("envelope correlation_id is not a string")
    handling = envelope.get("handling") or {}
    if not isinstance(handling, Mapping):
        raise ValueError("envelope handling is not an object")
    body = envelope.get("body") or {}
    return KnownEnvelope(
        id=_required_str(envelope, "id"),
        provider=_required_str(envelope, "originator", "party"),
        recipient=_required_str(envelope, "recipient"),
        type=_required_str(envelope, "type"),
        correlation_id=correlation_id,
        derived_from=_str_list(envelope.get("derived_from"), "derived_from"),
        pre_approved=_str_list(handling.get("pre_approved"), "handling.pre_approved"),
        attachment_sha256=_unique(_walk_attachments(body)),
        texts=_unique(_walk_texts(body)),
        received=received,
    )


class ProvenanceIndex:
    """Every envelope a gateway has archived, with lookups by id, attachment hash and text.

    Only *received* envelopes are searchable by attachment and text: undeclared derivation is
    about reproducing someone else's information, and what this Party sent is its own (or was
    itself checked, with its declared sources, when it was sent).
    """

    def __init__(self) -> None:
        self._by_id: dict[str, KnownEnvelope] = {}
        self._by_attachment: dict[str, list[KnownEnvelope]] = {}
        self._texts = TextIndex()
        self._text_owner: dict[str, str] = {}

    def add(self, known: KnownEnvelope) -> bool:
        """Record ``known``; False when its id is already recorded (a redelivery or a replay).

        Envelope ids are signed and never reused, so the first record stands.
        """
        if known.id in self._by_id:
            return False
        self._by_id[known.id] = known
        if known.received:
            for digest in known.attachment_sha256:
                self._by_attachment.setdefault(digest.lower(), []).append(known)
            for n, text in enumerate(known.texts):
                key = f"{known.id}#{n}"
                if self._texts.add(key, text):
                    self._text_owner[key] = known.id
        return True

    def get(self, envelope_id: str) -> KnownEnvelope | None:
        return self._by_id.get(envelope_id)

    def by_attachment(self, sha256: str) -> list[KnownEnvelope]:
        """Received envelopes carrying an attachment with this SHA-256 (hex, any case)."""
        return list(self._by_attachment.get(sha256.lower(), ()))

    def similar_texts(
        self, texts: Iterable[str], min_score: float = JACCARD_THRESHOLD
    ) -> list[tuple[KnownEnvelope, float]]:
        """Received envelopes with a text near-duplicated by one of ``texts``, best first.

        The score of an envelope is the best Jaccard similarity over all pairs of texts.
        """
        best: dict[str, float] = {}
        for text in texts:
            for key, score in self._texts.query(text, min_score):
                owner = self._text_owner[key]
                best[owner] = max(score, best.get(owner, 0.0))
        ranked = sorted(best.items(), key=lambda item: (-item[1], item[0]))
        return [(self._by_id[envelope_id], score) for envelope_id, score in ranked]

    def __len__(self) -> int:
        return len(self._by_id)

    def __contains__(self, envelope_id: object) -> bool:
        return envelope_id in self._by_id


@dataclass(frozen=True)
class Provenance:
    """The transitive closure of a ``derived_from`` list and the Parties that provided it."""

    envelopes: tuple[KnownEnvelope, ...]
    providers: frozenset[str]

    @property
    def ids(self) -> frozenset[str]:
        return frozenset(known.id for known in self.envelopes)


def providers_of(derived_from: Sequence[str], index: ProvenanceIndex) -> Provenance:
    """The envelopes ``derived_from`` reaches through ``derived_from`` links, and their providers.

    Breadth-first from the given ids, each envelope once, so cycles and diamonds are safe.

    Unknown ids raise ProvenanceError(``provenance.unknown_reference``), naming all of them,
    when they are listed in ``derived_from`` itself or by an envelope this Party sent (the
    gateway checked those references when it sent it, so a gap means the archive is not what
    the sender saw: fail closed). An id listed by a *received* envelope that this gateway never
    saw names an envelope in the peer's own archive (say the peer's earlier message to another
    Party); this Party never held that information, so there is nothing of it to protect here,
    and the walk skips it.
    """
    seen: dict[str, KnownEnvelope] = {}
    unknown: list[str] = []
    queue: deque[tuple[str, bool]] = deque((envelope_id, True) for envelope_id in derived_from)
    while queue:
        envelope_id, must_know = queue.popleft()
        if envelope_id in seen:
            continue
        known = index.get(envelope_id)
        if known is None:
            if must_know and envelope_id not in unknown:
                unknown.append(envelope_id)
            continue
        seen[envelope_id] = known
        queue.extend((parent, not known.received) for parent in known.derived_from)
    if unknown:
        raise ProvenanceError(
            UNKNOWN_REFERENCE,
            f"derived_from names envelope(s) never seen by this gateway: {', '.join(unknown)}",
            unknown,
        )
    envelopes = tuple(seen.values())
    return Provenance(envelopes, frozenset(known.provider for known in envelopes))
