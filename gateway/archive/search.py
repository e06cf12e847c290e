"""What an archive search asks for (pure: the console and the CLI build it without the store)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class SearchFilter:
    """Conditions that must all hold; an empty sequence or None means "any".

    ``since`` (inclusive) and ``until`` (exclusive) bound ``recorded_at``, the archive's own
    clock, which never goes backwards along the chain: a time range is a contiguous seq range.
    """

    since: datetime | None = None
    until: datetime | None = None
    kinds: Sequence[str] = ()
    types: Sequence[str] = ()
    provider: str | None = None
    recipient: str | None = None
    correlation_id: str | None = None
    outcomes: Sequence[str] = ()
    envelope_ids: Sequence[str] = ()
    message_ids: Sequence[str] = ()
    after_seq: int = 0  # only records after this one: a reader pages through with it
