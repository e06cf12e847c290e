"""A small helper for back-office systems: build a submission, validate it locally, publish it
to ``gw.submit`` and wait for its status on ``gw.status``.

    async with SubmissionClient("amqp://case-desk:secret@broker/party-a") as client:
        submission = client.build(
            "information.share",
            recipient="SCO-RATS",
            officer="lo-0042",
            body={"subject": {"en": "Recruitment"}, "text": {"en": "Summary ..."}},
        )
        message_id = await client.submit(submission)
        event = await client.wait_status(message_id, timeout=30)
        print(event.status, event.reason)

``build`` raises ``ContractError`` (with ``code`` and ``field``) for a document the gateway
would reject. The broker user needs write access to ``gw.submit``, read access to
``gw.status`` and configure/read/write access to queues named ``bo.<user>.*``, where the
client declares its own exclusive status queue.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import uuid
from collections import OrderedDict
from collections.abc import Collection, Mapping, Sequence
from types import TracebackType
from typing import Any, Final, Self

import aio_pika
import structlog
from aio_pika.abc import (
    AbstractChannel,
    AbstractExchange,
    AbstractIncomingMessage,
    AbstractRobustConnection,
)
from pydantic import BaseModel
from pydantic_core import to_jsonable_python
from yarl import URL

from contracts import ContractError, StatusEvent, Submission, latest_version, parse_status
from contracts.amqp import CONTENT_TYPE, STATUS_EXCHANGE, SUBMIT_EXCHANGE
from contracts.parsing import validate

# A library logs through the standard library: silent below WARNING unless the application
# configures logging (gateway.logs does, for the gateway's own processes), and never on
# stdout, which belongs to the application.
log = structlog.wrap_logger(
    logging.getLogger(__name__),
    processors=[structlog.processors.KeyValueRenderer(key_order=["event"])],
    wrapper_class=structlog.stdlib.BoundLogger,
)

FINAL_STATUSES: Final[frozenset[str]] = frozenset({"delivered", "rejected", "blocked"})
DEFAULT_USER: Final = "guest"
"""The user AMQP clients log in as when the URL names none."""


def user_from_url(url: str) -> str:
    """The broker user a connection to ``url`` authenticates as (RabbitMQ checks ``user_id``)."""
    return URL(url).user or DEFAULT_USER


def status_queue_name(user: str) -> str:
    """A fresh name for the client's own status queue, under the user's ``bo.<user>.`` prefix
    (the prefix back-office users may configure, see deploy/rabbitmq/definitions.json)."""
    return f"bo.{user}.status.{uuid.uuid4().hex}"


def submission_message(submission: Submission, message_id: str, user_id: str) -> aio_pika.Message:
    """The AMQP message for ``submission``, with the properties the contract requires."""
    return aio_pika.Message(
        body=submission.model_dump_json().encode(),
        message_id=message_id,
        content_type=CONTENT_TYPE,
        user_id=user_id,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
    )


class StatusInbox:
    """Status events for the submissions being tracked, kept until asked for.

    Events can arrive before anyone waits for them, so each tracked submission keeps its
    events; only the newest ``max_tracked`` submissions are remembered.
    """

    def __init__(self, max_tracked: int = 10_000) -> None:
        self._max_tracked = max_tracked
        self._events: OrderedDict[str, list[StatusEvent]] = OrderedDict()
        self._waiters: set[asyncio.Future[None]] = set()

    def track(self, submission_id: str) -> None:
        """Start keeping the events of ``submission_id``."""
        self._events.setdefault(submission_id, [])
        while len(self._events) > self._max_tracked:
            self._events.popitem(last=False)

    def forget(self, submission_id: str) -> None:
        self._events.pop(submission_id, None)

    def offer(self, event: StatusEvent) -> bool:
        """Keep ``event`` if its submission is tracked; wake the waiters. True when kept."""
        if event.submission_id is None or event.submission_id not in self._events:
            return False
        self._events[event.submission_id].append(event)
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)
        self._waiters.clear()
        return True

    def find(self, submission_id: str, statuses: Collection[str]) -> StatusEvent | None:
        """The first kept event of ``submission_id`` with one of ``statuses``."""
        for event in self._events.get(submission_id, ()):
            if event.status in statuses:
                return event
        return None

    async def wait(self, submission_id: str, statuses: Collection[str]) -> StatusEvent:
        """The first event of ``submission_id`` with one of ``statuses``, once it arrives."""
        self.track(submission_id)
        while (event := self.find(submission_id, statuses)) is None:
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.add(waiter)
            try:
                await waiter
            finally:
                self._waiters.discard(waiter)
        return event


class SubmissionClient:
    """Publishes submissions to this Party's ``gw.submit`` and follows them on ``gw.status``.

    Use as ``async with SubmissionClient(url) as client``, or call ``connect(url)`` and
    ``close()`` yourself. For an ``amqps://`` URL, ``ssl_context`` pins the CA and presents
    the system's client certificate (``gateway.tls.client_context`` makes one).
    """

    def __init__(
        self, url: str | None = None, *, ssl_context: ssl.SSLContext | None = None
    ) -> None:
        self._url = url
        self._ssl_context = ssl_context
        self._connection: AbstractRobustConnection | None = None
        self._exchange: AbstractExchange | None = None
        self._user = DEFAULT_USER
        self._inbox = StatusInbox()

    async def __aenter__(self) -> Self:
        if self._url is None:
            raise ValueError("SubmissionClient(url) is needed to use it as a context manager")
        await self.connect(self._url)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def connect(self, url: str) -> None:
        """Connect, and start listening on ``gw.status`` (an exclusive, auto-delete queue)."""
        self._user = user_from_url(url)
        self._connection = await aio_pika.connect_robust(url, ssl_context=self._ssl_context)
        publishing = await self._connection.channel(publisher_confirms=True, on_return_raises=True)
        self._exchange = await publishing.get_exchange(SUBMIT_EXCHANGE, ensure=False)
        listening: AbstractChannel = await self._connection.channel()
        queue = await listening.declare_queue(
            status_queue_name(self._user), exclusive=True, auto_delete=True
        )
        # Status keys start with the submitting system; RabbitMQ refuses any other binding.
        await queue.bind(STATUS_EXCHANGE, routing_key=f"{self._user}.#")
        await queue.consume(self._on_status, no_ack=True)
        log.info("client.connected", user=self._user, status_queue=queue.name)

    async def close(self) -> None:
        if self._connection is not None:
            await self._connection.close()
        self._connection = None
        self._exchange = None

    @staticmethod
    def build(
        type: str,
        recipient: str,
        body: Mapping[str, Any] | BaseModel,
        *,
        officer: str | None = None,
        derived_from: Sequence[str] = (),
        correlation_id: str | None = None,
        in_reply_to: str | None = None,
        pre_approved: Sequence[str] = (),
        version: int | None = None,
    ) -> Submission:
        """A submission validated against the contract; ContractError if the gateway would
        reject it. ``body`` is a JSON object or a body model (e.g. ``InformationShareV1``);
        ``version`` defaults to the newest version of ``type``."""
        json_body = body.model_dump(mode="json") if isinstance(body, BaseModel) else dict(body)
        document = {
            "type": type,
            "version": latest_version(type) if version is None else version,
            "recipient": recipient,
            "officer": officer,
            "correlation_id": correlation_id,
            "in_reply_to": in_reply_to,
            "derived_from": list(derived_from),
            "handling": {"onward": "consent-required", "pre_approved": list(pre_approved)},
            "body": to_jsonable_python(json_body),
        }
        return validate(Submission, document)

    async def submit(self, submission: Submission, message_id: str | None = None) -> str:
        """Publish ``submission``, wait for the broker's confirm and return its message_id (the
        ``submission_id`` of its status events): ``message_id``, or a fresh one. Publishing
        again with the same message_id after a lost confirm produces one envelope only."""
        if self._exchange is None:
            raise RuntimeError("SubmissionClient is not connected")
        message_id = message_id or uuid.uuid4().hex
        self._inbox.track(message_id)
        try:
            await self._exchange.publish(
                submission_message(submission, message_id, self._user),
                routing_key=submission.type,
            )
        except BaseException:
            self._inbox.forget(message_id)
            raise
        log.info("client.submitted", message_id=message_id, type=submission.type)
        return message_id

    async def wait_status(
        self,
        message_id: str,
        statuses: Collection[str] = FINAL_STATUSES,
        timeout: float = 30.0,
    ) -> StatusEvent:
        """The first status event of ``message_id`` with one of ``statuses`` (by default the
        final ones: delivered, rejected, blocked); TimeoutError after ``timeout`` seconds."""
        async with asyncio.timeout(timeout):
            return await self._inbox.wait(message_id, statuses)

    async def _on_status(self, message: AbstractIncomingMessage) -> None:
        try:
            event = parse_status(message.body)
        except ContractError as exc:
            log.warning("client.bad_status_event", code=exc.code, detail=exc.message)
            return
        self._inbox.offer(event)
