"""A real Prometheus scrapes two running gateways and answers the dashboard's queries (issue 7)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from gateway.service import Gateway
from tests.deploy.test_dashboard import RULES, dashboard_queries
from tests.integration.conftest import Network
from tests.support.broker import Vhost
from tests.support.parties import assignment, share, submission
from tests.support.waiting import wait_until

pytestmark = pytest.mark.broker

SCRAPE_INTERVAL = "1s"
DASHBOARD_VARIABLES = {"$party": ".*", "$__rate_interval": "30s", "$__range": "5m"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def scrape_config(targets: dict[str, int]) -> dict[str, Any]:
    """Like deploy/prometheus/prometheus.yml, for gateways on ``targets`` (Party -> port)."""
    return {
        "global": {
            "scrape_interval": SCRAPE_INTERVAL,
            "scrape_timeout": SCRAPE_INTERVAL,
            "evaluation_interval": SCRAPE_INTERVAL,
        },
        "rule_files": [str(RULES)],
        "scrape_configs": [
            {
                "job_name": "liaison-gateway",
                "honor_labels": True,
                "static_configs": [
                    {"targets": [f"127.0.0.1:{port}"], "labels": {"party": party}}
                    for party, port in targets.items()
                ],
            }
        ],
    }


def dashboard_expr(title: str) -> str:
    (expr,) = [expr for where, expr in dashboard_queries() if where == title]
    for variable, value in DASHBOARD_VARIABLES.items():
        expr = expr.replace(variable, value)
    return expr


@dataclass
class Prometheus:
    url: str
    session: aiohttp.ClientSession

    async def query(self, expr: str) -> list[dict[str, Any]]:
        async with self.session.get(f"{self.url}/api/v1/query", params={"query": expr}) as r:
            answer = await r.json()
        assert answer["status"] == "success", answer
        result: list[dict[str, Any]] = answer["data"]["result"]
        return result

    async def values(self, expr: str, by: str) -> dict[str, float]:
        return {s["metric"].get(by, ""): float(s["value"][1]) for s in await self.query(expr)}

    async def ready(self) -> bool:
        with contextlib.suppress(aiohttp.ClientError):
            async with self.session.get(f"{self.url}/-/ready") as response:
                return response.status == 200
        return False


@contextlib.asynccontextmanager
async def running_prometheus(
    binary: str, directory: Path, targets: dict[str, int]
) -> AsyncIterator[Prometheus]:
    config = directory / "prometheus.yml"
    config.write_text(yaml.safe_dump(scrape_config(targets)), encoding="utf-8")
    address = f"127.0.0.1:{free_port()}"
    with (directory / "prometheus.log").open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={directory / 'data'}",
            f"--web.listen-address={address}",
            "--log.level=warn",
            stdout=log,
            stderr=log,
        )
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
            prometheus = Prometheus(f"http://{address}", session)
            await wait_until(prometheus.ready, timeout=30, message="prometheus ready")
            yield prometheus
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), timeout=10)
            except TimeoutError:
                process.kill()
                await process.wait()


async def start(network: Network, party: str) -> Gateway:
    running = await network.start(party)
    assert running.gateway is not None
    return running.gateway


async def test_prometheus_scrapes_two_gateways_and_answers_the_dashboard(
    network: Network, vhosts: dict[str, Vhost], prometheus: str, tmp_path: Path
) -> None:
    cica, sco_rats = await start(network, "CICA"), await start(network, "SCO-RATS")
    targets = {"CICA": cica.http.port, "SCO-RATS": sco_rats.http.port}
    async with running_prometheus(prometheus, tmp_path, targets) as server:

        async def both_scraped() -> bool:
            up = await server.values('up{job="liaison-gateway"}', by="party")
            return up == {"CICA": 1.0, "SCO-RATS": 1.0}

        # Traffic only after a first scrape: rate() needs the counters before and after.
        await wait_until(both_scraped, timeout=20, message="both gateways scraped")
        desk_a, desk_b = await network.desk("CICA"), await network.desk("SCO-RATS")
        await desk_a.submit(submission("liaison.assignment", "SCO-RATS", assignment("lo-a")))
        await desk_b.submit(submission("liaison.assignment", "CICA", assignment("lo-b")))
        for i in range(5):
            await desk_a.submit(share("SCO-RATS", f"Report {i}.", officer="lo-a"))

        crossing = dashboard_expr("Messages crossing / s")

        async def flowing() -> bool:
            rates = await server.values(crossing, by="direction")
            return rates.get("outbound", 0) > 0 and rates.get("inbound", 0) > 0

        await wait_until(flowing, timeout=20, message="dashboard throughput above zero")

        async def recorded() -> bool:
            rate = await server.values(
                'party_direction_outcome:gateway_messages:rate5m{direction="outbound",'
                'outcome="forwarded"}',
                by="party",
            )
            return rate.get("CICA", 0) > 0 and rate.get("SCO-RATS", 0) > 0

        await wait_until(recorded, timeout=20, message="the recording rule above zero")

        connected = await server.query(dashboard_expr("Broker connection state") + " == 1")
        assert {(s["metric"]["party"], s["metric"]["broker"]) for s in connected} == {
            (party, broker)
            for party in targets
            for broker in ("local", "CICA", "SCO-RATS", "UNOCT")
            if broker != party
        }

        async with server.session.get(f"{server.url}/api/v1/rules") as response:
            groups = (await response.json())["data"]["groups"]
        rules = [rule for group in groups for rule in group["rules"]]
        assert len(rules) >= 9
        assert all(rule["health"] == "ok" for rule in rules), rules
