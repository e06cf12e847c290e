"""Fixtures of the fault tests: gateways as child processes on this session's vhosts, the case
desk at CICA and a counting back-office queue at SCO-RATS."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.faults.outages import queue_total
from tests.faults.processes import Fleet, GatewayProcess
from tests.faults.traffic import Inbox, accredit
from tests.integration.conftest import keys_dir, network, rabbitmq, vhosts
from tests.support.broker import Vhost
from tests.support.parties import PARTIES, Desk, write_config
from tests.support.waiting import wait_until

__all__ = ["keys_dir", "network", "rabbitmq", "vhosts"]

CICA_VHOST = PARTIES["CICA"][0]
SCO_RATS_VHOST = PARTIES["SCO-RATS"][0]


class Bridge:
    """CICA and SCO-RATS as gateway processes, with CICA's case desk and SCO-RATS's inbox."""

    def __init__(
        self, directory: Path, keys: Path, fleet: Fleet, vhosts: dict[str, Vhost], inbox: Inbox
    ) -> None:
        self.directory = directory
        self.keys = keys
        self.fleet = fleet
        self.vhosts = vhosts
        self.inbox = inbox
        self.desk = Desk("CICA")

    def config(self, party: str, archive_url: str | None = None, **limits: Any) -> Path:
        return write_config(self.directory, party, self.keys, archive_url, **limits)

    async def start(
        self, party: str, archive_url: str | None = None, name: str | None = None
    ) -> GatewayProcess:
        return await self.fleet.start(name or party.lower(), self.config(party, archive_url))

    async def accredit(self) -> None:
        """The officer on both rosters before the stream starts (sent and delivered)."""
        seen = await self.vhosts["SCO-RATS"].bind_collector("gw.deliver", "CICA.liaison.assignment")
        await self.desk.open()
        await accredit(self.desk)
        await wait_until(lambda: len(seen.messages) == 1, message="the officer's assignment")

    async def wait_delivered(self, count: int, timeout: float) -> None:
        async def enough() -> bool:
            return await self.inbox.depth() >= count

        await wait_until(enough, timeout=timeout, interval=0.1, message=f"{count} deliveries")

    async def wait_settled(self, timeout: float = 60.0) -> None:
        """Every submission and every frame acknowledged: nothing more can be delivered."""

        async def settled() -> bool:
            totals = await asyncio.gather(
                asyncio.to_thread(queue_total, CICA_VHOST, "gw.submit"),
                asyncio.to_thread(queue_total, SCO_RATS_VHOST, "gw.inbound.CICA"),
            )
            return not any(totals)

        await wait_until(settled, timeout=timeout, interval=0.3, message="queues to settle")


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[Fleet]:
    running = Fleet(tmp_path)
    yield running
    running.kill_all()


@pytest.fixture
async def inbox(vhosts: dict[str, Vhost]) -> AsyncIterator[Inbox]:
    opened = Inbox(SCO_RATS_VHOST)
    await opened.open()
    yield opened
    await opened.close()


@pytest.fixture
async def bridge(
    tmp_path: Path, keys_dir: Path, fleet: Fleet, vhosts: dict[str, Vhost], inbox: Inbox
) -> AsyncIterator[Bridge]:
    made = Bridge(tmp_path, keys_dir, fleet, vhosts, inbox)
    yield made
    with contextlib.suppress(Exception):  # its connection may have died with the broker
        await made.desk.close()
