"""What one control request leads to: archive entries, a send to a counterparty, local effects."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gateway.archive import Entry
from gateway.core.publications import Outgoing
from gateway.workers.events import Event


@dataclass(frozen=True)
class Send:
    recipient: str
    envelope: Mapping[str, Any]
    headers: Mapping[str, str]


@dataclass
class Outcome:
    """What one request leads to, in the order it happens."""

    result: str
    entries: list[Entry] = field(default_factory=list)  # archived before anything leaves
    send: Send | None = None  # to a counterparty, once archived
    done: list[Entry] = field(default_factory=list)  # archived once the counterparty confirmed
    effects: list[Outgoing] = field(default_factory=list)  # committed with the ack
    events: list[Event] = field(default_factory=list)  # reported with the commit
