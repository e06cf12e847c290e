"""/metrics, /healthz and /readyz, through aiohttp's test client and on a real port."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from gateway.metrics import GatewayMetrics
from gateway.web import HttpServer, Readiness, build_app

Client = TestClient[web.Request, web.Application]

READY = {"broker.local": True, "broker.SCO-RATS": True, "archive": True, "signing_key": True}


def _metrics(party: str = "CICA", counterparty: str = "SCO-RATS") -> GatewayMetrics:
    return GatewayMetrics(party, counterparties=[counterparty], message_types=["information.share"])


def _readiness_of(state: dict[str, bool]) -> Readiness:
    async def readiness() -> dict[str, bool]:
        return dict(state)

    return readiness


def _client(readiness: Readiness, readiness_timeout: float = 2.0) -> Client:
    return TestClient(TestServer(build_app(_metrics(), readiness, readiness_timeout)))


async def test_healthz_says_alive() -> None:
    async with _client(_readiness_of({})) as client:
        response = await client.get("/healthz")
        assert response.status == 200
        assert await response.json() == {"status": "alive"}


async def test_metrics_serves_the_gateways_registry_as_text() -> None:
    metrics = _metrics()
    metrics.record_outcome("outbound", "information.share", "SCO-RATS", "forwarded")
    metrics.receipts_overdue.labels("SCO-RATS").set(2)
    metrics.record_receipt_overdue("SCO-RATS")

    async with TestClient(TestServer(build_app(metrics, _readiness_of({})))) as client:
        response = await client.get("/metrics")
        body = await response.text()

    assert response.status == 200
    assert response.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert "gateway_up 1.0" in body
    assert 'gateway_build_info{party="CICA"' in body
    assert (
        'gateway_messages_total{counterparty="SCO-RATS",direction="outbound",'
        'outcome="forwarded",type="information.share"} 1.0'
    ) in body
    assert 'gateway_receipts_pending_overdue{counterparty="SCO-RATS"} 2.0' in body
    assert 'gateway_receipts_overdue_total{counterparty="SCO-RATS"} 1.0' in body


async def test_readyz_is_200_when_every_check_passes() -> None:
    async with _client(_readiness_of(READY)) as client:
        response = await client.get("/readyz")
        assert response.status == 200
        assert await response.json() == {"ready": True, "checks": READY}


async def test_readyz_is_503_naming_what_is_not_ready() -> None:
    state = {**READY, "broker.SCO-RATS": False, "archive": False}
    async with _client(_readiness_of(state)) as client:
        response = await client.get("/readyz")
        assert response.status == 503
        assert await response.json() == {
            "ready": False,
            "checks": state,
            "not_ready": ["archive", "broker.SCO-RATS"],
        }


async def test_readyz_is_503_when_the_checks_fail() -> None:
    async def broken() -> dict[str, bool]:
        raise ConnectionError("archive gone")

    async with _client(broken) as client:
        response = await client.get("/readyz")
        assert response.status == 503
        assert (await response.json())["not_ready"] == ["readiness"]


async def test_readyz_is_503_when_the_checks_hang() -> None:
    async def hanging() -> dict[str, bool]:
        await asyncio.Event().wait()
        return READY

    async with _client(hanging, readiness_timeout=0.1) as client:
        response = await asyncio.wait_for(client.get("/readyz"), timeout=5)
        assert response.status == 503
        assert (await response.json())["not_ready"] == ["readiness"]


async def test_server_on_port_zero_follows_readiness_both_ways() -> None:
    state = dict(READY)
    server = HttpServer("127.0.0.1", 0, _metrics(), _readiness_of(state))
    await server.start()
    try:
        assert server.port > 0
        base = f"http://127.0.0.1:{server.port}"
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{base}/healthz") as response:
                assert response.status == 200
            async with session.get(f"{base}/readyz") as response:
                assert response.status == 200

            state["broker.SCO-RATS"] = False
            async with session.get(f"{base}/readyz") as response:
                assert response.status == 503
                assert (await response.json())["not_ready"] == ["broker.SCO-RATS"]

            state["broker.SCO-RATS"] = True
            async with session.get(f"{base}/readyz") as response:
                assert response.status == 200
    finally:
        await server.stop()

    with pytest.raises(RuntimeError):
        _ = server.port
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.ClientConnectionError):
            await session.get(f"{base}/healthz")


async def test_two_servers_in_one_process_serve_their_own_metrics() -> None:
    cica = HttpServer("127.0.0.1", 0, _metrics("CICA", "SCO-RATS"), _readiness_of(READY))
    sco_rats = HttpServer("127.0.0.1", 0, _metrics("SCO-RATS", "CICA"), _readiness_of(READY))
    await cica.start()
    await sco_rats.start()
    try:
        assert cica.port != sco_rats.port
        async with aiohttp.ClientSession() as session:
            bodies = {}
            for name, server in (("CICA", cica), ("SCO-RATS", sco_rats)):
                async with session.get(f"http://127.0.0.1:{server.port}/metrics") as response:
                    bodies[name] = await response.text()
    finally:
        await cica.stop()
        await sco_rats.stop()

    assert 'gateway_build_info{party="CICA"' in bodies["CICA"]
    assert 'gateway_build_info{party="SCO-RATS"' not in bodies["CICA"]
    assert 'gateway_build_info{party="SCO-RATS"' in bodies["SCO-RATS"]


async def test_start_twice_is_refused_and_stop_twice_is_harmless() -> None:
    server = HttpServer("127.0.0.1", 0, _metrics(), _readiness_of(READY))
    await server.start()
    try:
        with pytest.raises(RuntimeError):
            await server.start()
    finally:
        await server.stop()
    await server.stop()


async def test_a_taken_port_fails_start_and_leaves_it_startable() -> None:
    first = HttpServer("127.0.0.1", 0, _metrics(), _readiness_of(READY))
    await first.start()
    second = HttpServer("127.0.0.1", first.port, _metrics(), _readiness_of(READY))
    try:
        with pytest.raises(OSError, match=r"(?i)in use"):
            await second.start()
        with pytest.raises(RuntimeError):
            _ = second.port
    finally:
        await first.stop()
