"""Fixtures for tests on the real RabbitMQ: one vhost per Party, fresh keys and archives."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from gateway import topology
from gateway.config import LimitsConfig
from gateway.workers.ports import Decisions
from tests.support.broker import Vhost
from tests.support.parties import PARTIES, Desk, RunningParty, make_keys, write_config
from tests.support.services import ADMIN_URL, RABBITMQ, require

pytestmark = pytest.mark.broker


@pytest.fixture(scope="session")
def keys_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("keys")
    make_keys(directory)
    return directory


@pytest.fixture
def rabbitmq() -> None:
    require(RABBITMQ, "RabbitMQ")


@pytest.fixture
async def vhosts(rabbitmq: None) -> AsyncIterator[dict[str, Vhost]]:
    opened: dict[str, Vhost] = {}
    limit = LimitsConfig().submit_queue_max_length
    for party, (vhost, _, _) in PARTIES.items():
        senders = [other for other in PARTIES if other != party]
        await topology.provision(ADMIN_URL.format(vhost=vhost), limit, senders)
        opened[party] = Vhost(vhost, senders)
        await opened[party].open()
        await opened[party].purge()
    yield opened
    for vhost in opened.values():
        await vhost.close()


class Network:
    """Starts and stops gateways of the local network inside the test's event loop."""

    def __init__(self, directory: Path, keys: Path) -> None:
        self.directory = directory
        self.keys = keys
        self.parties: dict[str, RunningParty] = {}
        self.desks: list[Desk] = []

    def configure(self, party: str, archive_url: str | None = None, **limits: Any) -> Path:
        path = write_config(self.directory, party, self.keys, archive_url, **limits)
        self.parties[party] = RunningParty(party, path)
        return path

    async def start(
        self, party: str, decisions: Decisions | None = None, **limits: Any
    ) -> RunningParty:
        if party not in self.parties or limits:
            self.configure(party, **limits)
        running = self.parties[party]
        if decisions is not None:
            running.decisions = decisions
        await running.start()
        return running

    async def desk(self, party: str) -> Desk:
        desk = Desk(party)
        await desk.open()
        self.desks.append(desk)
        return desk

    async def close(self) -> None:
        for desk in self.desks:
            await desk.close()
        for running in self.parties.values():
            await running.stop()


@pytest.fixture
async def network(
    vhosts: dict[str, Vhost], tmp_path: Path, keys_dir: Path
) -> AsyncIterator[Network]:
    net = Network(tmp_path, keys_dir)
    yield net
    await net.close()
