"""The Gateway: one Party's running service, assembled from its parts.

Lifecycle: ``start()`` opens the archive and rebuilds what the gateway knows from it, connects
to the local broker (failing fast: without it there is nothing to do) and to every counterparty
(in the background: a peer that is down holds the backlog, it does not stop the gateway), then
runs the outbound and inbound workers and the HTTP side. ``stop()`` drains: the workers finish
the batch in hand, prefetched messages go back to their queues, and connections close.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta

import aio_pika
import structlog
from aio_pika.abc import AbstractRobustConnection
from aiohttp import web

from contracts.registry import all_specs
from gateway import amqp, outgoing
from gateway.amqp import ConfirmingPublisher, PublishRefused, TransactionalChannel
from gateway.archive import Appended, ArchiveStore, Entry
from gateway.archive.scan import ArchiveReader
from gateway.archive.store import async_url
from gateway.client import user_from_url
from gateway.config import ConfigError, GatewayConfig
from gateway.console.app import console_for, https_context, setup_console
from gateway.console.overview import Link, LiveStatus
from gateway.desk.operations import Desk
from gateway.http import HttpServer
from gateway.inbound import InboundContext
from gateway.keys import Keyring, SigningKey, days_to_expiry, load_public_key, load_signing_key
from gateway.metrics import GatewayMetrics
from gateway.outbound import OutboundContext
from gateway.ratelimit import RateLimiter
from gateway.stamping import new_envelope_id
from gateway.state import PartyState
from gateway.tls import Endpoint
from gateway.workers.batches import Batcher, RoundRobin
from gateway.workers.checkpoints import CheckpointSender
from gateway.workers.control import ControlWorker
from gateway.workers.copies import CopyKeeper
from gateway.workers.inbound import InboundWorker
from gateway.workers.outbound import OutboundWorker
from gateway.workers.ports import Decisions

log = structlog.get_logger(__name__)

HOUSEKEEPING_INTERVAL_S = 1.0
BACKLOG_INTERVAL_S = 5.0
# A batch from one counterparty stops growing past this many bytes of frames, so that the
# next counterparty's turn (see RoundRobin) comes within one modest batch of work.
INBOUND_BATCH_BYTES = 1 << 20


def load_keyring(config: GatewayConfig) -> Keyring:
    """The pinned public keys of every counterparty (each with its validity window).

    A key must belong to the counterparty it is listed under: the keyring trusts a key for the
    Party named in it, so a misplaced file would quietly trust another Party, or this one.
    """
    keys = []
    for party in config.counterparties:
        for path in party.public_keys:
            key = load_public_key(path)
            if key.party != party.id:
                raise ConfigError(
                    f"public key {path} ({key.key_id}) belongs to {key.party}, but it is listed "
                    f"under counterparty {party.id}; list it under its own Party or remove it"
                )
            keys.append(key)
    return Keyring(keys)


async def until_signalled(event: asyncio.Event | None = None) -> None:
    """Wait for SIGTERM or SIGINT (or ``event``)."""
    stop = event or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


class FollowedArchive(ArchiveStore):
    """The archive, remembering which records this process appended, so that the gateway can
    tell the records other replicas of its Party appended (see ``Gateway._follow``).

    ``lock`` is held from an append until its records are remembered, so a reader holding it
    never mistakes one of ours for another replica's.
    """

    def __init__(self, url: str) -> None:
        super().__init__(async_url(url))
        self.lock = asyncio.Lock()
        self.own: set[int] = set()

    async def append(self, entries: Sequence[Entry]) -> list[Appended]:
        async with self.lock:
            appended = await super().append(entries)
            self.own.update(a.record.seq for a in appended)
        return appended


class Gateway:
    def __init__(self, config: GatewayConfig, decisions: Decisions | None = None) -> None:
        self.config = config
        self._decisions = decisions or Decisions()
        self.signing_key: SigningKey = load_signing_key(config.keys.signing_key)
        if self.signing_key.party != config.party:
            raise ConfigError(
                f"keys.signing_key {config.keys.signing_key} is {self.signing_key.party}'s key "
                f"{self.signing_key.key_id}, but this gateway is {config.party}; configure one "
                f"of {config.party}'s own keys"
            )
        self.keyring = load_keyring(config)
        self._endpoints = {"local": Endpoint.of(config.broker, "broker")} | {
            c.id: Endpoint.of(c, f"counterparties.{i}") for i, c in enumerate(config.counterparties)
        }
        self.metrics = GatewayMetrics(
            config.party,
            counterparties=[c.id for c in config.counterparties],
            message_types=[spec.type for spec in all_specs()],
        )
        self.archive = FollowedArchive(config.archive.url)
        self._applied_seq = 0  # self.state reflects every archive record up to this one
        self._reader = ArchiveReader(config.archive.url)  # what the state's indexes let go
        self.state = PartyState.bounded(config.party, self._reader)
        self._state_lost = False
        self._local: AbstractRobustConnection | None = None
        self._links: dict[str, AbstractRobustConnection] = {}
        self.publishers = {c.id: ConfirmingPublisher() for c in config.counterparties}
        self._status_publisher = ConfirmingPublisher()
        self._copies = CopyKeeper(ConfirmingPublisher(), self.metrics)
        self._channels: list[TransactionalChannel] = []
        self._workers: list[OutboundWorker | InboundWorker | ControlWorker] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._worker_tasks: list[asyncio.Task[None]] = []
        self.checkpoints = CheckpointSender(
            party=config.party,
            recipients=config.checkpoint_recipients,
            publishers=self.publishers,
            archive=self.archive,
            metrics=self.metrics,
            signing_key=self.signing_key,
            state=lambda: self.state,
            prepare=self._prepare,
            interval_s=config.checkpoints.interval_s,
        )
        self._link_state: dict[str, Link] = {}
        self._backlog: dict[str, int] = {}
        self.http = HttpServer(
            config.http.host,
            config.http.port,
            self.metrics,
            self.readiness,
            extend=self._mount_console if config.console.enabled else None,
            ssl_context=https_context(config.console),
        )
        self._stopped = asyncio.Event()

    async def start(self) -> None:
        await self.archive.open()
        await self._rebuild_state()
        local = self._endpoints["local"]
        self._local = await amqp.connect(
            local.url,
            f"gateway {self.config.party} local",
            self._on_broker_state("local"),
            heartbeat=self.config.broker.heartbeat_s,
            ssl_context=local.ssl_context,
        )
        await self._status_publisher.open(self._local)
        await self._copies.open(self._local)
        for counterparty in self.config.counterparties:
            self._spawn(self._link(counterparty.id))
        outbound_channel = await self._transactional_channel()
        broker = self.config.broker
        senders = [c.id for c in self.config.counterparties]
        limits, now = self.config.limits, time.monotonic()
        linger_s = broker.batch_linger_ms / 1000
        # One channel per counterparty: an ack(multiple) acks only that counterparty's frames.
        inbound_channels = {
            s: await self._transactional_channel(broker.inbound_prefetch) for s in senders
        }
        outbound = OutboundWorker(
            party=self.config.party,
            channel=outbound_channel,
            publishers=self.publishers,
            archive=self.archive,
            metrics=self.metrics,
            batcher=Batcher(broker.batch_size, broker.batch_linger_ms / 1000),
            context=self._outbound_context,
            on_state_lost=self._lose_state,
            prepare=self._prepare,
            max_message_bytes=self.config.limits.max_message_bytes,
            max_attempts=self.config.limits.max_attempts,
            decide=self._decisions.submission,
        )
        inbound = InboundWorker(
            party=self.config.party,
            channels=inbound_channels,
            publishers=self.publishers,
            archive=self.archive,
            metrics=self.metrics,
            batcher=RoundRobin(
                {s: Batcher(broker.batch_size, linger_s, INBOUND_BATCH_BYTES) for s in senders},
                RateLimiter(senders, limits.inbound_envelopes_per_s, limits.inbound_burst, now),
                self.metrics.set_rate_limited,
            ),
            signing_key=self.signing_key,
            context=self._inbound_context,
            on_state_lost=self._lose_state,
            prepare=self._prepare,
            max_message_bytes=self.config.limits.max_message_bytes,
            max_frame_envelopes=self.config.limits.max_frame_envelopes,
            max_attempts=self.config.limits.max_attempts,
            decide=self._decisions.envelope,
        )
        control = ControlWorker(
            party=self.config.party,
            gateway_user=user_from_url(broker.url),
            channel=await self._transactional_channel(),
            publishers=self.publishers,
            archive=self.archive,
            metrics=self.metrics,
            own_keys=Keyring([self.signing_key.public()]),
            max_envelope_age=self.config.limits.max_envelope_age,
            outbound_context=self._outbound_context,
            inbound_context=self._inbound_context,
            on_state_lost=self._lose_state,
            prepare=self._prepare,
            review_roles=self.config.review.roles,
        )
        if self.config.checkpoints.interval_s > 0:
            self._spawn(self.checkpoints.run())
        self._workers = [outbound, inbound, control]
        self._worker_tasks = [asyncio.ensure_future(worker.run()) for worker in self._workers]
        for task in self._worker_tasks:
            task.add_done_callback(self._task_done)
        self._spawn(self._housekeeping())
        self._spawn(self._watch_backlog())
        await self.http.start()
        log.info("gateway.started", party=self.config.party, http_port=self.http.port)

    async def _transactional_channel(self, prefetch: int | None = None) -> TransactionalChannel:
        assert self._local is not None
        channel = TransactionalChannel(
            self._local, prefetch or self.config.broker.prefetch, self._copies
        )
        await channel.open()
        self._channels.append(channel)
        return channel

    def _spawn(self, coroutine: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coroutine)
        task.add_done_callback(self._task_done)
        self._tasks.append(task)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("gateway.task_failed", error=repr(task.exception()))
            self._stopped.set()

    def _on_broker_state(self, broker: str) -> Callable[[bool], None]:
        seen_up = False

        def changed(connected: bool) -> None:
            nonlocal seen_up
            self._link_state[broker] = Link(broker, connected, datetime.now(UTC))
            self.metrics.set_broker_connected(broker, connected)
            if connected and seen_up:
                self.metrics.record_reconnect(broker)
            seen_up = seen_up or connected
            log.info("broker.connection", broker=broker, connected=connected)

        return changed

    async def _link(self, party: str) -> None:
        self.metrics.set_broker_connected(party, False)
        endpoint = self._endpoints[party]
        self._link_state[party] = Link(party, False, None)
        connection = await amqp.connect(
            endpoint.url,
            f"gateway {self.config.party} to {party}",
            self._on_broker_state(party),
            heartbeat=self.config.broker.heartbeat_s,
            fail_fast=False,
            ssl_context=endpoint.ssl_context,
        )
        self._links[party] = connection
        await self.publishers[party].open(connection)

    def _lose_state(self) -> None:
        self._state_lost = True

    async def _prepare(self) -> None:
        if self._state_lost:
            await self._rebuild_state()
        else:
            await self._follow()

    async def _follow(self) -> None:
        """Apply what other replicas sharing the archive appended since we last looked: their
        roster, consent and provenance changes, the envelopes whose receipts may come to us.
        Alone on the archive this is one look at its head."""
        archive = self.archive
        async with archive.lock:
            head, _ = await archive.head()
            ours = sum(1 for seq in archive.own if seq > self._applied_seq)
            if head - self._applied_seq > ours:
                async for record in archive.iter_records(after_seq=self._applied_seq):
                    if record.seq not in archive.own:
                        self.state.apply(record)
                    head = max(head, record.seq)
            self._applied_seq = head
            archive.own.clear()

    async def _rebuild_state(self) -> None:
        state = PartyState.bounded(self.config.party, self._reader)
        count = 0
        async with self.archive.lock:
            async for record in self.archive.iter_records():
                state.apply(record)
                count += 1
                self._applied_seq = record.seq
            self.archive.own.clear()
            self.state = state
            self._state_lost = False
        log.info("gateway.state_rebuilt", records=count, party=self.config.party)

    def _outbound_context(self, now: datetime) -> OutboundContext:
        return OutboundContext(
            party=self.config.party,
            counterparties=frozenset(c.id for c in self.config.counterparties),
            max_message_bytes=self.config.limits.max_message_bytes,
            signing_key=self.signing_key,
            state=self.state,
            now=now,
            new_id=new_envelope_id,
            roster_admins=frozenset(self.config.roster_admins),
            third_parties=frozenset(
                c.id for c in self.config.counterparties if c.role == "third-party"
            ),
            review={c.id: c.review for c in self.config.counterparties},
            review_threshold=self.config.review.threshold,
        )

    def _inbound_context(self, now: datetime) -> InboundContext:
        return InboundContext(
            party=self.config.party,
            keyring=self.keyring,
            state=self.state,
            now=now,
            max_age=self.config.limits.max_envelope_age,
            max_skew=self.config.limits.max_clock_skew,
        )

    def _mount_console(self, app: web.Application) -> None:
        own_and_theirs = [self.signing_key.public()] + [
            load_public_key(path) for c in self.config.counterparties for path in c.public_keys
        ]
        console = console_for(
            Desk(self.config, self.archive),
            live_status=self.live_status,
            keyring=Keyring(own_and_theirs),
        )
        setup_console(app, console, https=self.config.console.tls_cert is not None)

    async def live_status(self) -> LiveStatus:
        """What the console's overview shows of this process: links, backlog, receipts, key."""
        receipts = self.state.receipts
        return LiveStatus(
            party=self.config.party,
            links=tuple(self._link_state[name] for name in sorted(self._link_state)),
            backlog=dict(self._backlog),
            receipts_pending=receipts.pending_count(),
            receipts_overdue=receipts.overdue_count(),
            signing_key_id=self.signing_key.key_id,
            signing_key_days=days_to_expiry(self.signing_key, datetime.now(UTC)),
        )

    async def readiness(self) -> dict[str, bool]:
        checks = {
            "broker.local": self._status_publisher.connected,
            "signing_key": days_to_expiry(self.signing_key, datetime.now(UTC)) > 0,
        }
        for party, publisher in self.publishers.items():
            checks[f"broker.{party}"] = publisher.connected
        checks["archive"] = await self._archive_answers()
        return checks

    async def _archive_answers(self) -> bool:
        try:
            await self.archive.ping()
            answers = True
        except Exception:
            answers = False
        self.metrics.archive_up.set(1 if answers else 0)
        return answers

    async def _housekeeping(self) -> None:
        overdue_after = timedelta(seconds=self.config.limits.receipt_overdue_s)
        # First round at once: the gauges are right from the first scrape. archive_up is kept
        # here too, since Prometheus scrapes /metrics and may never probe /readyz.
        while True:
            now = datetime.now(UTC)
            await self._archive_answers()
            self.metrics.signing_key_expiry.labels(self.signing_key.key_id).set(
                self.signing_key.valid_to.timestamp()
            )
            overdue = self.state.receipts.overdue(now, overdue_after)
            for party in self.publishers:
                self.metrics.receipts_pending.labels(party).set(
                    self.state.receipts.pending_count(party)
                )
                self.metrics.receipts_overdue.labels(party).set(
                    self.state.receipts.overdue_count(party)
                )
            for pending in overdue:
                self.metrics.record_receipt_overdue(pending.counterparty)
            events = [
                outgoing.status(
                    "overdue",
                    system=p.system,
                    at=now,
                    submission_id=p.submission_id,
                    envelope_id=p.envelope_id,
                    type=p.type,
                    reason="receipt.overdue",
                    detail=f"no receipt from {p.counterparty} after {overdue_after}",
                )
                for p in overdue
            ]
            with contextlib.suppress(PublishRefused):
                await self._status_publisher.publish_all(events)
            await asyncio.sleep(HOUSEKEEPING_INTERVAL_S)

    async def _watch_backlog(self) -> None:
        assert self._local is not None
        channel = await self._local.channel()
        assert isinstance(channel, aio_pika.RobustChannel)
        while True:
            for name in self.metrics.queues:
                with contextlib.suppress(Exception):
                    self._backlog[name] = await amqp.queue_depth(channel, name)
                    self.metrics.backlog.labels(name).set(self._backlog[name])
            await asyncio.sleep(BACKLOG_INTERVAL_S)

    async def run_until_signalled(self) -> None:
        """Run until SIGTERM/SIGINT (or a failed task), then drain and stop."""
        await until_signalled(self._stopped)
        log.info("gateway.stopping", party=self.config.party)
        await self.stop()

    async def stop(self) -> None:
        for worker in self._workers:
            worker.stop()
        self._copies.stop()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*self._worker_tasks, return_exceptions=True), 30)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.http.stop()
        for channel in self._channels:
            with contextlib.suppress(Exception):
                await channel.close()
        for connection in [*self._links.values(), self._local]:
            if connection is not None:
                with contextlib.suppress(Exception):
                    await connection.close()
        await self.archive.close()
        self._reader.close()
        log.info("gateway.stopped", party=self.config.party)
