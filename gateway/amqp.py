"""The only place the gateway meets AMQP: robust connections, a transactional consumer and a
confirming publisher. Everything above this module deals in plain data.

Why a transaction on the consuming channel: the gateway's local effects of a batch (deliveries to
``gw.deliver``, copies to ``gw.rejected``/``gw.quarantine``, status events) and the ack of the
source messages are committed atomically by the broker. If the process dies before the commit,
the broker redelivers the sources and none of the local effects happened; if it dies after, the
sources are gone and every effect happened. Publisher confirms plus a separate ack cannot tell
those two cases apart, which is what would otherwise produce a second delivery after a crash.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

import aio_pika
import aiormq
import structlog
from aio_pika.abc import (
    AbstractIncomingMessage,
    AbstractRobustChannel,
    AbstractRobustConnection,
    DeliveryMode,
)

from gateway import reconnect
from gateway.core.publications import Outgoing

log = structlog.get_logger(__name__)


SHORTSTR_BYTES = 255


def shortstr(value: str | None) -> str | None:
    """``value`` as an AMQP short string, or None where it cannot be one (over 255 bytes of
    UTF-8, or a lone surrogate): one property that does not encode would fail the commit of a
    whole batch, on every redelivery."""
    if value is None or (value.isascii() and len(value) <= SHORTSTR_BYTES):
        return value
    try:
        return value if len(value.encode()) <= SHORTSTR_BYTES else None
    except UnicodeEncodeError:
        return None


def _property_values(item: Outgoing) -> dict[str, Any]:
    return {
        "message_id": shortstr(item.message_id),
        "content_type": item.content_type,
        "headers": dict(item.headers),
        "correlation_id": shortstr(item.correlation_id),
        "timestamp": item.timestamp or datetime.now(UTC),
        "delivery_mode": DeliveryMode.PERSISTENT,
    }


def to_message(item: Outgoing) -> aio_pika.Message:
    return aio_pika.Message(item.body, **_property_values(item))


def to_properties(item: Outgoing) -> aiormq.spec.Basic.Properties:
    """The properties ``to_message`` gives ``item``, without an aio-pika Message around them:
    a transaction publishes a status event per submission, and the Message and
    ``Exchange.publish`` layers cost a quarter of each publish's CPU."""
    values = _property_values(item)
    values["delivery_mode"] = int(DeliveryMode.PERSISTENT)
    # aio-pika's defaults, so that the bytes on the wire stay exactly what they were.
    return aiormq.spec.Basic.Properties(**values, priority=0)


ConnectionListener = Callable[[bool], None]


async def connect(
    url: str,
    name: str,
    on_state: ConnectionListener | None = None,
    heartbeat: int = 15,
    fail_fast: bool = True,
    ssl_context: ssl.SSLContext | None = None,
) -> AbstractRobustConnection:
    """A robust connection: aio-pika reconnects and restores channels and consumers itself,
    waiting longer between attempts the longer the broker stays down (gateway.reconnect).

    With ``fail_fast`` off the call waits until the broker first answers, which is what a
    counterparty link wants: the gateway starts, and the link comes up when the peer does.
    ``ssl_context`` is used for an ``amqps://`` URL (see ``gateway.tls``).
    """
    reconnect.quiet_attempt_logs()

    def open_connection() -> Awaitable[reconnect.WatchedConnection]:
        return aio_pika.connect_robust(
            url,
            client_properties={"connection_name": name},
            heartbeat=heartbeat,
            reconnect_interval=reconnect.FIRST_DELAY_S,
            ssl_context=ssl_context,
            connection_class=reconnect.WatchedConnection,
        )

    if fail_fast:
        connection = await open_connection()
    else:
        connection = await reconnect.first_connection(open_connection, name, url)
    connection.watch_while_down(name)
    if on_state is not None:
        listener = on_state
        on_state(True)

        def closed(*_: Any) -> None:
            listener(False)

        def reconnected(*_: Any) -> None:
            listener(True)

        connection.close_callbacks.add(closed)
        connection.reconnect_callbacks.add(reconnected)
    return connection


async def cached_exchange(
    channel: AbstractRobustChannel,
    cache: dict[str, aio_pika.abc.AbstractExchange],
    name: str,
) -> aio_pika.abc.AbstractExchange:
    """An exchange handle (no declare: provisioning did that), reused until the cache is
    cleared when its channel is reopened."""
    exchange = cache.get(name)
    if exchange is None:
        exchange = cache[name] = await channel.get_exchange(name, ensure=False)
    return exchange


class StaleBatch(Exception):
    """The channel the batch arrived on is gone; the broker redelivers its messages."""


class CopyGuard(Protocol):
    """Publishes some of a batch's messages with confirms before the batch's transaction."""

    def guards(self, item: Outgoing) -> bool: ...

    async def publish(self, items: Sequence[Outgoing]) -> bool:
        """True once every item is confirmed; False to give the batch back (stopping)."""
        ...


class TransactionalChannel:
    """A consuming channel in AMQP transaction mode, restored after reconnects.

    A transaction gets no per-message refusal: a message a full queue refuses inside it is
    dropped without a word. Messages a ``guard`` guards (the copies for gw.rejected and
    gw.quarantine) are therefore published through it, with confirms, before the transaction.
    """

    def __init__(
        self, connection: AbstractRobustConnection, prefetch: int, guard: CopyGuard | None = None
    ) -> None:
        self._connection = connection
        self._prefetch = prefetch
        self._guard = guard
        self._channel: AbstractRobustChannel | None = None
        self._tx_underlay: aiormq.abc.AbstractChannel | None = None
        self._ready = asyncio.Event()
        # One transaction at a time: a worker that pipelines its batches may give a message
        # back (a nack and its commit) while the previous batch is between its first publish
        # and its commit, and that commit must not take the other batch's publishes with it.
        self._transaction = asyncio.Lock()

    async def open(self) -> None:
        channel = await self._connection.channel(publisher_confirms=False)
        assert isinstance(channel, aio_pika.RobustChannel)
        self._channel = channel
        channel.close_callbacks.add(self._lost)
        channel.reopen_callbacks.add(self._reselect)
        await channel.set_qos(prefetch_count=self._prefetch)
        await self._select()

    def _lost(self, *_: Any) -> None:
        # aio-pika restores the consumer before the reopen callbacks run, so deliveries on the
        # new channel can arrive before it is in transaction mode again. Until then nothing is
        # committed, and no delivery is told current or stale (see ``current``).
        self._ready.clear()
        self._tx_underlay = None

    async def _reselect(self, *_: Any) -> None:
        self._ready.clear()
        await self._select()

    async def _select(self) -> None:
        assert self._channel is not None
        await self._channel.transaction().select()
        self._tx_underlay = await self._channel.get_underlay_channel()
        self._ready.set()

    async def consume(
        self, queue_name: str, callback: Callable[[AbstractIncomingMessage], Awaitable[None]]
    ) -> None:
        assert self._channel is not None
        queue = await self._channel.declare_queue(queue_name, passive=True)
        await queue.consume(callback, no_ack=False)

    async def current(
        self, messages: Sequence[AbstractIncomingMessage]
    ) -> list[AbstractIncomingMessage]:
        """The messages delivered on the channel as it is now, once it is usable. The others
        came on a channel lost since, and the broker has them back. None may be left unsettled
        on the current channel: a later ``ack(multiple=True)`` would acknowledge it unseen."""
        await self._ready.wait()
        return [message for message in messages if self.is_current(message)]

    def is_current(self, message: AbstractIncomingMessage) -> bool:
        try:
            return message.channel is self._tx_underlay
        except aio_pika.exceptions.ChannelInvalidStateError:
            return False

    async def commit(
        self, outgoing: Sequence[Outgoing], ack: AbstractIncomingMessage | None
    ) -> None:
        """Publish ``outgoing`` and ack everything up to ``ack`` in one broker transaction."""
        try:
            await asyncio.wait_for(self._ready.wait(), timeout=30)
        except TimeoutError as exc:
            raise StaleBatch from exc  # the channel is gone, and the batch's messages with it
        assert self._channel is not None
        if ack is not None and not self.is_current(ack):
            raise StaleBatch
        if self._guard is not None:
            guarded = [item for item in outgoing if self._guard.guards(item)]
            if guarded and not await self._guard.publish(guarded):
                raise StaleBatch  # given back: the closing channel returns it to its queue
            outgoing = [item for item in outgoing if not self._guard.guards(item)]
        async with self._transaction:
            await self._publish_and_commit(outgoing, ack)

    async def _publish_and_commit(
        self, outgoing: Sequence[Outgoing], ack: AbstractIncomingMessage | None
    ) -> None:
        assert self._channel is not None
        # The guard's publish may have outlived the channel: publishes meant for this batch
        # must not wait in a newer channel's transaction for someone else's commit.
        underlay = self._tx_underlay
        if underlay is None or (ack is not None and not self.is_current(ack)):
            raise StaleBatch
        try:
            # Each publish waits for its frame's write. Without that wait (aiormq's wait=False)
            # a write lost to a broker restart left the commit waiting for a reply for good,
            # holding the transaction lock: tests/faults/test_outages.py hung in 3 runs of 5.
            for item in outgoing:
                await underlay.basic_publish(
                    item.body,
                    exchange=item.exchange,
                    routing_key=item.routing_key,
                    properties=to_properties(item),
                )
            if ack is not None:
                await ack.ack(multiple=True)
            await self._channel.transaction().commit()
        except (aiormq.exceptions.AMQPError, aio_pika.exceptions.ChannelInvalidStateError) as exc:
            raise StaleBatch from exc

    async def nack(self, message: AbstractIncomingMessage) -> None:
        """Return one message to its queue (committed at once, alone)."""
        assert self._channel is not None
        async with self._transaction:
            if self.is_current(message):
                await message.nack(requeue=True)
                await self._channel.transaction().commit()

    async def close(self) -> None:
        if self._channel is not None and not self._channel.is_closed:
            await self._channel.close()


class PublishRefused(Exception):
    """The broker did not confirm a publish (nack, return, or a lost channel)."""


_PUBLISH_FAILURES = (
    TimeoutError,
    aiormq.exceptions.AMQPError,
    aio_pika.exceptions.ChannelInvalidStateError,
    ConnectionError,
    RuntimeError,
)


class ConfirmingPublisher:
    """Publishes with publisher confirms, many in flight at once."""

    def __init__(self) -> None:
        self._connection: AbstractRobustConnection | None = None
        self._channel: AbstractRobustChannel | None = None
        self._exchanges: dict[str, aio_pika.abc.AbstractExchange] = {}

    async def open(self, connection: AbstractRobustConnection) -> None:
        channel = await connection.channel(publisher_confirms=True)
        assert isinstance(channel, aio_pika.RobustChannel)
        self._connection = connection
        self._channel = channel

    @property
    def connected(self) -> bool:
        return (
            self._connection is not None
            and not self._connection.is_closed
            and self._connection.connected.is_set()
            and self._channel is not None
            and not self._channel.is_closed
        )

    async def publish_all(self, outgoing: Sequence[Outgoing], timeout: float = 30.0) -> None:
        """Publish everything and wait for every confirm; raise PublishRefused otherwise."""
        if not outgoing:
            return
        refused = await self.refused(outgoing, timeout)
        if refused:
            raise PublishRefused(f"broker refused {len(refused)} of {len(outgoing)}")

    async def refused(self, outgoing: Sequence[Outgoing], timeout: float = 30.0) -> list[Outgoing]:
        """Publish everything and wait for every confirm: the items the broker refused (a nack,
        as from a full queue with overflow reject-publish). PublishRefused if none can be
        published or confirmed (no connection, a lost channel, a timeout)."""
        if not outgoing:
            return []
        if not self.connected:
            raise PublishRefused("not connected")
        try:
            exchanges = [await self._exchange(item.exchange) for item in outgoing]
            confirms = [
                exchange.publish(
                    to_message(item),
                    routing_key=item.routing_key,
                    mandatory=False,
                    timeout=timeout,
                )
                for exchange, item in zip(exchanges, outgoing, strict=True)
            ]
            results = await asyncio.gather(*confirms, return_exceptions=True)
            refused = []
            for item, result in zip(outgoing, results, strict=True):
                if isinstance(result, aiormq.exceptions.DeliveryError):
                    refused.append(item)  # a nack: this message, not the channel
                elif isinstance(result, BaseException):
                    raise result
                elif not isinstance(result, aiormq.spec.Basic.Ack):
                    refused.append(item)
        except _PUBLISH_FAILURES as exc:
            self._exchanges.clear()
            raise PublishRefused(f"{type(exc).__name__}: {exc}") from exc
        return refused

    async def _exchange(self, name: str) -> aio_pika.abc.AbstractExchange:
        if self._channel is None:
            raise PublishRefused("publisher channel is not open")
        return await cached_exchange(self._channel, self._exchanges, name)

    async def close(self) -> None:
        if self._channel is not None and not self._channel.is_closed:
            await self._channel.close()


async def queue_depth(channel: AbstractRobustChannel, name: str) -> int:
    """Messages ready in ``name`` (a passive declare, not restored after reconnects)."""
    queue = await channel.declare_queue(name, passive=True, robust=False)
    count = queue.declaration_result.message_count
    return int(count or 0)
