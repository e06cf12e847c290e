"""Two Parties bridged end to end on the real RabbitMQ (issue: skeleton)."""

from __future__ import annotations

import json
import uuid

import aio_pika
import aiormq
import pytest

from gateway import topology
from tests.integration.conftest import Network
from tests.support.broker import Vhost
from tests.support.parties import HOST, assignment, share, submission, through_sentinel
from tests.support.waiting import wait_until

pytestmark = pytest.mark.broker


async def accredit(network: Network, party: str, recipient: str, officer: str) -> None:
    desk = await network.desk(party)
    await desk.submit(submission("liaison.assignment", recipient, assignment(officer)))


async def test_submission_arrives_at_the_peer_back_office_with_the_envelope_filled(
    network: Network, vhosts: dict[str, Vhost]
) -> None:
    inbox = await vhosts["SCO-RATS"].bind_collector(topology.DELIVER, "CICA.information.*")
    statuses = await vhosts["CICA"].bind_collector(topology.STATUS)
    await network.start("CICA")
    await network.start("SCO-RATS")
    desk = await network.desk("CICA")
    await accredit(network, "CICA", "SCO-RATS", "lo-0001")
    message_id = await desk.submit(share("SCO-RATS", "Travel patterns of a listed group."))

    await wait_until(lambda: len(inbox.messages) == 1, message="delivery at SCO-RATS")
    message = inbox.messages[0]
    envelope = json.loads(message.body)
    assert message.routing_key == "CICA.information.share"
    assert message.message_id == envelope["id"]
    assert envelope["originator"] == {
        "party": "CICA",
        "system": "case-desk",
        "officer": "lo-0001",
        "submission_id": message_id,
    }
    assert envelope["recipient"] == "SCO-RATS"
    assert envelope["version"] == 1
    assert envelope["created_at"].endswith("Z")
    assert envelope["body"]["text"] == {"en": "Travel patterns of a listed group."}
    assert envelope["signature"]["alg"] == "ed25519"
    assert envelope["signature"]["key_id"] == "CICA-test-1"

    def status_of(kind: str) -> list[dict[str, object]]:
        return [
            s for s in statuses.bodies() if s["submission_id"] == message_id and s["status"] == kind
        ]

    await wait_until(lambda: bool(status_of("delivered")), message="delivered status")
    assert status_of("sent")[0]["envelope_id"] == envelope["id"]


async def test_both_directions(network: Network, vhosts: dict[str, Vhost]) -> None:
    at_a = await vhosts["CICA"].bind_collector(topology.DELIVER, "SCO-RATS.information.share")
    at_b = await vhosts["SCO-RATS"].bind_collector(topology.DELIVER, "CICA.information.share")
    await network.start("CICA")
    await network.start("SCO-RATS")
    await accredit(network, "CICA", "SCO-RATS", "lo-a")
    await accredit(network, "SCO-RATS", "CICA", "lo-b")
    desk_a, desk_b = await network.desk("CICA"), await network.desk("SCO-RATS")
    await desk_a.submit(share("SCO-RATS", "From A to B.", officer="lo-a"))
    await desk_b.submit(share("CICA", "From B to A.", officer="lo-b"))
    await wait_until(lambda: len(at_a.messages) == 1 and len(at_b.messages) == 1)
    assert at_a.bodies()[0]["originator"]["party"] == "SCO-RATS"
    assert at_b.bodies()[0]["originator"]["party"] == "CICA"


@pytest.mark.slow
async def test_a_thousand_messages_all_arrive_none_twice(
    network: Network, vhosts: dict[str, Vhost]
) -> None:
    inbox = await vhosts["SCO-RATS"].bind_collector(topology.DELIVER, "CICA.information.share")
    await network.start("CICA")
    await network.start("SCO-RATS")
    await accredit(network, "CICA", "SCO-RATS", "lo-0001")
    desk = await network.desk("CICA")
    sent = [await desk.submit(share("SCO-RATS", f"Report number {i}.")) for i in range(1000)]
    await wait_until(lambda: len(inbox.messages) >= 1000, timeout=60, message="1000 deliveries")
    sent.append(await through_sentinel(desk, "SCO-RATS", inbox))
    submission_ids = [body["originator"]["submission_id"] for body in inbox.bodies()]
    assert sorted(submission_ids) == sorted(sent)
    assert len(set(inbox.ids())) == 1001


async def test_bad_submissions_are_rejected_with_reasons_while_good_ones_flow(
    network: Network, vhosts: dict[str, Vhost]
) -> None:
    rejected = await vhosts["CICA"].collect(topology.REJECTED)
    inbox = await vhosts["SCO-RATS"].bind_collector(topology.DELIVER, "CICA.information.share")
    await network.start("CICA")
    await network.start("SCO-RATS")
    await accredit(network, "CICA", "SCO-RATS", "lo-0001")
    desk = await network.desk("CICA")
    good = share("SCO-RATS", "A good message.")
    bad = {
        "garbage": dict(body=b"\x00\xff not json at all"),
        "wrong-type": dict(body=json.dumps(good).encode(), content_type="text/plain"),
        "missing-field": dict(body=json.dumps({"type": "information.share"}).encode()),
        "huge": dict(body=b'{"type": "' + b"x" * (10 * 1024 * 1024) + b'"}'),
    }
    expected = {
        "garbage": "schema.invalid_json",
        "wrong-type": "submission.wrong_content_type",
        "missing-field": "schema.missing_field",
        "huge": "schema.too_large",
    }
    for i, (name, kwargs) in enumerate(bad.items()):
        await desk.submit(share("SCO-RATS", f"Good message {i} before {name}."))
        kwargs.setdefault("message_id", name)
        await desk.publish_raw(**kwargs)  # type: ignore[arg-type]
    await desk.submit(share("SCO-RATS", "The last good message."))

    await wait_until(lambda: len(rejected.messages) == len(bad), message="rejections")
    await wait_until(lambda: len(inbox.messages) == len(bad) + 1, message="good deliveries")
    # A missing message_id is covered by tests/gateway/core/test_outbound_decision.py: aiormq
    # gives every message without one a random id, so no aio-pika client can publish it.
    by_id = {m.message_id: m for m in rejected.messages}
    for name, reason in expected.items():
        headers = by_id[name].headers or {}
        assert headers[topology.REASON_HEADER] == reason, name
        assert headers[topology.DETAIL_HEADER]


async def test_a_gateway_restarted_mid_stream_loses_nothing(
    network: Network, vhosts: dict[str, Vhost]
) -> None:
    inbox = await vhosts["SCO-RATS"].bind_collector(topology.DELIVER, "CICA.information.share")
    cica = await network.start("CICA")
    await network.start("SCO-RATS")
    await accredit(network, "CICA", "SCO-RATS", "lo-0001")
    desk = await network.desk("CICA")
    sent = [await desk.submit(share("SCO-RATS", f"First half {i}.")) for i in range(300)]
    await wait_until(lambda: len(inbox.messages) >= 50, message="the stream to start")
    await cica.stop()
    sent += [await desk.submit(share("SCO-RATS", f"Second half {i}.")) for i in range(300)]
    await cica.start()
    await wait_until(lambda: len(inbox.messages) >= 600, timeout=60, message="all 600")
    sent.append(await through_sentinel(desk, "SCO-RATS", inbox))
    delivered = [body["originator"]["submission_id"] for body in inbox.bodies()]
    assert sorted(delivered) == sorted(sent)


async def test_the_peer_gateway_user_can_only_write_to_its_own_gw_inbound(
    vhosts: dict[str, Vhost],
) -> None:
    vhost = vhosts["CICA"].name
    connection = await aio_pika.connect(f"amqp://sco-rats-peer:sco-rats-peer@{HOST}/{vhost}")
    own = topology.inbound_from("SCO-RATS")
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        inbound = await channel.get_exchange(own, ensure=False)
        await inbound.publish(aio_pika.Message(b"{}", message_id=uuid.uuid4().hex), "")
        channel = await connection.channel(publisher_confirms=True)
        other = await channel.get_exchange(topology.inbound_from("UNOCT"), ensure=False)
        with pytest.raises(aiormq.exceptions.ChannelAccessRefused):
            await other.publish(aio_pika.Message(b"{}"), "")
        for queue_name in (own, topology.SUBMIT, topology.REJECTED):
            channel = await connection.channel()
            queue = await channel.get_queue(queue_name, ensure=False)
            with pytest.raises(aiormq.exceptions.ChannelAccessRefused):
                await queue.get(no_ack=True, fail=False)
        channel = await connection.channel()
        with pytest.raises(aiormq.exceptions.ChannelAccessRefused):
            await channel.declare_queue("sneaky", auto_delete=True)
        channel = await connection.channel(publisher_confirms=True)
        deliver = await channel.get_exchange(topology.DELIVER, ensure=False)
        with pytest.raises(aiormq.exceptions.ChannelAccessRefused):
            await deliver.publish(aio_pika.Message(b"{}"), "CICA.information.share")
