"""What a batch reports, as data: the metrics it moves and the lines it logs.

The pure builders (``submissions``, ``arrivals``) say *what* happened to each message as a list
of these events; ``emit`` turns them into Prometheus updates and structlog lines in one place,
at the end, as structlog's processors do with an event dict. A test reads the events of a
batch without a metrics registry or a captured log.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from gateway.core.publications import Outgoing

if TYPE_CHECKING:
    from gateway.metrics import Direction, GatewayMetrics
    from gateway.metrics import Outcome as CountedOutcome


@dataclass(frozen=True)
class Counted:
    """One message's final outcome (``gateway_messages_total`` and the reason counters)."""

    direction: Direction
    type: str
    counterparty: str
    outcome: CountedOutcome
    reason: str | None = None


@dataclass(frozen=True)
class ConsentBlocked:
    """A provider whose missing consent stopped a route to ``recipient``."""

    provider: str
    recipient: str


@dataclass(frozen=True)
class EndToEnd:
    direction: Direction
    counterparty: str
    seconds: float


@dataclass(frozen=True)
class CheckpointProblemSeen:
    counterparty: str
    reason: str


@dataclass(frozen=True)
class Logged:
    """A log line: its level, its event name and its key-value fields."""

    level: Literal["info", "warning", "error"]
    event: str
    fields: Mapping[str, Any] = field(default_factory=dict)


Event = Counted | ConsentBlocked | EndToEnd | CheckpointProblemSeen | Logged


@dataclass
class Effects:
    """What a batch publishes with its ack (in order), and what it reports."""

    outgoing: list[Outgoing] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)

    def add(self, other: Effects) -> None:
        self.outgoing += other.outgoing
        self.events += other.events


def consent_blocks(missing: Iterable[tuple[str, str]], recipient: str) -> list[Event]:
    """Only the providers whose consent is missing blocked the route; a route's ``providers``
    also holds this Party and providers whose consent was found."""
    return [ConsentBlocked(provider, recipient) for provider in sorted({p for p, _ in missing})]


def emit(events: Iterable[Event], metrics: GatewayMetrics, logger: Any) -> None:
    """Apply ``events`` to ``metrics`` and ``logger`` (a structlog logger), in order."""
    for event in events:
        if isinstance(event, Counted):
            metrics.record_outcome(
                event.direction, event.type, event.counterparty, event.outcome, event.reason
            )
        elif isinstance(event, ConsentBlocked):
            metrics.record_consent_block(event.provider, event.recipient)
        elif isinstance(event, EndToEnd):
            metrics.observe_end_to_end(event.direction, event.counterparty, event.seconds)
        elif isinstance(event, CheckpointProblemSeen):
            metrics.record_checkpoint_problem(event.counterparty, event.reason)
        else:
            getattr(logger, event.level)(event.event, **event.fields)
