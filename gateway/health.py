"""What a running gateway reports about itself: readiness, and the periodic rounds that keep
its gauges right (archive up, signing key expiry, receipts pending and overdue, queue depths)
and announce overdue receipts on ``gw.status``."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta

import aio_pika
from aio_pika.abc import AbstractRobustConnection

from gateway import amqp
from gateway.amqp import ConfirmingPublisher, PublishRefused
from gateway.archive import ArchiveStore
from gateway.core import publications
from gateway.core.keys import SigningKey, days_to_expiry
from gateway.core.publications import Outgoing
from gateway.core.receipts import Pending, ReceiptTracker
from gateway.metrics import GatewayMetrics

HOUSEKEEPING_INTERVAL_S = 1.0
BACKLOG_INTERVAL_S = 5.0


def overdue_events(overdue: Sequence[Pending], now: datetime, after: timedelta) -> list[Outgoing]:
    """The ``overdue`` status event of each envelope whose receipt did not come in time."""
    return [
        publications.status(
            "overdue",
            system=p.system,
            at=now,
            submission_id=p.submission_id,
            envelope_id=p.envelope_id,
            type=p.type,
            reason="receipt.overdue",
            detail=f"no receipt from {p.counterparty} after {after}",
        )
        for p in overdue
    ]


class Health:
    """Readiness checks and the housekeeping rounds of one gateway."""

    def __init__(
        self,
        *,
        archive: ArchiveStore,
        metrics: GatewayMetrics,
        signing_key: SigningKey,
        status_publisher: ConfirmingPublisher,
        publishers: Mapping[str, ConfirmingPublisher],
        receipts: Callable[[], ReceiptTracker],
        overdue_after: timedelta,
    ) -> None:
        self.archive = archive
        self.metrics = metrics
        self.signing_key = signing_key
        self.status_publisher = status_publisher
        self.publishers = publishers
        self.receipts = receipts
        self.overdue_after = overdue_after
        self.backlog: dict[str, int] = {}

    async def readiness(self) -> dict[str, bool]:
        checks = {
            "broker.local": self.status_publisher.connected,
            "signing_key": days_to_expiry(self.signing_key, datetime.now(UTC)) > 0,
        }
        for party, publisher in self.publishers.items():
            checks[f"broker.{party}"] = publisher.connected
        checks["archive"] = await self.archive_answers()
        return checks

    async def archive_answers(self) -> bool:
        try:
            await self.archive.ping()
            answers = True
        except Exception:
            answers = False
        self.metrics.archive_up.set(1 if answers else 0)
        return answers

    async def housekeeping(self) -> None:
        # First round at once: the gauges are right from the first scrape. archive_up is kept
        # here too, since Prometheus scrapes /metrics and may never probe /readyz.
        while True:
            await self._round(datetime.now(UTC))
            await asyncio.sleep(HOUSEKEEPING_INTERVAL_S)

    async def _round(self, now: datetime) -> None:
        metrics, receipts = self.metrics, self.receipts()
        await self.archive_answers()
        metrics.signing_key_expiry.labels(self.signing_key.key_id).set(
            self.signing_key.valid_to.timestamp()
        )
        overdue = receipts.overdue(now, self.overdue_after)
        for party in self.publishers:
            metrics.receipts_pending.labels(party).set(receipts.pending_count(party))
            metrics.receipts_overdue.labels(party).set(receipts.overdue_count(party))
        for pending in overdue:
            metrics.record_receipt_overdue(pending.counterparty)
        with contextlib.suppress(PublishRefused):
            await self.status_publisher.publish_all(
                overdue_events(overdue, now, self.overdue_after)
            )

    async def watch_backlog(self, connection: AbstractRobustConnection) -> None:
        channel = await connection.channel()
        assert isinstance(channel, aio_pika.RobustChannel)
        while True:
            for name in self.metrics.queues:
                with contextlib.suppress(Exception):
                    self.backlog[name] = await amqp.queue_depth(channel, name)
                    self.metrics.backlog.labels(name).set(self.backlog[name])
            await asyncio.sleep(BACKLOG_INTERVAL_S)
