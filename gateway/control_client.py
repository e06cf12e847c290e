"""The operator tools' side of ``gw.control``: send requests to the running gateway as its own
broker user, and collect each request's answer from ``gw.status`` by its correlation_id.

The answers queue is exclusive and named ``gw.answers.<random>``: the gateway user may only
configure ``gw.*`` names, so a server-named (``amq.gen-*``) queue is not available to it.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable, Collection, Coroutine, Iterable
from types import TracebackType
from typing import Any, Self

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractIncomingMessage

from contracts.amqp import (
    CONTENT_TYPE,
    CONTROL_EXCHANGE,
    OPERATOR_SYSTEM,
    STATUS_EXCHANGE,
    status_routing_key,
)
from gateway.core.control_requests import ControlRequest
from gateway.submission_client import user_from_url
from gateway.tls import Endpoint

# Statuses that answer a control request; their routing keys on gw.status are
# operator.<status>.<type> (contracts.amqp.status_routing_key).
ANSWER_STATUSES = ("replayed", "blocked", "rejected", "sent", "duplicate", "held")

Answer = dict[str, Any]

# Requests whose confirms are awaited together by send_all.
WINDOW = 512


class ControlClient:
    def __init__(
        self, endpoint: Endpoint, on_answer: Callable[[Answer], None] | None = None
    ) -> None:
        self._endpoint = endpoint
        self._user = user_from_url(endpoint.url)
        self._on_answer = on_answer
        self._connection: AbstractConnection | None = None
        self._channel: AbstractChannel | None = None
        self._expected: set[str] = set()
        self._answers: dict[str, Answer] = {}
        self._awaited: set[str] = set()
        self._all_in = asyncio.Event()

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def open(self) -> None:
        self._connection = await aio_pika.connect(
            self._endpoint.url,
            client_properties={"connection_name": f"gateway operator {self._user}"},
            ssl_context=self._endpoint.ssl_context,
        )
        self._channel = await self._connection.channel(publisher_confirms=True)
        queue = await self._channel.declare_queue(
            f"gw.answers.{uuid.uuid4().hex}", exclusive=True, auto_delete=True
        )
        for status in ANSWER_STATUSES:
            await queue.bind(
                STATUS_EXCHANGE, routing_key=status_routing_key(OPERATOR_SYSTEM, status, "#")
            )
        await queue.consume(self._answered, no_ack=True)

    async def close(self) -> None:
        if self._connection is not None:
            await self._connection.close()

    async def _answered(self, message: AbstractIncomingMessage) -> None:
        request_id = message.correlation_id
        if request_id not in self._expected or request_id in self._answers:
            return
        try:
            event = json.loads(message.body)
        except ValueError:
            return
        if not isinstance(event, dict):
            return
        self._answers[request_id] = event
        self._awaited.discard(request_id)
        if not self._awaited:
            self._all_in.set()
        if self._on_answer is not None:
            self._on_answer(event)

    async def send(self, request: ControlRequest) -> None:
        """Publish ``request`` (confirmed by the broker); its answer is collected from now on."""
        assert self._channel is not None
        self._expected.add(request.request_id)
        exchange = await self._channel.get_exchange(CONTROL_EXCHANGE, ensure=False)
        await exchange.publish(
            aio_pika.Message(
                request.to_json(),
                message_id=request.request_id,
                user_id=self._user,
                content_type=CONTENT_TYPE,
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            ),
            routing_key=request.action,
        )

    async def send_all(self, requests: Iterable[ControlRequest], window: int = WINDOW) -> None:
        """Publish ``requests`` in order with up to ``window`` confirms awaited at once: one
        round trip per request would cap a replay at the broker's confirm latency."""
        pending: list[Coroutine[Any, Any, None]] = []
        for request in requests:
            pending.append(self.send(request))
            if len(pending) == window:
                await asyncio.gather(*pending)
                pending = []
        await asyncio.gather(*pending)

    def answer(self, request_id: str) -> Answer | None:
        return self._answers.get(request_id)

    async def wait(self, request_ids: Collection[str], timeout: float) -> dict[str, Answer | None]:
        """The answer of each request, or None for one still unanswered when ``timeout``
        seconds passed without any answer: a long replay is answered as long as it goes on."""
        # Each answer takes its id out of the set: checking every id on every arrival would
        # cost a replay of n records n^2 steps.
        self._awaited = {rid for rid in request_ids if rid not in self._answers}
        if self._awaited:
            self._all_in.clear()
        while self._awaited:
            heard = len(self._answers)
            try:
                await asyncio.wait_for(self._all_in.wait(), timeout)
            except TimeoutError:
                if len(self._answers) == heard:
                    break
        return {rid: self._answers.get(rid) for rid in request_ids}
