"""Two replicas of CICA's gateway, one PostgreSQL archive, competing for one gw.submit: one
valid hash chain and still exactly one delivery per submission (issue 5, design section 7)."""

from __future__ import annotations

import asyncio
import subprocess

import pytest

from tests.faults.conftest import CICA_VHOST, Bridge
from tests.faults.outages import fault_database, queue_total
from tests.faults.processes import GATEWAY
from tests.faults.traffic import publish_stream, stream_ids, tally

pytestmark = [pytest.mark.fault, pytest.mark.broker, pytest.mark.postgres, pytest.mark.slow]

STREAM = 5000


async def test_two_replicas_keep_one_chain_and_deliver_once(bridge: Bridge) -> None:
    async with fault_database() as (_, url):
        config = bridge.config("CICA", url)
        first = await bridge.fleet.start("cica-1", config)
        second = await bridge.fleet.start("cica-2", config)
        await bridge.start("SCO-RATS")
        await bridge.accredit()
        ids = stream_ids(STREAM)
        await publish_stream(bridge.desk, ids)
        await bridge.wait_delivered(STREAM, timeout=120)
        await bridge.wait_settled()
        result = tally(ids, await bridge.inbox.drain())
        assert result.exact, str(result)
        # Both replicas did part of the work, and nothing of theirs was refused: receipts for
        # envelopes the other replica sent included.
        assert first.log_count("outbound.decided") > 0
        assert second.log_count("outbound.decided") > 0
        assert await asyncio.to_thread(queue_total, CICA_VHOST, "gw.rejected") == 0
        verify = await asyncio.to_thread(
            subprocess.run,
            [str(GATEWAY), "archive", "verify", "--config", str(config)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert verify.returncode == 0, verify.stdout + verify.stderr
