"""Gateways killed with SIGKILL while a stream flows: restarted, they lose nothing and deliver
nothing twice (design section 5, invariant 5; issues 5 and 8)."""

from __future__ import annotations

import asyncio
import itertools
import os
import random
import time

import pytest

from gateway.archive import ArchiveStore, SearchFilter, open_archive
from tests.faults.conftest import Bridge
from tests.faults.processes import GatewayProcess
from tests.faults.traffic import publish_stream, stream_ids, tally

pytestmark = [pytest.mark.fault, pytest.mark.broker, pytest.mark.slow]

STREAM = 10_000
KILLS = 6
# The publish-and-ack variant: rounds of one chunk each, both gateways killed per round.
ROUNDS = 3
CHUNK = 500


async def test_sigkill_at_random_points_of_a_10000_message_stream(bridge: Bridge) -> None:
    seed = int(os.environ.get("GW_FAULT_SEED", random.randrange(2**32)))
    print(f"GW_FAULT_SEED={seed}")
    rng = random.Random(seed)
    cica = await bridge.start("CICA")
    sco_rats = await bridge.start("SCO-RATS")
    await bridge.accredit()
    ids = stream_ids(STREAM)
    publisher = asyncio.ensure_future(publish_stream(bridge.desk, ids))
    archives = {cica: archive_of(bridge, "cica"), sco_rats: archive_of(bridge, "sco-rats")}
    points = sorted(rng.sample(range(200, STREAM - 1000), KILLS))
    try:
        for point, victim in zip(points, itertools.cycle([cica, sco_rats]), strict=False):
            await bridge.wait_delivered(point, timeout=60)
            # Half the kills wherever the gateway happens to be, half right after it archived
            # a batch, where a crash is most dangerous.
            if rng.random() < 0.5:
                await kill_once_archived(victim, archives[victim])
            else:
                victim.kill()
            await victim.restart()
    finally:
        for archive in archives.values():
            await archive.close()
    await publisher
    await bridge.wait_delivered(STREAM, timeout=120)
    await bridge.wait_settled()
    result = tally(ids, await bridge.inbox.drain())
    assert result.exact, f"seed {seed}: {result}"
    assert cica.starts == sco_rats.starts == 1 + KILLS // 2


async def test_killed_between_publish_and_ack_delivers_nothing_twice(bridge: Bridge) -> None:
    """Each gateway killed the moment a batch is archived: its publishes (the frame to the
    peer, the deliveries to the back office) are going out or out, and the source messages
    are not acknowledged. They come back after the restart and must not go out twice.

    Per round SCO-RATS goes first, so that CICA, killed while SCO-RATS is down, archives only
    its own outbound batches (no receipts arrive to be archived instead)."""
    cica = await bridge.start("CICA")
    sco_rats = await bridge.start("SCO-RATS")
    await bridge.accredit()
    ids = stream_ids(ROUNDS * CHUNK)
    archives = {cica: archive_of(bridge, "cica"), sco_rats: archive_of(bridge, "sco-rats")}
    try:
        for start in range(0, len(ids), CHUNK):
            await publish_stream(bridge.desk, ids[start : start + CHUNK])
            for victim in (sco_rats, cica):
                await kill_once_archived(victim, archives[victim])
            await asyncio.gather(sco_rats.restart(), cica.restart())
        await bridge.wait_delivered(len(ids), timeout=90)
        await bridge.wait_settled()
        result = tally(ids, await bridge.inbox.drain())
        assert result.exact, str(result)
        # The kills did land in the window: redelivered submissions were found already
        # archived at CICA, and redelivered frames were delivered again (their first delivery
        # had died with the process) at SCO-RATS, each once in the end.
        duplicates = await archives[cica].search(
            SearchFilter(kinds=["submission"], outcomes=["duplicate"])
        )
        delivered = await archives[sco_rats].search(
            SearchFilter(kinds=["envelope.in"], outcomes=["delivered"])
        )
        assert duplicates, "no kill of CICA landed between its archive write and its ack"
        assert len(delivered) > len({r.envelope_id for r in delivered}), "nor one of SCO-RATS"
    finally:
        for archive in archives.values():
            await archive.close()


def archive_of(bridge: Bridge, slug: str) -> ArchiveStore:
    return open_archive(f"sqlite:///{bridge.directory / (slug + '.db')}")


async def kill_once_archived(
    victim: GatewayProcess, archive: ArchiveStore, patience: float = 10.0
) -> None:
    """SIGKILL ``victim`` as soon as its archive grows: a batch is durable, and what follows
    (the forward, the deliveries, the ack) is under way, not done. A gateway with nothing
    left to do is killed idle after ``patience`` seconds."""
    before, _ = await archive.head()
    deadline = time.monotonic() + patience
    while time.monotonic() < deadline:
        if (await archive.head())[0] != before:
            break
        await asyncio.sleep(0.002)
    victim.kill()
