"""Outages around a running pair of gateways: the partner's broker unreachable, the archive's
database gone, RabbitMQ itself restarted. Each holds the backlog, loses nothing, delivers nothing
twice, and recovers without anyone touching the gateways (design section 5, invariants 1 and 5).

The broker restart disturbs every broker user on the machine, so it is short and comes last.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any

import pytest

from tests.faults.conftest import CICA_VHOST, SCO_RATS_VHOST, Bridge
from tests.faults.outages import (
    allow_peer,
    block_user,
    close_user_connections,
    cut_off_database,
    fault_database,
    queue_total,
    restart_broker_app,
    restore_database,
)
from tests.faults.processes import GatewayProcess
from tests.faults.traffic import publish_stream, stream_ids, tally
from tests.support.parties import Desk
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.fault, pytest.mark.broker]

PEER_USER = "cica-peer"


async def not_ready_on(gateway: GatewayProcess, check: str) -> bool:
    status, body = await gateway.readiness()
    return status == 503 and check in body.get("not_ready", [])


async def total(vhost: str, queue: str) -> int:
    return await asyncio.to_thread(queue_total, vhost, queue)


def thread_orders(ids: list[str], envelopes: list[dict[str, Any]]) -> dict[str, list[int]]:
    """Per correlation thread, the stream positions in the order they were delivered."""
    position = {message_id: i for i, message_id in enumerate(ids)}
    orders: dict[str, list[int]] = defaultdict(list)
    for env in envelopes:
        orders[str(env["correlation_id"])].append(position[env["originator"]["submission_id"]])
    return orders


async def test_partner_unreachable_holds_the_backlog_and_drains_in_order(bridge: Bridge) -> None:
    cica = await bridge.start("CICA")
    await bridge.start("SCO-RATS")
    await bridge.accredit()
    ids = stream_ids(1200)
    before, during = ids[:300], ids[300:]
    await publish_stream(bridge.desk, before, threads=8)
    await bridge.wait_delivered(len(before), timeout=60)
    try:
        await asyncio.to_thread(block_user, PEER_USER, SCO_RATS_VHOST)
        await asyncio.to_thread(close_user_connections, PEER_USER, SCO_RATS_VHOST)
        await wait_until(
            lambda: not_ready_on(cica, "broker.SCO-RATS"), message="/readyz naming the partner"
        )
        await publish_stream(bridge.desk, during, threads=8)

        async def held() -> bool:
            return await total(CICA_VHOST, "gw.submit") == len(during)

        # Held at CICA: every submission still in gw.submit, none at SCO-RATS.
        await wait_until(held, message="the backlog in gw.submit")
        await wait_until(lambda: cica.log_count("outbound.counterparty_unavailable") >= 2)
        assert await bridge.inbox.depth() == len(before)
        assert await total(SCO_RATS_VHOST, "gw.inbound.CICA") == 0
    finally:
        await asyncio.to_thread(allow_peer, PEER_USER, SCO_RATS_VHOST)
    await cica.wait_ready()
    await bridge.wait_delivered(len(ids), timeout=90)
    await bridge.wait_settled()
    envelopes = await bridge.inbox.drain()
    result = tally(ids, envelopes)
    assert result.exact, str(result)
    for thread, order in thread_orders(ids, envelopes).items():
        assert order == sorted(order), f"{thread} delivered out of order"


@pytest.mark.postgres
async def test_archive_unavailable_holds_messages_and_recovers(bridge: Bridge) -> None:
    async with fault_database() as (database, url):
        cica = await bridge.start("CICA", archive_url=url)
        await bridge.start("SCO-RATS")
        await bridge.accredit()
        ids = stream_ids(600)
        before, during = ids[:100], ids[100:]
        await publish_stream(bridge.desk, before)
        await bridge.wait_delivered(len(before), timeout=60)
        try:
            await cut_off_database(database)
            await wait_until(lambda: not_ready_on(cica, "archive"), message="/readyz: archive")
            failures = cica.log_count("outbound.archive_failed")
            await publish_stream(bridge.desk, during)
            await wait_until(
                lambda: cica.log_count("outbound.archive_failed") >= failures + 3,
                message="the gateway to try the archive again and again",
            )
            # Nothing forwarded unarchived, nothing acknowledged, nothing given up on.
            assert await bridge.inbox.depth() == len(before)
            assert await total(SCO_RATS_VHOST, "gw.inbound.CICA") == 0
            assert await total(CICA_VHOST, "gw.submit") == len(during)
            assert await total(CICA_VHOST, "gw.rejected") == 0
            assert cica.alive, cica.log_tail()
        finally:
            await restore_database(database)
        await cica.wait_ready()
        await bridge.wait_delivered(len(ids), timeout=60)
        await bridge.wait_settled()
        result = tally(ids, await bridge.inbox.drain())
        assert result.exact, str(result)
        assert await total(CICA_VHOST, "gw.rejected") == 0
        assert cica.starts == 1


async def test_broker_restart_mid_stream_loses_nothing(bridge: Bridge) -> None:
    cica = await bridge.start("CICA")
    sco_rats = await bridge.start("SCO-RATS")
    await bridge.accredit()
    ids = stream_ids(2000)
    before, after = ids[:1400], ids[1400:]
    await publish_stream(bridge.desk, before)
    await bridge.wait_delivered(200, timeout=60)
    await asyncio.to_thread(restart_broker_app)
    # Nobody restarts the gateways: they reconnect on their own.
    await cica.wait_ready(timeout=60)
    await sco_rats.wait_ready(timeout=60)
    desk = Desk("CICA")
    await desk.open()
    try:
        await publish_stream(desk, after)
    finally:
        await desk.close()
    await bridge.wait_delivered(len(ids), timeout=90)
    await bridge.wait_settled()
    result = tally(ids, await bridge.inbox.drain())
    assert result.exact, str(result)
    assert cica.starts == sco_rats.starts == 1
