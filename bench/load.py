"""Offering messages and timing their arrival: the publisher, the final consumers, the trackers.

Latency is measured per message, from the moment the publisher hands it to the broker to the
moment the consumer of the final queue receives it, both read from ``time.time()`` in this
process. The publish time travels in the integer header ``x-bench-sent-at-ns`` where the message
reaches the final queue as published (bare forwarder, shovel). Through the gateway it does not:
the gateway re-issues every submission as a signed envelope and does not copy back-office
headers across, so the consumer recognises an envelope by ``originator.submission_id`` (the
submission's AMQP ``message_id``) and looks the publish time up.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import aio_pika
import aiormq
from aio_pika.abc import AbstractConnection, AbstractExchange, AbstractIncomingMessage

from bench.messages import SENT_AT_HEADER
from contracts.amqp import CONTENT_TYPE

Arrival = tuple[str, float | None]
"""The id of one published message that an AMQP message carries, and its header time if any."""

KeysOf = Callable[[AbstractIncomingMessage], Iterable[Arrival]]


@dataclass(frozen=True)
class Target:
    """Where a scenario's messages are published: a vhost, as a user, to an exchange."""

    url: str
    exchange: str
    routing_key: str
    user_id: str


class PublishFailed(Exception):
    """The broker refused or did not confirm a published message."""


class Publisher:
    """Publishes with confirms, at most ``window`` unconfirmed at a time, optionally paced."""

    def __init__(self, connection: AbstractConnection, exchange: AbstractExchange, target: Target):
        self._connection = connection
        self._exchange = exchange
        self._target = target

    @classmethod
    async def open(cls, target: Target) -> Publisher:
        connection = await aio_pika.connect(target.url)
        channel = await connection.channel(publisher_confirms=True)
        if target.exchange:
            exchange = await channel.get_exchange(target.exchange, ensure=False)
        else:
            exchange = channel.default_exchange
        return cls(connection, exchange, target)

    async def close(self) -> None:
        await self._connection.close()

    async def send(
        self,
        messages: Iterable[tuple[str, bytes]],
        sent_at: dict[str, float] | None = None,
        rate: float | None = None,
        window: int = 1000,
        routing_key: str | None = None,
    ) -> None:
        """Publish ``(message_id, body)`` pairs; record each publish time in ``sent_at``.

        ``routing_key`` replaces the target's: the gateway refuses a submission whose routing
        key is not its type, so the assignment travels under its own.

        With ``rate`` the i-th message is due ``i / rate`` seconds after the first: a paced
        (open-loop) load that does not slow down when the system under test does.
        """
        slots = asyncio.Semaphore(window)
        failures: list[str] = []
        pending: set[asyncio.Task[Any]] = set()
        loop = asyncio.get_running_loop()
        start = loop.time()
        key = routing_key or self._target.routing_key

        def settled(future: asyncio.Task[Any]) -> None:
            pending.discard(future)
            slots.release()
            if future.cancelled():
                failures.append("cancelled")
            elif future.exception() is not None:
                failures.append(repr(future.exception()))
            elif not isinstance(future.result(), aiormq.spec.Basic.Ack):
                failures.append(type(future.result()).__name__)

        for index, (message_id, body) in enumerate(messages):
            if rate is not None:
                delay = start + index / rate - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
            await slots.acquire()
            if failures:
                break
            now_ns = time.time_ns()
            if sent_at is not None:
                sent_at[message_id] = now_ns / 1e9
            message = aio_pika.Message(
                body,
                message_id=message_id,
                content_type=CONTENT_TYPE,
                user_id=self._target.user_id,
                headers={SENT_AT_HEADER: now_ns},
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            )
            future = asyncio.ensure_future(
                self._exchange.publish(message, routing_key=key, timeout=120)
            )
            pending.add(future)
            future.add_done_callback(settled)
        if pending:
            await asyncio.wait(set(pending))
        if failures:
            raise PublishFailed(f"{len(failures)} publishes failed, first: {failures[0]}")


class Stalled(Exception):
    """Messages stopped arriving before all of them did."""


@dataclass
class Tracker:
    """The arrivals of one phase's messages at one final consumer."""

    name: str
    sent_at: dict[str, float]
    expected: frozenset[str]
    latencies: list[float] = field(default_factory=list)
    duplicates: int = 0
    first_arrival: float | None = None
    last_arrival: float | None = None
    _arrived: set[str] = field(default_factory=set)
    _done: asyncio.Event = field(default_factory=asyncio.Event)

    def arrive(self, key: str, header_time: float | None, now: float) -> None:
        if key not in self.expected:
            return  # a warm-up message or one of an earlier phase
        if key in self._arrived:
            self.duplicates += 1
            return
        self._arrived.add(key)
        sent = header_time if header_time is not None else self.sent_at[key]
        self.latencies.append(now - sent)
        self.first_arrival = self.first_arrival or now
        self.last_arrival = now
        if len(self._arrived) == len(self.expected):
            self._done.set()

    @property
    def arrived(self) -> int:
        return len(self._arrived)

    @property
    def complete(self) -> bool:
        return self._done.is_set()

    async def wait(self, stall_s: float, check: Callable[[], None]) -> None:
        """Until every message arrived; Stalled after ``stall_s`` seconds without progress.

        ``check`` runs every second and raises when the system under test is gone.
        """
        last_count, last_progress = -1, time.monotonic()
        while not self.complete:
            check()
            if self.arrived != last_count:
                last_count, last_progress = self.arrived, time.monotonic()
            elif time.monotonic() - last_progress > stall_s:
                raise Stalled(
                    f"{self.name}: {self.arrived} of {len(self.expected)} arrived, "
                    f"then nothing for {stall_s:.0f} s"
                )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._done.wait(), 1.0)


class Sink:
    """A consumer of a final queue that hands each arrival to the current phase's trackers."""

    def __init__(self, keys_of: KeysOf) -> None:
        self._keys_of = keys_of
        self.tracker: Tracker | None = None

    async def on_message(self, message: AbstractIncomingMessage) -> None:
        now = time.time()
        tracker = self.tracker
        if tracker is None:
            return
        for key, header_time in self._keys_of(message):
            tracker.arrive(key, header_time, now)


def as_published(message: AbstractIncomingMessage) -> Iterator[Arrival]:
    """A message that reached the final queue unchanged (bare forwarder, shovel)."""
    if message.message_id is not None:
        sent_ns = (message.headers or {}).get(SENT_AT_HEADER)
        yield message.message_id, sent_ns / 1e9 if isinstance(sent_ns, int) else None


def envelopes_in_frame(message: AbstractIncomingMessage) -> Iterator[Arrival]:
    """A frame on the peer's gw.inbound: one arrival per ``information.share`` envelope."""
    frame = json.loads(message.body)
    for envelope in frame.get("envelopes", ()):
        if envelope.get("type") == "information.share":
            yield envelope["originator"]["submission_id"], None


def delivered_envelope(message: AbstractIncomingMessage) -> Iterator[Arrival]:
    """An envelope delivered to a back-office queue bound to gw.deliver."""
    envelope = json.loads(message.body)
    if envelope.get("type") == "information.share":
        yield envelope["originator"]["submission_id"], None


def delivered_status(message: AbstractIncomingMessage) -> Iterator[Arrival]:
    """A ``delivered`` status on the sender's gw.status: the receipt came back and settled."""
    event = json.loads(message.body)
    if event.get("status") == "delivered" and event.get("submission_id"):
        yield event["submission_id"], None


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) by linear interpolation between closest ranks."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)
