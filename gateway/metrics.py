"""Every Prometheus metric the gateway exports, defined once, on a registry of its own.

Each gateway owns a ``GatewayMetrics`` with a private ``CollectorRegistry`` so that several
gateways can run in one process (tests, the demo) without their series mixing.

Label values must stay bounded: message types and counterparties are checked against the sets
given at construction, reasons against the shape of a stable code, and anything else becomes
``"other"``. Never pass a message id, an envelope id or free text as a label value.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable
from typing import Final, Literal

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.context_managers import Timer

from contracts import amqp
from gateway.core.checkpoints import PROBLEM_CODES
from gateway.version import package_version

Direction = Literal["outbound", "inbound"]
Outcome = Literal["forwarded", "delivered", "rejected", "quarantined", "duplicate", "held"]
Stage = Literal["validate", "sign", "verify", "policy", "archive", "publish", "confirm"]

DIRECTIONS: Final[tuple[Direction, ...]] = ("outbound", "inbound")
OUTCOMES: Final[dict[Direction, tuple[Outcome, ...]]] = {
    "outbound": ("forwarded", "rejected", "quarantined", "duplicate", "held"),
    "inbound": ("delivered", "rejected", "quarantined", "duplicate"),
}
STAGES: Final[tuple[Stage, ...]] = (
    "validate",
    "sign",
    "verify",
    "policy",
    "archive",
    "publish",
    "confirm",
)
QUEUES: Final[tuple[str, ...]] = (
    amqp.SUBMIT_QUEUE,
    amqp.REJECTED_QUEUE,
    amqp.QUARANTINE_QUEUE,
    amqp.CONTROL_QUEUE,
)
LOCAL_BROKER: Final = "local"
OTHER: Final = "other"

LATENCY_BUCKETS: Final = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
)  # fmt: skip
# Signing or a single archive write takes tens of microseconds, so stages start finer.
STAGE_BUCKETS: Final = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
    2.5, 5.0, 10.0,
)  # fmt: skip
BATCH_SIZE_BUCKETS: Final = tuple(float(2**i) for i in range(11))  # 1 .. 1024

_REASON_CODE = re.compile(r"^[a-z][a-z0-9_]*(?:\.[a-z0-9_]+)+$")
_REASON_MAX_LEN = 64


def bounded(value: str, allowed: Collection[str], other: str = OTHER) -> str:
    """``value`` when it is one of ``allowed``, else ``other``: keeps label sets finite."""
    return value if value in allowed else other


def reason_code(reason: str) -> str:
    """A stable ``family.detail`` reason code as is; anything else (free text) as ``other``."""
    if len(reason) <= _REASON_MAX_LEN and _REASON_CODE.match(reason):
        return reason
    return OTHER


class GatewayMetrics:
    """The gateway's metrics on their own registry, with helpers that bound label values."""

    def __init__(
        self,
        party: str,
        *,
        counterparties: Iterable[str],
        message_types: Iterable[str],
        build_version: str | None = None,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.party = party
        self.counterparties: frozenset[str] = frozenset(counterparties)
        self.message_types: frozenset[str] = frozenset(message_types)
        # The queues whose depth is watched: each counterparty has its own inbound queue.
        self.queues: tuple[str, ...] = (
            *QUEUES,
            *(amqp.inbound_name(c) for c in sorted(self.counterparties)),
        )
        self.registry = registry if registry is not None else CollectorRegistry()
        self._declare_process()
        self._declare_outcomes()
        self._declare_timings()
        self._declare_queues()
        self._declare_receipts()
        self._declare_links()
        self._declare_archive()

        self.build_info.labels(build_version or package_version(), party).set(1)
        self.up.set(1)
        self._initialise_series()

    def _declare_process(self) -> None:
        """The process: its version and that it is up."""
        r = self.registry
        self.build_info = Gauge(
            "gateway_build_info",
            "Always 1; labels carry the gateway version and its Party",
            ["version", "party"],
            registry=r,
        )
        self.up = Gauge(
            "gateway_up", "Always 1 while the gateway process serves metrics", registry=r
        )

    def _declare_outcomes(self) -> None:
        """What became of messages: outcomes, rejections, quarantines, consent blocks."""
        r = self.registry
        self.messages = Counter(
            "gateway_messages_total",
            "Messages that reached a final outcome, by direction, type, counterparty, outcome",
            ["direction", "type", "counterparty", "outcome"],
            registry=r,
        )
        self.rejections = Counter(
            "gateway_rejections_total",
            "Messages sent to gw.rejected, by direction and stable reason code",
            ["direction", "reason"],
            registry=r,
        )
        self.quarantined = Counter(
            "gateway_quarantined_total",
            "Messages sent to gw.quarantine, by direction and stable reason code",
            ["direction", "reason"],
            registry=r,
        )
        self.consent_blocks = Counter(
            "gateway_consent_blocks_total",
            "Routes the third-party rule stopped for want of the provider's consent",
            ["provider", "recipient"],
            registry=r,
        )

    def _declare_timings(self) -> None:
        """How long messages and processing stages take."""
        r = self.registry
        self.end_to_end_latency = Histogram(
            "gateway_end_to_end_latency_seconds",
            "Time from a message's arrival at the gateway to its durable outcome",
            ["direction", "counterparty"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.stage_seconds = Histogram(
            "gateway_stage_seconds",
            "Time spent in one processing stage of a message or batch",
            ["stage"],
            buckets=STAGE_BUCKETS,
            registry=r,
        )

    def _declare_queues(self) -> None:
        """Work in hand and work waiting."""
        r = self.registry
        self.in_flight = Gauge(
            "gateway_in_flight_messages",
            "Messages taken from a queue and not yet acknowledged",
            ["direction"],
            registry=r,
        )
        self.backlog = Gauge(
            "gateway_backlog_messages",
            "Messages waiting in one of the gateway's queues on the local broker",
            ["queue"],
            registry=r,
        )

    def _declare_receipts(self) -> None:
        """Receipts, refused copies and rate limits: what waits on a counterparty or a queue."""
        r = self.registry
        self.receipts_pending = Gauge(
            "gateway_receipts_pending",
            "Forwarded envelopes still waiting for the counterparty's signed receipt",
            ["counterparty"],
            registry=r,
        )
        self.copies_refused = Counter(
            "gateway_copies_refused_total",
            "Copies for gw.rejected or gw.quarantine the broker refused (the queue was full)",
            ["queue"],
            registry=r,
        )
        self.copies_held = Gauge(
            "gateway_copies_held",
            "1 while a batch is held because its queue refused a copy for it, else 0",
            registry=r,
        )
        self.inbound_rate_limited = Gauge(
            "gateway_inbound_rate_limited",
            "1 while a counterparty has frames waiting but is over its rate limit, else 0",
            ["counterparty"],
            registry=r,
        )
        # Not "gateway_receipts_overdue": a gauge and a counter may not differ only by _total.
        self.receipts_overdue = Gauge(
            "gateway_receipts_pending_overdue",
            "Envelopes waiting for a receipt longer than the configured overdue time",
            ["counterparty"],
            registry=r,
        )
        self.receipts_overdue_total = Counter(
            "gateway_receipts_overdue_total",
            "Envelopes whose receipt became overdue",
            ["counterparty"],
            registry=r,
        )

    def _declare_links(self) -> None:
        """The broker connections."""
        r = self.registry
        self.broker_connected = Gauge(
            "gateway_broker_connected",
            "1 while the connection to a broker is open, else 0",
            ["broker"],
            registry=r,
        )
        self.broker_reconnects = Counter(
            "gateway_broker_reconnects_total",
            "Connections re-established to a broker after a loss",
            ["broker"],
            registry=r,
        )

    def _declare_archive(self) -> None:
        """The archive, its checkpoints and the signing key."""
        r = self.registry
        self.archive_write_seconds = Histogram(
            "gateway_archive_write_seconds",
            "Time to commit one batch of records to the archive",
            buckets=STAGE_BUCKETS,
            registry=r,
        )
        self.archive_batch_size = Histogram(
            "gateway_archive_batch_size",
            "Records committed to the archive in one transaction",
            buckets=BATCH_SIZE_BUCKETS,
            registry=r,
        )
        self.archive_up = Gauge(
            "gateway_archive_up", "1 while the archive answers, else 0", registry=r
        )

        self.checkpoint_problems = Counter(
            "gateway_checkpoint_problems_total",
            "Checkpoints that show an archive shortened or rewritten: the counterparty's "
            "(regressed, forked, broken_link) or this gateway's own (not_in_archive)",
            ["counterparty", "reason"],
            registry=r,
        )

        self.signing_key_expiry = Gauge(
            "gateway_signing_key_expiry_timestamp_seconds",
            "When the gateway's signing key leaves its validity window (Unix time)",
            ["key_id"],
            registry=r,
        )

    def _initialise_series(self) -> None:
        """Create the known label sets at zero so that rate() and alerts see them at once."""
        for direction in DIRECTIONS:
            self.in_flight.labels(direction)
            for counterparty in self.counterparties:
                self.end_to_end_latency.labels(direction, counterparty)
                for message_type in self.message_types:
                    for outcome in OUTCOMES[direction]:
                        self.messages.labels(direction, message_type, counterparty, outcome)
        for queue in self.queues:
            self.backlog.labels(queue)
        for stage in STAGES:
            self.stage_seconds.labels(stage)
        for queue in (amqp.REJECTED_QUEUE, amqp.QUARANTINE_QUEUE):
            self.copies_refused.labels(queue)
        for broker in (LOCAL_BROKER, *self.counterparties):
            self.broker_connected.labels(broker).set(0)
            self.broker_reconnects.labels(broker)
        for counterparty in self.counterparties:
            self.receipts_pending.labels(counterparty)
            self.receipts_overdue.labels(counterparty)
            self.inbound_rate_limited.labels(counterparty).set(0)
            self.receipts_overdue_total.labels(counterparty)
            for code in PROBLEM_CODES:
                self.checkpoint_problems.labels(counterparty, code)
            for recipient in self.counterparties - {counterparty}:
                self.consent_blocks.labels(counterparty, recipient)

    def counterparty(self, value: str) -> str:
        return bounded(value, self.counterparties)

    def broker(self, value: str) -> str:
        return value if value == LOCAL_BROKER else self.counterparty(value)

    def record_outcome(
        self,
        direction: Direction,
        message_type: str,
        counterparty: str,
        outcome: Outcome,
        reason: str | None = None,
    ) -> None:
        """Count one message's final outcome; a rejection or quarantine also counts its reason."""
        self.messages.labels(
            direction,
            bounded(message_type, self.message_types),
            self.counterparty(counterparty),
            outcome,
        ).inc()
        if outcome == "rejected":
            self.rejections.labels(direction, reason_code(reason or "")).inc()
        elif outcome == "quarantined":
            self.quarantined.labels(direction, reason_code(reason or "")).inc()

    def record_consent_block(self, provider: str, recipient: str) -> None:
        self.consent_blocks.labels(self.counterparty(provider), self.counterparty(recipient)).inc()

    def time_stage(self, stage: Stage) -> Timer:
        """Context manager observing the block's duration under ``stage``."""
        return self.stage_seconds.labels(stage).time()

    def observe_end_to_end(self, direction: Direction, counterparty: str, seconds: float) -> None:
        self.end_to_end_latency.labels(direction, self.counterparty(counterparty)).observe(seconds)

    def set_broker_connected(self, broker: str, connected: bool) -> None:
        self.broker_connected.labels(self.broker(broker)).set(1 if connected else 0)

    def record_reconnect(self, broker: str) -> None:
        self.broker_reconnects.labels(self.broker(broker)).inc()

    def record_checkpoint_problem(self, counterparty: str, reason: str) -> None:
        self.checkpoint_problems.labels(self.counterparty(counterparty), reason_code(reason)).inc()

    def set_rate_limited(self, counterparty: str, limited: bool) -> None:
        self.inbound_rate_limited.labels(self.counterparty(counterparty)).set(1 if limited else 0)

    def record_receipt_overdue(self, counterparty: str) -> None:
        self.receipts_overdue_total.labels(self.counterparty(counterparty)).inc()
