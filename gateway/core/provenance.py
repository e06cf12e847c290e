"""Where a piece of information came from: the envelopes a gateway knows and their providers.

The archive replays every envelope it holds, oldest first, into a :class:`ProvenanceIndex` at
start and adds each new one as it passes; the third-party rule (``gateway.core.consent``) reads it.

What counts as the content of an envelope
-----------------------------------------
Everything its recipient could read: :func:`gateway.core.envelope_content.content_of` collects every
string of the ``body`` (whatever its key), the attachments' names, hashes and unpacked content,
and, for what this Party sends, the identifiers its back-office systems chose. ``texts`` keeps the
body's strings for display; the comparison itself is
:class:`gateway.core.similarity.ResemblanceIndex`.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from itertools import islice
from typing import Any, Final, Protocol

from gateway.core.envelope_content import Content, content_of
from gateway.core.resemblance import Resemblance, best_first
from gateway.core.similarity import ResemblanceIndex

UNKNOWN_REFERENCE = "provenance.unknown_reference"
# Held in memory with an archive to fall back on: the envelopes most recently used, and the
# content of the most recently received ones. Both are reached long before 100,000 messages.
ENVELOPE_CAPACITY: Final = 50_000
CONTENT_CAPACITY: Final = 20_000
# Evicted content read back from the archive is compared this many envelopes at a time.
COLD_CHUNK: Final = 2_000


class ArchivedEnvelopes(Protocol):
    """The archive's envelopes, read back for what an index no longer holds in memory."""

    def envelope(self, envelope_id: str) -> tuple[Mapping[str, Any], bool] | None:
        """The archived envelope with this id (sent or delivered) and whether it was received."""

    def received_from(self, provider: str) -> Iterator[Mapping[str, Any]]:
        """Every envelope delivered from ``provider``, oldest first."""


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

    With ``archived``, memory is bounded: ``envelope_capacity`` envelopes by id (the least
    recently used go first) and the content of ``content_capacity`` received ones (the oldest
    go first). What went is read back from the archive when it is asked for: an id by its
    record, content when the index's filter of evicted content says a submission may
    resemble it (then that provider's received envelopes, compared a chunk at a time). Without
    ``archived`` (tests, tools), everything stays in memory.
    """

    def __init__(
        self,
        archived: ArchivedEnvelopes | None = None,
        *,
        envelope_capacity: int = ENVELOPE_CAPACITY,
        content_capacity: int = CONTENT_CAPACITY,
    ) -> None:
        self._archived = archived
        self._capacity = envelope_capacity if archived is not None else None
        self._by_id: OrderedDict[str, KnownEnvelope] = OrderedDict()
        self._content = ResemblanceIndex(content_capacity if archived is not None else None)
        self._recorded = 0

    def add(self, known: KnownEnvelope) -> bool:
        """Record ``known``; False when its id is already held (a redelivery or a replay).

        Envelope ids are signed and never reused, so the first record stands.
        """
        if known.id in self._by_id:
            return False
        self._hold(known)
        self._recorded += 1
        if known.received:
            self._content.add_provided(known.id, known.readable(), known.provider)
        else:
            self._content.remember_sent(known.recipient, known.readable())
        return True

    def _hold(self, known: KnownEnvelope) -> KnownEnvelope:
        held = known if known.content is None else replace(known, content=None)
        self._by_id[known.id] = held
        if self._capacity is not None and len(self._by_id) > self._capacity:
            self._by_id.popitem(last=False)
        return held

    def get(self, envelope_id: str) -> KnownEnvelope | None:
        known = self._by_id.get(envelope_id)
        if known is not None:
            self._by_id.move_to_end(envelope_id)
            return known
        if self._archived is None:
            return None
        found = self._archived.envelope(envelope_id)
        if found is None:
            return None
        return self._hold(known_from_envelope(*found))

    def held_count(self) -> tuple[int, int]:
        """Envelopes held by id, and received envelopes whose content is held."""
        return len(self._by_id), self._content.held_count()

    def resemblances(self, content: Content, recipient: str | None = None) -> list[Resemblance]:
        """Provided content that ``content`` resembles (see ``gateway.core.similarity``), counting
        what was recently sent to ``recipient`` too; best first."""
        found = self._content.resemblances(content, recipient)
        if self._archived is None:
            return found
        for provider in self._content.suspects(content, recipient):
            found += self._evicted_resemblances(self._archived, provider, content, recipient)
        return best_first(found)

    def _evicted_resemblances(
        self, archived: ArchivedEnvelopes, provider: str, content: Content, recipient: str | None
    ) -> list[Resemblance]:
        found: list[Resemblance] = []
        evicted = (
            raw for raw in archived.received_from(provider) if not self._content.holds(raw["id"])
        )
        while chunk := list(islice(evicted, COLD_CHUNK)):
            passing = ResemblanceIndex(memory=self._content.memory)
            for raw in chunk:
                passing.add_provided(raw["id"], known_from_envelope(raw, True).readable())
            found += passing.resemblances(content, recipient)
        return found

    def __len__(self) -> int:
        """Envelopes recorded (held in memory or not)."""
        return self._recorded

    def __contains__(self, envelope_id: object) -> bool:
        return isinstance(envelope_id, str) and self.get(envelope_id) is not None


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
