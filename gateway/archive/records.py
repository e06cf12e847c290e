"""What the archive holds: an :class:`Entry` to append, the chained :class:`Record` it becomes."""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Any, Final

from gateway.core.stamping import rfc3339

DUPLICATE = "duplicate"

JsonDict = dict[str, Any]


def parse_time(text: str) -> datetime:
    """Inverse of ``rfc3339``; also accepts any ISO 8601 form, naive meaning UTC."""
    value = datetime.fromisoformat(text)
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def clean_text(value: str) -> str:
    """``value`` without NUL and lone surrogates (each replaced by U+FFFD).

    Text fields are metadata taken from untrusted input (the exact original stays in the
    payload), and neither character can be stored in PostgreSQL text or encoded as UTF-8: one
    hostile envelope id would otherwise fail a whole batch, again on every redelivery.
    """
    if "\x00" in value:
        value = value.replace("\x00", "\ufffd")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        value = "".join("\ufffd" if "\ud800" <= c <= "\udfff" else c for c in value)
    return value


def _needs_cleaning(values: Iterable[str]) -> bool:
    joined = "".join(values)
    if "\x00" in joined:
        return True
    try:
        joined.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _utc(value: datetime, name: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got {value!r}")
    return value.astimezone(UTC)


RECORD_KINDS: Final = (
    "submission",
    "envelope.out",
    "envelope.in",
    "receipt.in",
    "receipt.out",
    "frame",
    "control",
    "replay",
    "release",
    "review",
)
"""What a record documents; ``archive search --kind`` accepts these only."""
RECORD_OUTCOMES: Final = (
    "sent",
    "delivered",
    "duplicate",
    "rejected",
    "quarantined",
    "replayed",
    "released",
    "held",
    "refused",
)
"""What became of it; ``archive search --outcome`` accepts these only."""


@dataclass(frozen=True)
class Entry:
    """One thing that happened at the gateway, with the original bytes it happened to.

    Text fields are normalised on construction: times to UTC, sequences to tuples, and NUL or
    lone surrogates to U+FFFD (see :func:`clean_text`); ``payload`` is kept byte for byte.
    """

    kind: str
    outcome: str
    occurred_at: datetime
    payload: bytes
    message_id: str | None = None
    system: str | None = None
    envelope_id: str | None = None
    type: str | None = None
    provider: str | None = None
    recipient: str | None = None
    correlation_id: str | None = None
    reason: str | None = None
    detail: str | None = None
    signature: str | None = None
    dedup_key: str | None = None
    refers_to: int | None = None
    derived_from: tuple[str, ...] = ()
    attachment_sha256: tuple[str, ...] = ()
    headers: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        # Normalised here so that the hash of a record never depends on how a caller spelled it
        # (a list instead of a tuple, +02:00 instead of UTC).
        object.__setattr__(self, "occurred_at", _utc(self.occurred_at, "occurred_at"))
        object.__setattr__(self, "payload", bytes(self.payload))
        object.__setattr__(self, "derived_from", tuple(self.derived_from))
        object.__setattr__(self, "attachment_sha256", tuple(self.attachment_sha256))
        object.__setattr__(self, "headers", tuple((str(k), str(v)) for k, v in self.headers))
        texts = [v for v in map(self.__getattribute__, _TEXT_FIELDS) if v is not None]
        texts += [
            *self.derived_from,
            *self.attachment_sha256,
            *(p for h in self.headers for p in h),
        ]
        if _needs_cleaning(texts):
            self._clean()

    def _clean(self) -> None:
        for name in _TEXT_FIELDS:
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, clean_text(value))
        for name in ("derived_from", "attachment_sha256"):
            object.__setattr__(self, name, tuple(map(clean_text, getattr(self, name))))
        headers = tuple((clean_text(k), clean_text(v)) for k, v in self.headers)
        object.__setattr__(self, "headers", headers)


@dataclass(frozen=True, kw_only=True)
class Record(Entry):
    """An :class:`Entry` as stored: numbered, timestamped and chained to the record before it."""

    seq: int
    recorded_at: datetime
    prev_hash: str
    hash: str

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "recorded_at", _utc(self.recorded_at, "recorded_at"))

    @classmethod
    def chained(
        cls, entry: Entry, *, seq: int, recorded_at: datetime, prev_hash: str, hash: str
    ) -> Record:
        """``entry`` placed in the chain (only its :class:`Entry` fields are taken)."""
        # ``entry`` was normalised when it was built and is immutable: going through __init__
        # would check every field again, once per record of every append.
        record = object.__new__(cls)
        fields_of = record.__dict__
        for name in ENTRY_FIELDS:
            fields_of[name] = getattr(entry, name)
        fields_of.update(
            seq=seq,
            recorded_at=_utc(recorded_at, "recorded_at"),
            prev_hash=prev_hash,
            hash=hash,
        )
        return record


@dataclass(frozen=True)
class Appended:
    """The result of appending one entry; ``original`` is the claiming record of a duplicate."""

    record: Record
    original: Record | None = None

    @property
    def is_duplicate(self) -> bool:
        return self.original is not None


ENTRY_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(Entry))
_TEXT_FIELDS: tuple[str, ...] = tuple(
    f.name for f in fields(Entry) if f.type in ("str", "str | None")
)


def entry_values(entry: Entry) -> JsonDict:
    """Every field of ``entry`` (only the :class:`Entry` ones, also for a Record), as JSON types."""
    return {
        "kind": entry.kind,
        "outcome": entry.outcome,
        "occurred_at": rfc3339(entry.occurred_at),
        "payload": base64.b64encode(entry.payload).decode("ascii"),
        "message_id": entry.message_id,
        "system": entry.system,
        "envelope_id": entry.envelope_id,
        "type": entry.type,
        "provider": entry.provider,
        "recipient": entry.recipient,
        "correlation_id": entry.correlation_id,
        "reason": entry.reason,
        "detail": entry.detail,
        "signature": entry.signature,
        "dedup_key": entry.dedup_key,
        "refers_to": entry.refers_to,
        "derived_from": list(entry.derived_from),
        "attachment_sha256": list(entry.attachment_sha256),
        "headers": [[k, v] for k, v in entry.headers],
    }


def record_to_json(record: Record) -> JsonDict:
    """A lossless JSON form of ``record`` (payload in base64), used by bundles and JSON lines."""
    return {
        "seq": record.seq,
        "recorded_at": rfc3339(record.recorded_at),
        "prev_hash": record.prev_hash,
        "hash": record.hash,
        **entry_values(record),
    }


def _optional_str(data: Mapping[str, Any], key: str) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"record field {key!r} must be a string or null")
    return value


def _str_list(data: Mapping[str, Any], key: str) -> tuple[str, ...]:
    value = data.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"record field {key!r} must be a list of strings")
    return tuple(value)


def record_from_json(data: Mapping[str, Any]) -> Record:
    """Inverse of :func:`record_to_json`; raises ValueError (or KeyError) on a malformed record."""
    headers = data.get("headers", [])
    if not isinstance(headers, list) or not all(
        isinstance(h, list) and len(h) == 2 and all(isinstance(p, str) for p in h) for h in headers
    ):
        raise ValueError("record field 'headers' must be a list of [name, value] pairs")
    refers_to = data.get("refers_to")
    seq = data["seq"]
    if not isinstance(seq, int) or not (refers_to is None or isinstance(refers_to, int)):
        raise ValueError("record fields 'seq' and 'refers_to' must be integers")
    kind, outcome = data["kind"], data["outcome"]
    prev_hash, hash_ = data["prev_hash"], data["hash"]
    if not all(isinstance(v, str) for v in (kind, outcome, prev_hash, hash_)):
        raise ValueError("record fields kind, outcome, prev_hash and hash must be strings")
    return Record(
        seq=seq,
        recorded_at=parse_time(str(data["recorded_at"])),
        prev_hash=prev_hash,
        hash=hash_,
        kind=kind,
        outcome=outcome,
        occurred_at=parse_time(str(data["occurred_at"])),
        payload=base64.b64decode(str(data["payload"]), validate=True),
        message_id=_optional_str(data, "message_id"),
        system=_optional_str(data, "system"),
        envelope_id=_optional_str(data, "envelope_id"),
        type=_optional_str(data, "type"),
        provider=_optional_str(data, "provider"),
        recipient=_optional_str(data, "recipient"),
        correlation_id=_optional_str(data, "correlation_id"),
        reason=_optional_str(data, "reason"),
        detail=_optional_str(data, "detail"),
        signature=_optional_str(data, "signature"),
        dedup_key=_optional_str(data, "dedup_key"),
        refers_to=refers_to,
        derived_from=_str_list(data, "derived_from"),
        attachment_sha256=_str_list(data, "attachment_sha256"),
        headers=tuple((h[0], h[1]) for h in headers),
    )
