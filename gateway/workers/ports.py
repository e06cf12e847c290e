"""What the workers need of the broker and the archive: the few methods they call, as Protocols.

The runtime passes gateway.amqp's TransactionalChannel and ConfirmingPublisher and the
ArchiveStore; unit tests pass the in-memory fakes of tests/support/fakes.py. The decision
functions are passed in too (``Decisions``), so a test can make one fail without patching.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from aio_pika.abc import AbstractIncomingMessage, AbstractRobustConnection

from gateway.archive.records import Appended, Entry, Record
from gateway.core.inbound_decision import InboundContext, InboundDecision, decide_envelope
from gateway.core.outbound_decision import (
    Delivery,
    OutboundContext,
    OutboundDecision,
    decide_submission,
)
from gateway.core.publications import Outgoing

Consumer = Callable[[AbstractIncomingMessage], Awaitable[None]]
DecideSubmission = Callable[[Delivery, OutboundContext], OutboundDecision]
DecideEnvelope = Callable[[Mapping[str, Any], InboundContext], InboundDecision]


class Channel(Protocol):
    """A consuming channel: a batch's effects and ack in one transaction (TransactionalChannel)."""

    async def consume(self, queue_name: str, callback: Consumer) -> None: ...

    async def current(
        self, messages: Sequence[AbstractIncomingMessage]
    ) -> list[AbstractIncomingMessage]: ...

    def is_current(self, message: AbstractIncomingMessage) -> bool: ...

    async def commit(
        self, outgoing: Sequence[Outgoing], ack: AbstractIncomingMessage | None
    ) -> None: ...

    async def nack(self, message: AbstractIncomingMessage) -> None: ...


class Publisher(Protocol):
    """Publishes to a counterparty with confirms (ConfirmingPublisher)."""

    async def publish_all(self, outgoing: Sequence[Outgoing], timeout: float = 30.0) -> None: ...


class CopyPublisher(Protocol):
    """Publishes copies for the holding queues with confirms, telling which were refused
    (ConfirmingPublisher, as gateway.workers.copies uses it)."""

    async def open(self, connection: AbstractRobustConnection) -> None: ...

    async def refused(
        self, outgoing: Sequence[Outgoing], timeout: float = 30.0
    ) -> list[Outgoing]: ...


class Pingable(Protocol):
    async def ping(self) -> None: ...


class Archive(Pingable, Protocol):
    """The archive as the workers use it (ArchiveStore)."""

    async def append(self, entries: Sequence[Entry]) -> list[Appended]: ...

    async def claimed(self, dedup_key: str) -> Record | None: ...

    async def claimed_many(self, dedup_keys: Iterable[str]) -> dict[str, Record]: ...

    async def get(self, seq: int) -> Record | None: ...

    async def get_many(self, seqs: Iterable[int]) -> dict[int, Record]: ...

    async def head(self) -> tuple[int, str]: ...

    async def hash_at(self, seq: int) -> str | None: ...


@dataclass(frozen=True)
class Decisions:
    """The pure decisions the workers apply to submissions and to counterparties' envelopes."""

    submission: DecideSubmission = decide_submission
    envelope: DecideEnvelope = decide_envelope
