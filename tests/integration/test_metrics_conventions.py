"""The live /metrics of a gateway that has done some work passes `promtool check metrics`
(issue 14: no unit in days, no gauge and counter differing only by _total)."""

from __future__ import annotations

import asyncio

import pytest

from gateway import topology
from tests.integration.conftest import Network
from tests.support.broker import Vhost
from tests.support.operations import get, scrape
from tests.support.parties import share
from tests.support.waiting import wait_until

pytestmark = pytest.mark.broker


async def test_live_metrics_pass_promtool(
    network: Network, vhosts: dict[str, Vhost], promtool: str
) -> None:
    rejected = await vhosts["CICA"].collect(topology.REJECTED)
    gateway = (await network.start("CICA")).gateway
    assert gateway is not None
    desk = await network.desk("CICA")
    await desk.submit(share("INTERPOL", "For no configured counterparty."))
    await wait_until(lambda: len(rejected.messages) == 1, message="a rejection to count")

    async def counted() -> bool:
        return (await scrape(gateway)).value("gateway_rejections_total", direction="outbound") == 1

    await wait_until(counted, message="the rejection in /metrics")
    status, exposition = await get(gateway, "/metrics")
    assert status == 200
    assert "gateway_signing_key_expiry_timestamp_seconds{" in exposition

    process = await asyncio.create_subprocess_exec(
        promtool,
        "check",
        "metrics",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(process.communicate(exposition.encode()), 60)
    assert (process.returncode, out.decode().strip()) == (0, "")
