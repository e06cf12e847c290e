"""The test's view of the brokers, as the local operator (guest): queues, collectors, purges.

Writing a broker test: assert only on what you awaited. Every collector a test asserts on is
first awaited with ``Collector.wait_for`` (messages on different queues have no order, so
waiting on one queue says nothing about another). A negative check ("nothing else arrived")
sits behind a sentinel: a later message on the same path that must arrive on the SAME
collector first, or a state the gateway reports (the archived outcome of the message). Never
sleep and hope; every test asserts something that can fail.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractIncomingMessage

from gateway import topology
from tests.support.services import ADMIN_URL
from tests.support.waiting import wait_until

WORK_QUEUES = (
    topology.SUBMIT,
    topology.REJECTED,
    topology.QUARANTINE,
    topology.CONTROL,
)


def body_has(**fields: Any) -> Callable[[AbstractIncomingMessage], bool]:
    """A ``wait_for`` predicate: the JSON body carries every one of ``fields``."""

    def matches(message: AbstractIncomingMessage) -> bool:
        body = json.loads(message.body)
        return all(body.get(name) == value for name, value in fields.items())

    return matches


def has_id(message_id: str) -> Callable[[AbstractIncomingMessage], bool]:
    """A ``wait_for`` predicate: the message carries ``message_id``."""
    return lambda message: message.message_id == message_id


@dataclass
class Collector:
    """Everything that arrives on one queue, kept in arrival order."""

    queue: str
    messages: list[AbstractIncomingMessage] = field(default_factory=list)

    async def on_message(self, message: AbstractIncomingMessage) -> None:
        self.messages.append(message)
        await message.ack()

    async def wait_for(
        self,
        predicate: Callable[[AbstractIncomingMessage], bool],
        count: int = 1,
        timeout: float = 20.0,
        what: str = "a matching message",
    ) -> list[AbstractIncomingMessage]:
        """The first ``count`` arrived messages matching ``predicate``, once they have arrived."""

        def matching() -> list[AbstractIncomingMessage]:
            return [m for m in self.messages if predicate(m)]

        try:
            await wait_until(lambda: len(matching()) >= count, timeout=timeout, message=what)
        except AssertionError as error:
            raise AssertionError(f"{error} on {self.queue}; arrived: {self.describe()}") from None
        return matching()[:count]

    async def wait_for_ids(self, ids: Iterable[str], timeout: float = 20.0) -> None:
        """Wait until every message id in ``ids`` has arrived here (a duplicate counts once)."""
        for wanted in ids:
            await self.wait_for(has_id(wanted), timeout=timeout, what=f"message id {wanted}")

    def describe(self) -> list[tuple[str, str]]:
        """(message id, reason header) of every arrival, for failure messages."""
        return list(zip(self.ids(), self.reasons(), strict=True))

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(m.body) for m in self.messages]

    def ids(self) -> list[str]:
        return [m.message_id or "" for m in self.messages]

    def reasons(self) -> list[str]:
        return [str((m.headers or {}).get(topology.REASON_HEADER)) for m in self.messages]


class Vhost:
    """One Party's broker as the operator sees it."""

    def __init__(self, name: str, senders: Iterable[str] = ()) -> None:
        self.name = name
        self.inbound = tuple(topology.inbound_from(party) for party in senders)
        self.connection: AbstractConnection | None = None
        self.channel: AbstractChannel | None = None

    async def open(self) -> None:
        self.connection = await aio_pika.connect(ADMIN_URL.format(vhost=self.name))
        self.channel = await self.connection.channel()

    async def close(self) -> None:
        if self.connection is not None:
            await self.connection.close()

    async def purge(self, queues: Iterable[str] | None = None) -> None:
        """Empty ``queues``: by default the work queues and every inbound queue."""
        assert self.channel is not None
        for name in (*WORK_QUEUES, *self.inbound) if queues is None else queues:
            queue = await self.channel.declare_queue(name, passive=True)
            await queue.purge()

    async def collect(self, queue: str) -> Collector:
        """Consume an existing queue (e.g. gw.rejected) into a collector."""
        assert self.channel is not None
        collector = Collector(queue)
        declared = await self.channel.declare_queue(queue, passive=True)
        await declared.consume(collector.on_message)
        return collector

    async def bind_collector(self, exchange: str, routing_key: str = "#") -> Collector:
        """A fresh exclusive queue bound to ``exchange``: a back-office inbox or status feed."""
        assert self.channel is not None
        queue = await self.channel.declare_queue(
            f"test.{uuid.uuid4().hex[:12]}", exclusive=True, auto_delete=True
        )
        await queue.bind(exchange, routing_key=routing_key)
        collector = Collector(queue.name)
        await queue.consume(collector.on_message)
        return collector

    async def depth(self, queue: str) -> int:
        assert self.connection is not None
        channel = await self.connection.channel()
        try:
            declared = await channel.declare_queue(queue, passive=True)
            return int(declared.declaration_result.message_count or 0)
        finally:
            await channel.close()
