"""Poison messages: one whose processing fails every time ends in gw.rejected after a bounded
number of attempts, and the messages around it go through (design section 5, invariant 6).

The gateways run in-process (the ``network`` fixture) with a decision function passed in
(gateway.workers.ports.Decisions) that raises for one marked message.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import Any

import aio_pika
import pytest

from gateway import topology
from gateway.archive import SearchFilter
from gateway.core.inbound_decision import InboundContext, InboundDecision, decide_envelope
from gateway.core.outbound_decision import (
    Delivery,
    OutboundContext,
    OutboundDecision,
    decide_submission,
)
from gateway.workers.ports import Decisions
from tests.integration.conftest import Network
from tests.support.broker import Vhost
from tests.support.parties import assignment, share, submission, through_sentinel
from tests.support.services import ADMIN_URL
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.fault, pytest.mark.broker]

MAX_ATTEMPTS = 3
POISON = "Poison: processing this fails every time."


class Failure(RuntimeError):
    """What the failing decision raises: an error nobody planned for."""


async def start_pair(
    network: Network, vhosts: dict[str, Vhost], cica: Decisions, rats: Decisions
) -> None:
    # A back-office queue for the officer's assignment too: unroutable, it would be a copy in
    # SCO-RATS's gw.rejected (the alternate exchange of gw.deliver).
    await vhosts["SCO-RATS"].bind_collector(topology.DELIVER, "CICA.liaison.assignment")
    await network.start("CICA", cica, max_attempts=MAX_ATTEMPTS)
    await network.start("SCO-RATS", rats, max_attempts=MAX_ATTEMPTS)
    desk = await network.desk("CICA")
    await desk.submit(submission("liaison.assignment", "SCO-RATS", assignment("lo-0001")))


def text_of(envelope: Mapping[str, Any]) -> object:
    body = envelope.get("body")
    text = body.get("text") if isinstance(body, Mapping) else None
    return text.get("en") if isinstance(text, Mapping) else None


async def test_a_submission_failing_every_time_is_rejected_after_max_attempts(
    network: Network, vhosts: dict[str, Vhost]
) -> None:
    attempts: list[bool] = []

    def failing(delivery: Delivery, ctx: OutboundContext) -> OutboundDecision:
        if delivery.message_id == "poison":
            attempts.append(delivery.redelivered)
            raise Failure("deciding this submission fails")
        return decide_submission(delivery, ctx)

    rejected = await vhosts["CICA"].collect(topology.REJECTED)
    inbox = await vhosts["SCO-RATS"].bind_collector(topology.DELIVER, "CICA.information.share")
    await start_pair(network, vhosts, Decisions(submission=failing), Decisions())
    desk = await network.desk("CICA")
    good = [await desk.submit(share("SCO-RATS", "Before the poison."))]
    await desk.submit(share("SCO-RATS", POISON), message_id="poison")
    good += [await desk.submit(share("SCO-RATS", f"After the poison {i}.")) for i in range(2)]

    await wait_until(lambda: len(rejected.messages) == 1, message="the poison in gw.rejected")
    headers = rejected.messages[0].headers or {}
    assert rejected.messages[0].message_id == "poison"
    assert headers[topology.REASON_HEADER] == "processing.failed"
    assert "Failure" in str(headers[topology.DETAIL_HEADER])
    assert attempts == [False] + [True] * (MAX_ATTEMPTS - 1)
    # The worker is still up: the messages around the poison and one more after it arrive.
    good.append(await desk.submit(share("SCO-RATS", "Long after the poison.")))
    await wait_until(lambda: len(inbox.messages) == len(good), message="the good ones")
    good.append(await through_sentinel(desk, "SCO-RATS", inbox))
    assert sorted(b["originator"]["submission_id"] for b in inbox.bodies()) == sorted(good)
    cica = network.parties["CICA"].gateway
    assert cica is not None
    records = await cica.archive.search(SearchFilter(message_ids=["poison"]))
    assert [(r.kind, r.outcome, r.reason) for r in records] == [
        ("submission", "rejected", "processing.failed")
    ]
    assert len(attempts) == MAX_ATTEMPTS


async def test_an_envelope_failing_every_time_is_rejected_and_its_frame_delivered_once(
    network: Network, vhosts: dict[str, Vhost]
) -> None:
    attempts: list[bool] = []

    def failing(raw: Mapping[str, Any], ctx: InboundContext) -> InboundDecision:
        if text_of(raw) == POISON:
            attempts.append(True)
            raise Failure("verifying this envelope fails")
        return decide_envelope(raw, ctx)

    rejected = await vhosts["SCO-RATS"].collect(topology.REJECTED)
    inbox = await vhosts["SCO-RATS"].bind_collector(topology.DELIVER, "CICA.information.share")
    await start_pair(network, vhosts, Decisions(), Decisions(envelope=failing))
    desk = await network.desk("CICA")
    # Published together, so that the poison most likely shares a frame with good envelopes.
    texts = ["Good one.", POISON, "Good two.", "Good three."]
    good = await asyncio.gather(*(desk.submit(share("SCO-RATS", text)) for text in texts))
    del good[1]

    await wait_until(lambda: len(rejected.messages) == 1, message="the poison in gw.rejected")
    copy = rejected.messages[0]
    assert (copy.headers or {})[topology.REASON_HEADER] == "processing.failed"
    assert text_of(json.loads(copy.body)) == POISON
    await wait_until(lambda: len(inbox.messages) == len(good), message="the good ones")
    good.append(await through_sentinel(desk, "SCO-RATS", inbox))
    assert sorted(b["originator"]["submission_id"] for b in inbox.bodies()) == sorted(good)
    assert len(attempts) == MAX_ATTEMPTS
    assert len(set(inbox.ids())) == len(good)


async def test_a_message_that_kills_every_consumer_is_dead_lettered_by_the_broker(
    vhosts: dict[str, Vhost],
) -> None:
    """The backstop for what no exception handler sees (the process dies on it): gw.submit's
    delivery limit dead-letters the message to gw.rejected instead of redelivering forever."""
    rejected = await vhosts["CICA"].collect(topology.REJECTED)
    connection = await aio_pika.connect(ADMIN_URL.format(vhost=vhosts["CICA"].name))
    async with connection:
        channel = await connection.channel()
        submit = await channel.get_exchange(topology.SUBMIT)
        await submit.publish(aio_pika.Message(b"{}", message_id="deadly"), "information.share")
        for _ in range(topology.BROKER_DELIVERY_LIMIT + 1):
            # A consumer that takes the message and dies: its channel goes, unacknowledged.
            dying = await connection.channel()
            queue = await dying.get_queue(topology.SUBMIT, ensure=False)
            message = await queue.get(fail=False, timeout=5)
            if message is None:
                break
            await dying.close()
    await wait_until(lambda: len(rejected.messages) == 1, message="the dead-lettered message")
    dead = rejected.messages[0]
    assert dead.message_id == "deadly"
    assert (dead.headers or {}).get("x-first-death-reason") == "delivery_limit"
