"""The worker skeleton on fakes: the loop, the in-flight gauge, the archive hold, give-back,
forward and commit, through a minimal worker that archives and acks what it takes."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from aio_pika.abc import AbstractIncomingMessage
from structlog.testing import capture_logs

from gateway import topology
from gateway.amqp import PublishRefused
from gateway.archive.records import Entry
from gateway.core.publications import Outgoing
from gateway.workers.base import Worker
from gateway.workers.batches import Batcher
from gateway.workers.events import Counted, Logged
from tests.gateway.workers.rigs import MAX_ATTEMPTS, NO_WAIT, metrics
from tests.support.fakes import FakeArchive, FakeChannel, FakeMessage, FakePublisher, incoming

Messages = Sequence[AbstractIncomingMessage]


class Archiving(Worker[Messages]):
    """Archives each message's body, then acks the batch with one effect per message."""

    name = "outbound"

    def __init__(self, channel: FakeChannel, archive: FakeArchive) -> None:
        self.batcher = Batcher(10, 0.0)
        self.prepared = 0
        self.state_lost = 0
        self.in_flight_seen: list[float] = []
        super().__init__(
            channel=channel,
            source=self.batcher,
            archive=archive,
            metrics=metrics("CICA", "SCO-RATS"),
            on_state_lost=self._lose_state,
            prepare=self._prepare_once,
            max_attempts=MAX_ATTEMPTS,
            retry=NO_WAIT,
        )

    async def _prepare_once(self) -> None:
        self.prepared += 1

    def _lose_state(self) -> None:
        self.state_lost += 1

    def gauge(self) -> float:
        return self._metrics.in_flight.labels(self.name)._value.get()

    async def consume(self) -> None:
        await self._channel.consume(topology.SUBMIT, self.batcher.on_message)

    async def take(self, batch: Messages) -> None:
        with self.in_flight(len(batch)):
            self.in_flight_seen.append(self.gauge())

            async def attempt() -> Messages:
                entries = [archived(message) for message in batch]
                await self.archive(entries)
                return batch

            kept = await self.until_archived(attempt, lambda: batch)
            if kept:
                effects = [effect(message) for message in kept]
                counted = Counted("outbound", "information.share", "SCO-RATS", "forwarded")
                await self.commit(effects, kept[-1], [counted], batch=len(kept))


def archived(message: AbstractIncomingMessage) -> Entry:
    return Entry(
        kind="submission",
        outcome="duplicate",
        occurred_at=datetime.now(UTC),
        payload=message.body,
        message_id=message.message_id,
    )


def effect(message: AbstractIncomingMessage) -> Outgoing:
    return Outgoing(topology.STATUS, "k", message.body, message_id=message.message_id)


async def consumed(worker: Archiving, channel: FakeChannel) -> list[AbstractIncomingMessage]:
    """The worker consumes: what the channel delivered to it, unsettled."""
    await worker.consume()
    return [incoming(message) for message in channel.unsettled]


def forwarded(worker: Archiving) -> float:
    counter = worker._metrics.messages.labels(
        "outbound", "information.share", "SCO-RATS", "forwarded"
    )
    return counter._value.get()


def frame() -> Outgoing:
    return Outgoing(topology.inbound_from("CICA"), "", b"{}", message_id="f-1")


async def test_burst_mode_drains_what_is_waiting_and_returns() -> None:
    channel = FakeChannel(
        FakeMessage(b"one", message_id="m-1"), FakeMessage(b"two", message_id="m-2")
    )
    worker = Archiving(channel, FakeArchive())
    await worker.run(burst=True)

    assert [m.message_id for m in channel.acked] == ["m-1", "m-2"]
    assert [item.body for item in channel.committed] == [b"one", b"two"]
    assert channel.queue_name == topology.SUBMIT
    # The gauge counts the batch while it is in hand, and nothing once it is settled.
    assert worker.in_flight_seen == [2.0]
    assert worker.gauge() == 0
    assert forwarded(worker) == 1


async def test_an_unavailable_archive_is_waited_out_with_the_state_rebuilt_each_time() -> None:
    channel = FakeChannel(FakeMessage(b"held", message_id="m-1"))
    archive = FakeArchive(fail=2)
    worker = Archiving(channel, archive)
    with capture_logs() as logs:
        await worker.run(burst=True)

    assert archive.append_calls == 3
    assert worker.prepared == 3
    assert worker.state_lost == 2
    assert [log["event"] for log in logs].count("outbound.archive_failed") == 2
    assert [m.message_id for m in channel.acked] == ["m-1"]
    assert channel.given_back == []


async def test_a_batch_failing_while_the_archive_answers_is_given_back() -> None:
    channel = FakeChannel(FakeMessage(b"poison", message_id="m-1"))
    archive = FakeArchive(fail=MAX_ATTEMPTS)
    worker = Archiving(channel, archive)
    [message] = await consumed(worker, channel)
    await worker.take([message])

    assert archive.append_calls == MAX_ATTEMPTS
    assert channel.given_back == [message]
    assert channel.acked == []
    assert worker.gauge() == 0


async def test_a_stopped_worker_gives_the_held_batch_back() -> None:
    channel = FakeChannel(FakeMessage(b"held", message_id="m-1"))
    archive = FakeArchive(fail=1)
    worker = Archiving(channel, archive)
    [message] = await consumed(worker, channel)
    worker.stop()
    await worker.take([message])

    assert archive.append_calls == 1
    assert [m.message_id for m in channel.given_back] == ["m-1"]


async def test_a_lost_channel_commits_nothing_and_says_so() -> None:
    channel = FakeChannel(FakeMessage(b"lost", message_id="m-1"))
    worker = Archiving(channel, FakeArchive())
    [message] = await consumed(worker, channel)
    channel.lose()
    with capture_logs() as logs:
        committed = await worker.commit([effect(message)], message, batch=1)

    assert committed is False
    assert channel.committed == []
    assert {"event": "outbound.channel_lost", "batch": 1, "log_level": "warning"} in logs


async def test_commit_reports_its_events_with_the_effects() -> None:
    channel = FakeChannel(FakeMessage(b"one", message_id="m-1"))
    worker = Archiving(channel, FakeArchive())
    [message] = await consumed(worker, channel)
    with capture_logs() as logs:
        committed = await worker.commit(
            [effect(message)], message, [Logged("info", "outbound.decided", {"message_id": "m-1"})]
        )

    assert committed is True
    assert channel.acked == [message]
    assert {"event": "outbound.decided", "message_id": "m-1", "log_level": "info"} in logs


async def test_give_back_stops_at_a_channel_that_is_gone() -> None:
    class Gone(FakeChannel):
        async def nack(self, message: AbstractIncomingMessage) -> None:
            raise ConnectionError("channel closed")

    channel = Gone(FakeMessage(b"a", message_id="m-1"), FakeMessage(b"b", message_id="m-2"))
    worker = Archiving(channel, FakeArchive())
    messages = await consumed(worker, channel)
    with capture_logs() as logs:
        await worker.give_back(messages)

    assert [log["event"] for log in logs] == ["outbound.nack_failed"]


async def test_forward_retries_until_the_counterparty_confirms() -> None:
    peer = FakePublisher(fail=2)
    worker = Archiving(FakeChannel(), FakeArchive())
    refusals: list[int] = []

    def refused(attempt: int, exc: PublishRefused) -> None:
        refusals.append(attempt)

    assert await worker.forward(lambda: peer.publish_all([frame()]), refused) is True
    assert peer.published == [frame()]
    assert refusals == [0, 1]


async def test_forward_gives_up_once_the_worker_stops() -> None:
    peer = FakePublisher()
    peer.unreachable = True
    worker = Archiving(FakeChannel(), FakeArchive())
    attempts: list[int] = []

    def refused(attempt: int, exc: PublishRefused) -> None:
        attempts.append(attempt)
        if attempt == 2:
            worker.stop()

    assert await worker.forward(lambda: peer.publish_all([frame()]), refused) is False
    assert peer.published == []
    assert attempts == [0, 1, 2]
