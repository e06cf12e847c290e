"""Where a piece of information came from: the envelopes a gateway knows and their providers.

The archive replays every envelope it holds, oldest first, into a :class:`ProvenanceIndex` at
start and adds each new one as it passes; the third-party rule (``gateway.consent``) reads it.

What counts as the content of an envelope
-----------------------------------------
Everything its recipient could read: :func:`gateway.envelope_content.content_of` collects every
string of the ``body`` (whatever its key), the attachments' names, hashes and unpacked content,
and, for what this Party sends, the identifiers its back-office systems chose. ``texts`` keeps the
body's strings for display; the comparison itself is :class:`gateway.similarity.ResemblanceIndex`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from gateway.envelope_content import Content, content_of
from gateway.resemblance import Resemblance
from gateway.similarity import ResemblanceIndex

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
    # What a recipient could read; None when built from ``texts`` and ``attachment_sha256``
    # alone. Dropped once indexed: the fingerprints are what the index keeps.
    content: Content | None = None

    def readable(self) -> Content:
        if self.content is not None:
            return self.content
        return Content.of_texts(self.texts, self.attachment_sha256)


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
    content = content_of(envelope, identifiers=not received)
    body_texts = (
        text
        for path, text in content.texts
        if path.startswith("body") and ".content" not in path and "/" not in path
    )
    return KnownEnvelope(
        id=_required_str(envelope, "id"),
        provider=_required_str(envelope, "originator", "party"),
        recipient=_required_str(envelope, "recipient"),
        type=_required_str(envelope, "type"),
        correlation_id=correlation_id,
        derived_from=_str_list(envelope.get("derived_from"), "derived_from"),
        pre_approved=_str_list(handling.get("pre_approved"), "handling.pre_approved"),
        attachment_sha256=content.sha256,
        texts=_unique(body_texts),
        received=received,
        content=content,
    )


class ProvenanceIndex:
    """Every envelope a gateway has archived, with lookups by id and by content.

    Only *received* envelopes are searchable by content: undeclared derivation is about
    reproducing someone else's information, and what this Party sent is its own (or was itself
    checked, with its declared sources, when it was sent). What this Party sent is remembered
    per recipient, so that provided content spread over several messages adds up.
    """

    def __init__(self) -> None:
        self._by_id: dict[str, KnownEnvelope] = {}
        self._content = ResemblanceIndex()

    def add(self, known: KnownEnvelope) -> bool:
        """Record ``known``; False when its id is already recorded (a redelivery or a replay).

        Envelope ids are signed and never reused, so the first record stands.
        """
        if known.id in self._by_id:
            return False
        self._by_id[known.id] = known if known.content is None else replace(known, content=None)
        if known.received:
            self._content.add_provided(known.id, known.readable())
        else:
            self._content.remember_sent(known.recipient, known.readable())
        return True

    def get(self, envelope_id: str) -> KnownEnvelope | None:
        return self._by_id.get(envelope_id)

    def resemblances(self, content: Content, recipient: str | None = None) -> list[Resemblance]:
        """Provided content that ``content`` resembles (see ``gateway.similarity``), counting
        what was recently sent to ``recipient`` too; best first."""
        return self._content.resemblances(content, recipient)

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
