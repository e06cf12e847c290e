"""The console over aiohttp's test client: a CICA console on a fresh SQLite archive and its
accounts: vera the viewer, olga the consent officer for lo-a, oleg an operator naming no
officer, rhea an operator deciding as officer lo-a2."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from gateway.archive import ArchiveStore, open_archive
from gateway.config import load_config
from gateway.console.app import console_for, setup_console
from gateway.desk.accounts import OperatorAccounts
from gateway.desk.operations import Desk
from gateway.metrics import GatewayMetrics
from gateway.web import build_app
from tests.support.parties import write_config

Client = TestClient[web.Request, web.Application]
PASSWORD = "correct horse battery"
REQUEST_ID = "01960f80-1b2c-7d4e-8f6a-0b1c2d3e4f5a"


async def _ready() -> dict[str, bool]:
    return {"archive": True}


@pytest.fixture
async def archive(tmp_path: Path) -> AsyncIterator[ArchiveStore]:
    store = open_archive(f"sqlite:///{tmp_path / 'cica.db'}")
    await store.open()
    yield store
    await store.close()


@pytest.fixture
async def client(tmp_path: Path, archive: ArchiveStore) -> AsyncIterator[Client]:
    config = load_config(write_config(tmp_path, "CICA", tmp_path / "keys"))
    accounts = OperatorAccounts(config.console.operators_file)
    accounts.add("vera", PASSWORD, {"viewer"}, None)
    accounts.add("olga", PASSWORD, {"consent-officer"}, "lo-a")
    accounts.add("oleg", PASSWORD, {"operator"}, None)
    accounts.add("rhea", PASSWORD, {"operator"}, "lo-a2")
    console = console_for(Desk(config, archive, timeout=1.0))

    def extend(app: web.Application) -> None:
        setup_console(app, console, https=False)

    metrics = GatewayMetrics("CICA", counterparties=["SCO-RATS"], message_types=[])
    async with TestClient(TestServer(build_app(metrics, _ready, extend=extend))) as test_client:
        yield test_client


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match is not None, html
    return match.group(1)


async def log_in(client: Client, name: str, password: str = PASSWORD) -> int:
    page = await client.get("/login")
    form = {"csrf": csrf_of(await page.text()), "name": name, "password": password}
    response = await client.post("/login", data=form, allow_redirects=False)
    return response.status


async def page_csrf(client: Client, path: str = "/") -> str:
    response = await client.get(path)
    assert response.status == 200
    return csrf_of(await response.text())
