"""In-memory stand-ins for what the workers use of the broker and the archive
(gateway.workers.ports): unit tests of a worker run in milliseconds, with no broker or database.

- ``FakeChannel``: a queue and its consuming channel. It delivers its messages to the consumer,
  records acks (``multiple``, as the broker does), give-backs and the effects committed with
  them; a message given back is delivered again, redelivered and counted (x-delivery-count), as
  by a quorum queue. ``lose()`` drops the channel: its unsettled messages go stale.
- ``FakePublisher``: a counterparty or a holding queue that confirms, refuses (a nack, as from
  a full queue) or fails (unreachable) on demand.
- ``FakeArchive``: the archive's append-and-claim semantics, able to fail the next appends.

Run a worker on them with ``await worker.run(burst=True)``: it handles what was delivered,
redeliveries included, and returns once nothing is waiting.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, cast

from aio_pika.abc import AbstractIncomingMessage, AbstractRobustConnection

from gateway import topology
from gateway.amqp import CopyGuard, PublishRefused, StaleBatch
from gateway.archive.records import Appended, Entry, Record
from gateway.core.publications import Outgoing
from gateway.workers.batches import DELIVERY_COUNT_HEADER
from gateway.workers.ports import Consumer


@dataclass(eq=False)  # identity, as the broker tells deliveries apart by their tags
class FakeMessage:
    """The properties of an AMQP delivery that the workers read."""

    body: bytes
    message_id: str | None = None
    user_id: str | None = None
    content_type: str | None = topology.JSON_CONTENT_TYPE
    headers: dict[str, Any] = field(default_factory=dict)
    redelivered: bool = False
    routing_key: str | None = None

    def again(self) -> FakeMessage:
        """This message as the queue delivers it after a give-back."""
        count = int(self.headers.get(DELIVERY_COUNT_HEADER, 0)) + 1
        return replace(
            self, redelivered=True, headers={**self.headers, DELIVERY_COUNT_HEADER: count}
        )


def incoming(message: FakeMessage) -> AbstractIncomingMessage:
    """``message`` where the workers expect aio-pika's type (they read only its properties)."""
    return cast(AbstractIncomingMessage, message)


class FakeChannel:
    """A queue of ``messages`` and the transactional channel that consumes it."""

    def __init__(self, *messages: FakeMessage, guard: CopyGuard | None = None) -> None:
        self.ready: deque[FakeMessage] = deque(messages)
        self.unsettled: list[FakeMessage] = []
        self.acked: list[FakeMessage] = []
        self.given_back: list[FakeMessage] = []
        self.committed: list[Outgoing] = []  # effects of the committed transactions, in order
        self.commits = 0
        self.queue_name: str | None = None
        self._consumer: Consumer | None = None
        self._guard = guard

    async def put(self, message: FakeMessage) -> None:
        """A message arriving in the queue (delivered at once if a consumer is there)."""
        self.ready.append(message)
        await self._deliver()

    async def consume(self, queue_name: str, callback: Consumer) -> None:
        self.queue_name, self._consumer = queue_name, callback
        await self._deliver()

    async def _deliver(self) -> None:
        while self._consumer is not None and self.ready:
            message = self.ready.popleft()
            self.unsettled.append(message)
            await self._consumer(incoming(message))

    async def current(
        self, messages: Sequence[AbstractIncomingMessage]
    ) -> list[AbstractIncomingMessage]:
        return [message for message in messages if self.is_current(message)]

    def is_current(self, message: AbstractIncomingMessage) -> bool:
        fake = cast(FakeMessage, message)
        return any(fake is unsettled for unsettled in self.unsettled)

    async def commit(
        self, outgoing: Sequence[Outgoing], ack: AbstractIncomingMessage | None
    ) -> None:
        if ack is not None and not self.is_current(ack):
            raise StaleBatch
        if self._guard is not None:
            guarded = [item for item in outgoing if self._guard.guards(item)]
            if guarded and not await self._guard.publish(guarded):
                raise StaleBatch
            outgoing = [item for item in outgoing if not self._guard.guards(item)]
        self.committed.extend(outgoing)
        self.commits += 1
        if ack is not None:
            last = cast(FakeMessage, ack)
            upto = next(i for i, m in enumerate(self.unsettled) if m is last) + 1
            self.acked += self.unsettled[:upto]
            del self.unsettled[:upto]

    async def nack(self, message: AbstractIncomingMessage) -> None:
        if not self.is_current(message):
            return
        fake = cast(FakeMessage, message)
        self.unsettled.remove(fake)
        self.given_back.append(fake)
        await self.put(fake.again())

    def lose(self) -> None:
        """The channel closes: its unsettled messages go back to the queue, not yet delivered."""
        self.ready.extendleft(reversed([m.again() for m in self.unsettled]))
        self.unsettled.clear()
        self._consumer = None

    def to(self, exchange: str) -> list[Outgoing]:
        """The committed effects published to ``exchange``."""
        return [item for item in self.committed if item.exchange == exchange]

    def statuses(self) -> list[dict[str, Any]]:
        """The committed status events, decoded."""
        return [json.loads(item.body) for item in self.to(topology.STATUS)]


class FakePublisher:
    """Confirms what it is given, except: the next ``fail`` calls (or all, while
    ``unreachable``) raise PublishRefused; the next ``refuse`` calls have every item nacked."""

    def __init__(self, *, fail: int = 0, refuse: int = 0) -> None:
        self.fail = fail
        self.refuse = refuse
        self.unreachable = False
        self.attempts = 0
        self.published: list[Outgoing] = []

    async def open(self, connection: AbstractRobustConnection) -> None:
        """Nothing to open: the fake is connected from the start."""

    async def refused(self, outgoing: Sequence[Outgoing], timeout: float = 30.0) -> list[Outgoing]:
        self.attempts += 1
        if self.unreachable or self.fail > 0:
            self.fail = max(0, self.fail - 1)
            raise PublishRefused("fake: not connected")
        if self.refuse > 0:
            self.refuse -= 1
            return list(outgoing)
        self.published.extend(outgoing)
        return []

    async def publish_all(self, outgoing: Sequence[Outgoing], timeout: float = 30.0) -> None:
        if not outgoing:
            return
        refused = await self.refused(outgoing, timeout)
        if refused:
            raise PublishRefused(f"fake: refused {len(refused)} of {len(outgoing)}")

    def envelopes(self) -> list[dict[str, Any]]:
        """The envelopes of the confirmed frames, in order."""
        return [env for item in self.published for env in json.loads(item.body)["envelopes"]]


class FakeArchive:
    """Appends and claims as gateway.archive.ArchiveStore does, in memory. The next ``fail``
    appends raise (the archive is unavailable), and ``ping`` fails while ``down``."""

    def __init__(self, *, fail: int = 0) -> None:
        self.fail = fail
        self.down = False
        self.append_calls = 0
        self.records: list[Record] = []
        self.racing: list[Entry] = []  # appended by another replica just before our next append
        self._claims: dict[str, Record] = {}

    async def ping(self) -> None:
        if self.down:
            raise ConnectionError("fake archive: down")

    async def append(self, entries: Sequence[Entry]) -> list[Appended]:
        self.append_calls += 1
        if self.fail > 0:
            self.fail -= 1
            raise ConnectionError("fake archive: unavailable")
        racing, self.racing = self.racing, []
        self.add(racing)
        return self.add(entries)

    def add(self, entries: Iterable[Entry]) -> list[Appended]:
        """Append at once: an entry whose dedup_key is claimed is a duplicate referring to it."""
        results: list[Appended] = []
        for entry in entries:
            original = self._claims.get(entry.dedup_key) if entry.dedup_key else None
            if original is not None:
                entry = replace(entry, outcome="duplicate", refers_to=original.seq)
            seq = len(self.records) + 1
            record = Record.chained(
                entry,
                seq=seq,
                recorded_at=datetime.now(UTC),
                prev_hash=f"h{seq - 1}",
                hash=f"h{seq}",
            )
            self.records.append(record)
            if entry.dedup_key is not None and original is None and entry.outcome != "duplicate":
                self._claims[entry.dedup_key] = record
            results.append(Appended(record, original))
        return results

    async def claimed(self, dedup_key: str) -> Record | None:
        return self._claims.get(dedup_key)

    async def claimed_many(self, dedup_keys: Iterable[str]) -> dict[str, Record]:
        return {key: self._claims[key] for key in dedup_keys if key in self._claims}

    async def get(self, seq: int) -> Record | None:
        return self.records[seq - 1] if 0 < seq <= len(self.records) else None

    async def get_many(self, seqs: Iterable[int]) -> dict[int, Record]:
        return {seq: self.records[seq - 1] for seq in seqs if 0 < seq <= len(self.records)}

    async def head(self) -> tuple[int, str]:
        return len(self.records), f"h{len(self.records)}"

    async def hash_at(self, seq: int) -> str | None:
        return f"h{seq}" if 0 <= seq <= len(self.records) else None

    def outcomes(self) -> list[tuple[str, str]]:
        """(kind, outcome) of every record, in order."""
        return [(record.kind, record.outcome) for record in self.records]
