"""The one worker skeleton the outbound, inbound and control workers share.

Modelled on arq's ``Worker``: a subclass says where its messages come from (``consume``) and
what one batch of them means (``take``); the base runs the loop and owns what every worker must
do the same way:

- **the loop**: ``run()`` takes batches until ``stop()``, pipelined (the next batch is decided
  and archived while one waits for its confirm and commit); ``run(burst=True)`` drains what is
  waiting (redeliveries included) and returns once nothing is, for tests and one-off runs;
- **the in-flight gauge**: ``in_flight(count)`` around a batch, or ``flying(count)`` from a
  pipelined batch's take to its finish, counted until it was acked or given back (either way it
  is no longer in the gateway's hands);
- **hold and retry of the archive**: ``until_archived(attempt, pending)`` keeps a batch whose
  decide-and-archive step failed unacknowledged and tries it again (see ``Hold``), rebuilding
  the derived state (``on_state_lost``) and catching up (``prepare``) before each attempt;
- **give-back**: ``give_back`` returns messages to their queue (a lost channel does so on its
  own), ``retry_later`` returns the ones to try again alone;
- **forwarding**: ``forward`` publishes to a counterparty until it confirms, as the one
  ``RetryPolicy`` says, so the backlog stays in the source queue while the peer is down;
- **the commit**: ``commit`` publishes a batch's local effects and its ack in one broker
  transaction; a channel lost meanwhile leaves the batch to its redelivery.

The stages a subclass runs (decide -> archive -> forward -> commit) stay its own methods; its
``take`` returns the ones after the archive as a ``Finish`` for the loop to pipeline.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import Any, Generic, Protocol, TypeVar

import structlog
from aio_pika.abc import AbstractIncomingMessage

from gateway.amqp import PublishRefused, StaleBatch
from gateway.archive import Appended, Entry
from gateway.core.publications import Outgoing
from gateway.metrics import GatewayMetrics, Stage
from gateway.workers.batches import Hold
from gateway.workers.events import Event, emit
from gateway.workers.ports import Archive, Channel
from gateway.workers.retry import RetryPolicy, until_sent

log = structlog.get_logger(__name__)

Finish = Callable[[], Awaitable[None]]
"""The rest of an archived batch's work: forward, commit, ack (see ``Worker.run``)."""

BatchT = TypeVar("BatchT")
BatchT_co = TypeVar("BatchT_co", covariant=True)
T = TypeVar("T")


class BatchSource(Protocol[BatchT_co]):
    """Where batches come from: a ``Batcher`` or a ``RoundRobin``."""

    def next_batch_or(
        self, stopping: asyncio.Event, *, burst: bool = False
    ) -> Awaitable[BatchT_co | None]: ...


class Worker(Generic[BatchT]):
    """The loop, the gauge, the hold, the give-back, the forward and the commit of a worker.

    ``name`` prefixes the worker's log events (``outbound.archive_failed`` ...) and labels its
    in-flight gauge.
    """

    name: str

    def __init__(
        self,
        *,
        channel: Channel,
        source: BatchSource[BatchT],
        archive: Archive,
        metrics: GatewayMetrics,
        on_state_lost: Callable[[], Any],
        prepare: Callable[[], Awaitable[None]],
        max_attempts: int,
        retry: RetryPolicy,
    ) -> None:
        self._channel = channel
        self._source = source
        self._archive = archive
        self._metrics = metrics
        self._on_state_lost = on_state_lost
        self._prepare = prepare
        self._max_attempts = max_attempts
        self._retry = retry
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        """Finish the batch in hand, take no other, and stop waiting on a peer or the archive."""
        self._stopping.set()

    async def run(self, *, burst: bool = False) -> None:
        """Consume until stopped; in ``burst`` mode, return once nothing is waiting.

        Pipelined: ``take`` decides and archives a batch and may return the rest of its work
        (a ``Finish``: forward, commit, ack), which runs while the next batch is decided and
        archived. Finishes run one at a time in the order of their batches, so commits and
        acks keep that order, and at most one archived batch waits behind the one finishing.
        """
        await self.consume()
        finishing: asyncio.Future[None] | None = None
        try:
            while True:
                batch = await self._source.next_batch_or(self._stopping, burst=burst)
                if batch is None:
                    if finishing is None or self._stopping.is_set():
                        break
                    # In burst mode, what the last batch gives back may be waiting again.
                    await finishing
                    finishing = None
                    continue
                finish = await self.take(batch)
                if finishing is not None:
                    await finishing
                finishing = None if finish is None else asyncio.ensure_future(finish())
        except BaseException:
            if finishing is not None:
                finishing.cancel()  # its batch is not acked: the broker redelivers it
            raise
        if finishing is not None:
            await finishing

    async def consume(self) -> None:
        """Start consuming the worker's queues into its batch source."""
        raise NotImplementedError

    async def take(self, batch: BatchT) -> Finish | None:
        """Handle one batch, to its ack or its give-back, or to its archive and return the
        rest (see ``run``)."""
        raise NotImplementedError

    def _event(self, what: str) -> str:
        # One spelling of a worker's log event names: "<worker>.<what>".
        return self.name + "." + what

    @contextlib.contextmanager
    def in_flight(self, count: int) -> Iterator[None]:
        landed = self.flying(count)
        try:
            yield
        finally:
            landed()

    def flying(self, count: int) -> Callable[[], None]:
        """Count ``count`` messages in the in-flight gauge until the returned function is
        called (once): a pipelined batch is in flight from its take to its finish."""
        gauge = self._metrics.in_flight.labels(self.name)
        gauge.inc(count)
        done = False

        def landed() -> None:
            nonlocal done
            if not done:
                done = True
                gauge.dec(count)

        return landed

    async def until_archived(
        self,
        attempt: Callable[[], Awaitable[T]],
        pending: Callable[[], Sequence[AbstractIncomingMessage]],
    ) -> T | None:
        """``attempt()``'s result once it went through, or None when the batch was given back.

        Nothing leaves unarchived: while the archive is unavailable the batch (``pending()``,
        what is left of it) is held unacknowledged and tried again, with the derived state
        rebuilt from what the archive really holds. It is given back when the gateway stops,
        its channel is lost, or it keeps failing while the archive answers (``Hold``).
        """
        hold = Hold(self._archive, self._max_attempts, self._retry)
        while True:
            try:
                await self._prepare()
                return await attempt()
            except Exception:
                log.exception(
                    self._event("archive_failed"), batch=len(pending()), attempt=hold.failures
                )
                self._on_state_lost()
            messages = pending()
            if (
                not messages
                or not await hold.again()
                or self._stopping.is_set()
                or not self._channel.is_current(messages[0])
            ):
                await self.give_back(messages)
                return None

    async def archive(self, entries: Sequence[Entry]) -> list[Appended]:
        """Append a batch's entries in one transaction, timed."""
        started = time.perf_counter()
        appended = await self._archive.append(entries)
        elapsed = time.perf_counter() - started
        self._metrics.archive_write_seconds.observe(elapsed)
        self._metrics.archive_batch_size.observe(len(entries))
        self._metrics.stage_seconds.labels("archive").observe(elapsed)
        return appended

    async def retry_later(self, messages: Sequence[AbstractIncomingMessage]) -> None:
        """Give back messages to be tried again alone, while the rest of the batch goes on."""
        for message in messages:
            with contextlib.suppress(Exception):  # a lost channel gives it back anyway
                await self._channel.nack(message)

    async def give_back(self, messages: Sequence[AbstractIncomingMessage]) -> None:
        """Return messages to their queue, unacknowledged."""
        for message in messages:
            try:
                await self._channel.nack(message)
            except Exception:  # the channel is gone; the broker requeues on its own
                log.warning(self._event("nack_failed"), message_id=message.message_id)
                return

    async def forward(
        self, send: Callable[[], Awaitable[None]], on_refused: Callable[[int, PublishRefused], None]
    ) -> bool:
        """``send()`` until the counterparty confirms (True), or False once the worker stops or
        the policy gives up: then the batch goes back to its queue."""
        return await until_sent(send, self._retry, self._stopping, on_refused)

    async def commit(
        self,
        effects: Sequence[Outgoing],
        ack: AbstractIncomingMessage,
        events: Sequence[Event] = (),
        *,
        stage: Stage | None = "publish",
        channel: Channel | None = None,
        **lost: Any,
    ) -> bool:
        """The batch's metrics and logs (``events``), then its effects and the ack (of ``ack``
        and every message before it) in one broker transaction, on ``channel`` (the worker's
        unless given): False when the channel was lost and the batch will be redelivered."""
        emit(events, self._metrics, log)
        try:
            timer = self._metrics.time_stage(stage) if stage else contextlib.nullcontext()
            with timer:
                await (channel or self._channel).commit(effects, ack)
        except StaleBatch:
            log.warning(self._event("channel_lost"), **lost)
            return False
        return True
