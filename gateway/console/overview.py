"""What the running gateway tells the console's overview page about itself right now."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Link:
    """One broker connection: this Party's own broker (``local``) or a counterparty's."""

    name: str
    up: bool
    since: datetime | None


@dataclass(frozen=True)
class LiveStatus:
    party: str
    links: tuple[Link, ...]
    backlog: Mapping[str, int]
    receipts_pending: int
    receipts_overdue: int
    signing_key_id: str
    signing_key_days: float


LiveStatusSource = Callable[[], Awaitable[LiveStatus]]
