"""The contract as a non-Python back-office system meets it on the real broker: typed statuses
for rejections, routing keys that must match the body, and topic permissions that keep each
system to its own statuses and the deliveries it is entitled to (issue 14)."""

from __future__ import annotations

import json
import uuid

import aio_pika
import aiormq
import pytest
import structlog
from aio_pika.abc import AbstractIncomingMessage, AbstractRobustConnection

from contracts.amqp import status_routing_key
from gateway import topology
from gateway.archive import SearchFilter
from tests.integration.conftest import Network
from tests.support.broker import Vhost
from tests.support.parties import HOST, PARTIES, share
from tests.support.waiting import wait_until

pytestmark = pytest.mark.broker

DESK = PARTIES["CICA"][2]
OTHER_DESK = PARTIES["UNOCT"][2]


async def _connect_as_desk() -> AbstractRobustConnection:
    vhost = PARTIES["CICA"][0]
    return await aio_pika.connect_robust(f"amqp://{DESK}:{DESK}@{HOST}/{vhost}")


async def _bind(connection: AbstractRobustConnection, exchange: str, key: str) -> None:
    """Declare a queue of the desk's own and bind it; each attempt on a fresh channel, since a
    refusal closes the channel."""
    channel = await connection.channel()
    queue = await channel.declare_queue(
        f"bo.{DESK}.test.{uuid.uuid4().hex}", exclusive=True, auto_delete=True
    )
    await queue.bind(exchange, routing_key=key)
    await channel.close()


@pytest.mark.parametrize(
    ("exchange", "key"),
    [
        (topology.STATUS, "#"),
        (topology.STATUS, "*.rejected.#"),
        (topology.STATUS, f"{OTHER_DESK}.#"),
        (topology.DELIVER, "#"),
        (topology.DELIVER, "*.#"),
    ],
)
async def test_a_back_office_user_cannot_bind_for_what_is_not_its_own(
    vhosts: dict[str, Vhost], exchange: str, key: str
) -> None:
    connection = await _connect_as_desk()
    async with connection:
        with pytest.raises(aiormq.exceptions.ChannelAccessRefused, match="ACCESS_REFUSED"):
            await _bind(connection, exchange, key)


@pytest.mark.parametrize(
    ("exchange", "key"),
    [
        (topology.STATUS, f"{DESK}.#"),
        (topology.STATUS, f"{DESK}.rejected.information.share"),
        (topology.DELIVER, "*.information.*"),
        (topology.DELIVER, "SCO-RATS.consent.decision"),
    ],
)
async def test_a_back_office_user_binds_its_own_statuses_and_entitled_deliveries(
    vhosts: dict[str, Vhost], exchange: str, key: str
) -> None:
    connection = await _connect_as_desk()
    async with connection:
        await _bind(connection, exchange, key)


class DeskStatuses:
    """The desk's own status feed, bound as the desk's broker user (so under its permissions)."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, object]]] = []

    async def open(self, connection: AbstractRobustConnection, key: str) -> None:
        channel = await connection.channel()
        queue = await channel.declare_queue(
            f"bo.{DESK}.status.{uuid.uuid4().hex}", exclusive=True, auto_delete=True
        )
        await queue.bind(topology.STATUS, routing_key=key)
        await queue.consume(self._arrived, no_ack=True)

    async def _arrived(self, message: AbstractIncomingMessage) -> None:
        self.events.append((message.routing_key or "", json.loads(message.body)))

    def of(self, submission_id: str) -> list[tuple[str, dict[str, object]]]:
        return [
            (key, event) for key, event in self.events if event["submission_id"] == submission_id
        ]


async def test_a_rejection_keeps_the_type_it_could_read(
    network: Network, vhosts: dict[str, Vhost]
) -> None:
    """A system bound to <system>.rejected.information.share hears an information.share that
    broke a text rule; the archive and the metrics keep its type too."""
    gateway = (await network.start("CICA")).gateway
    assert gateway is not None
    connection = await _connect_as_desk()
    async with connection:
        statuses = await _desk_statuses(connection, status_routing_key(DESK, "rejected", "#"))
        desk = await network.desk("CICA")
        blank = share("SCO-RATS", "   ")
        with structlog.testing.capture_logs() as logged:
            message_id = await desk.submit(blank)
            await wait_until(lambda: bool(statuses.of(message_id)), message="the rejected status")
    [decided] = [e for e in logged if e.get("message_id") == message_id]
    assert (decided["event"], decided["type"]) == ("outbound.decided", "information.share")
    [(key, event)] = statuses.of(message_id)
    assert key == f"{DESK}.rejected.information.share"
    assert (event["type"], event["reason"]) == ("information.share", "text.empty")
    [record] = await gateway.archive.search(SearchFilter(message_ids=[message_id]))
    assert (record.outcome, record.type) == ("rejected", "information.share")
    labels = {
        "direction": "outbound",
        "type": "information.share",
        "counterparty": gateway.metrics.counterparty("none"),
        "outcome": "rejected",
    }
    assert gateway.metrics.registry.get_sample_value("gateway_messages_total", labels) == 1


async def test_a_routing_key_that_disagrees_with_the_body_is_rejected(
    network: Network, vhosts: dict[str, Vhost]
) -> None:
    rejected = await vhosts["CICA"].collect(topology.REJECTED)
    await network.start("CICA")
    connection = await _connect_as_desk()
    async with connection:
        statuses = await _desk_statuses(connection, f"{DESK}.#")
        desk = await network.desk("CICA")
        message_id = uuid.uuid4().hex
        body = json.dumps(share("SCO-RATS", "Routed under the wrong type.")).encode()
        await desk.publish_raw(body, message_id=message_id, routing_key="information.request")
        await wait_until(lambda: bool(statuses.of(message_id)), message="the status")
        await wait_until(lambda: message_id in rejected.ids(), message="the rejected copy")
    [(key, event)] = statuses.of(message_id)
    assert key == f"{DESK}.rejected.information.share"
    assert event["reason"] == "submission.routing_key_mismatch"
    assert "information.request" in str(event["detail"])
    copy = rejected.messages[rejected.ids().index(message_id)]
    assert (copy.headers or {})[topology.REASON_HEADER] == "submission.routing_key_mismatch"


async def _desk_statuses(connection: AbstractRobustConnection, key: str) -> DeskStatuses:
    statuses = DeskStatuses()
    await statuses.open(connection, key)
    return statuses
