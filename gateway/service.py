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
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import structlog
from aio_pika.abc import AbstractRobustConnection
from aiohttp import web

from contracts.registry import all_specs
from gateway import amqp
from gateway.amqp import ConfirmingPublisher, TransactionalChannel
from gateway.archive.scan import ArchiveReader
from gateway.config import ConfigError, GatewayConfig
from gateway.console.app import console_for, https_context, setup_console
from gateway.console.overview import Link, LiveStatus
from gateway.core.inbound_decision import InboundContext
from gateway.core.keys import Keyring, SigningKey, days_to_expiry, load_public_key, load_signing_key
from gateway.core.outbound_decision import OutboundContext
from gateway.core.ratelimit import RateLimiter
from gateway.core.stamping import new_envelope_id
from gateway.core.state import PartyState
from gateway.desk.operations import Desk
from gateway.followed_archive import ArchiveFollower, FollowedArchive
from gateway.health import Health
from gateway.metrics import GatewayMetrics
from gateway.submission_client import user_from_url
from gateway.tls import Endpoint
from gateway.web import HttpServer
from gateway.workers.batches import Batcher, RoundRobin
from gateway.workers.checkpoints import CheckpointSender
from gateway.workers.control import ControlWorker
from gateway.workers.copies import CopyKeeper
from gateway.workers.inbound import InboundWorker
from gateway.workers.outbound import OutboundWorker
from gateway.workers.ports import Decisions

log = structlog.get_logger(__name__)

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


def own_signing_key(config: GatewayConfig) -> SigningKey:
    """The configured signing key, refused at start when it belongs to another Party."""
    key = load_signing_key(config.keys.signing_key)
    if key.party != config.party:
        raise ConfigError(
            f"keys.signing_key {config.keys.signing_key} is {key.party}'s key "
            f"{key.key_id}, but this gateway is {config.party}; configure one "
            f"of {config.party}'s own keys"
        )
    return key


class Gateway:
    def __init__(self, config: GatewayConfig, decisions: Decisions | None = None) -> None:
        self.config = config
        self._decisions = decisions or Decisions()
        self.signing_key: SigningKey = own_signing_key(config)
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
        self._reader = ArchiveReader(config.archive.url)
        self._follower = ArchiveFollower(config.party, self.archive, self._reader)
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
            prepare=self._follower.prepare,
            interval_s=config.checkpoints.interval_s,
        )
        self._link_state: dict[str, Link] = {}
        self._health = Health(
            archive=self.archive,
            metrics=self.metrics,
            signing_key=self.signing_key,
            status_publisher=self._status_publisher,
            publishers=self.publishers,
            receipts=lambda: self.state.receipts,
            overdue_after=timedelta(seconds=config.limits.receipt_overdue_s),
        )
        self.http = HttpServer(
            config.http.host,
            config.http.port,
            self.metrics,
            self.readiness,
            extend=self._mount_console if config.console.enabled else None,
            ssl_context=https_context(config.console),
        )
        self._stopped = asyncio.Event()

    @property
    def state(self) -> PartyState:
        """What the gateway knows now, rebuilt from the archive and kept in step with it."""
        return self._follower.state

    async def start(self) -> None:
        await self.archive.open()
        await self._follower.rebuild()
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
        outbound = self._outbound_worker(await self._transactional_channel())
        # One channel per counterparty: an ack(multiple) acks only that counterparty's frames.
        prefetch = self.config.broker.inbound_prefetch
        inbound = self._inbound_worker(
            {c.id: await self._transactional_channel(prefetch) for c in self.config.counterparties}
        )
        control = self._control_worker(await self._transactional_channel())
        if self.config.checkpoints.interval_s > 0:
            self._spawn(self.checkpoints.run())
        self._workers = [outbound, inbound, control]
        self._worker_tasks = [asyncio.ensure_future(worker.run()) for worker in self._workers]
        for task in self._worker_tasks:
            task.add_done_callback(self._task_done)
        self._spawn(self._health.housekeeping())
        self._spawn(self._health.watch_backlog(self._local))
        await self.http.start()
        log.info("gateway.started", party=self.config.party, http_port=self.http.port)

    def _outbound_worker(self, channel: TransactionalChannel) -> OutboundWorker:
        broker, limits = self.config.broker, self.config.limits
        return OutboundWorker(
            party=self.config.party,
            channel=channel,
            publishers=self.publishers,
            archive=self.archive,
            metrics=self.metrics,
            batcher=Batcher(broker.batch_size, broker.batch_linger_ms / 1000),
            context=self._outbound_context,
            on_state_lost=self._follower.lose,
            prepare=self._follower.prepare,
            max_message_bytes=limits.max_message_bytes,
            max_attempts=limits.max_attempts,
            decide=self._decisions.submission,
        )

    def _inbound_worker(self, channels: dict[str, TransactionalChannel]) -> InboundWorker:
        broker, limits = self.config.broker, self.config.limits
        senders = list(channels)
        linger_s = broker.batch_linger_ms / 1000
        limiter = RateLimiter(
            senders, limits.inbound_envelopes_per_s, limits.inbound_burst, time.monotonic()
        )
        return InboundWorker(
            party=self.config.party,
            channels=channels,
            publishers=self.publishers,
            archive=self.archive,
            metrics=self.metrics,
            batcher=RoundRobin(
                {s: Batcher(broker.batch_size, linger_s, INBOUND_BATCH_BYTES) for s in senders},
                limiter,
                self.metrics.set_rate_limited,
            ),
            signing_key=self.signing_key,
            context=self._inbound_context,
            on_state_lost=self._follower.lose,
            prepare=self._follower.prepare,
            max_message_bytes=limits.max_message_bytes,
            max_frame_envelopes=limits.max_frame_envelopes,
            max_attempts=limits.max_attempts,
            decide=self._decisions.envelope,
        )

    def _control_worker(self, channel: TransactionalChannel) -> ControlWorker:
        return ControlWorker(
            party=self.config.party,
            gateway_user=user_from_url(self.config.broker.url),
            channel=channel,
            publishers=self.publishers,
            archive=self.archive,
            metrics=self.metrics,
            own_keys=Keyring([self.signing_key.public()]),
            max_envelope_age=self.config.limits.max_envelope_age,
            outbound_context=self._outbound_context,
            inbound_context=self._inbound_context,
            on_state_lost=self._follower.lose,
            prepare=self._follower.prepare,
            review_roles=self.config.review.roles,
        )

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
            backlog=dict(self._health.backlog),
            receipts_pending=receipts.pending_count(),
            receipts_overdue=receipts.overdue_count(),
            signing_key_id=self.signing_key.key_id,
            signing_key_days=days_to_expiry(self.signing_key, datetime.now(UTC)),
        )

    async def readiness(self) -> dict[str, bool]:
        return await self._health.readiness()

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
