"""Operations tests: scraping a gateway's HTTP side and driving the broker."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from gateway.service import Gateway
from tests.support.vhosts import DEFINITIONS

Labels = frozenset[tuple[str, str]]


@dataclass(frozen=True)
class Scrape:
    """One /metrics answer: every sample by series name and label set."""

    samples: Mapping[tuple[str, Labels], float]

    @classmethod
    def parse(cls, text: str) -> Scrape:
        return cls(
            {
                (sample.name, frozenset(sample.labels.items())): sample.value
                for family in text_string_to_metric_families(text)
                for sample in family.samples
            }
        )

    def names(self) -> set[str]:
        return {name for name, _ in self.samples}

    def matching(self, name: str, **labels: str) -> dict[Labels, float]:
        """Samples of ``name`` whose labels include ``labels``."""
        wanted = set(labels.items())
        return {
            series: value
            for (series_name, series), value in self.samples.items()
            if series_name == name and wanted <= series
        }

    def value(self, name: str, **labels: str) -> float:
        """The sum over every sample of ``name`` whose labels include ``labels``."""
        return sum(self.matching(name, **labels).values())


def base_url(gateway: Gateway) -> str:
    return f"http://127.0.0.1:{gateway.http.port}"


async def get(gateway: Gateway, path: str) -> tuple[int, str]:
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session,
        session.get(base_url(gateway) + path) as response,
    ):
        return response.status, await response.text()


async def scrape(gateway: Gateway) -> Scrape:
    status, text = await get(gateway, "/metrics")
    assert status == 200, text
    return Scrape.parse(text)


async def readyz(gateway: Gateway) -> tuple[int, dict[str, Any]]:
    status, text = await get(gateway, "/readyz")
    body: dict[str, Any] = json.loads(text)
    return status, body


async def rabbitmqctl(*args: str) -> str:
    """Run rabbitmqctl without blocking the event loop the gateways run on."""
    process = await asyncio.create_subprocess_exec(
        "rabbitmqctl",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 0, f"rabbitmqctl {' '.join(args)}: {err.decode()}"
    return out.decode()


async def cut_off(user: str, vhost: str) -> int:
    """Take ``user``'s access to ``vhost`` away and close its connections there.

    RabbitMQ 3.10 has ``close_all_user_connections``, but it closes the user's connections on
    every vhost, and other test sessions share the users on their own vhosts: so the user's
    connections to this vhost are listed and closed one by one. Without permissions, the
    client's reconnects are refused until ``restore`` gives them back.
    """
    await rabbitmqctl("--quiet", "clear_permissions", "-p", vhost, user)
    listing = await rabbitmqctl("--silent", "list_connections", "pid", "user", "vhost")
    rows = [line.split("\t") for line in listing.splitlines() if line.strip()]
    pids = [pid for pid, row_user, row_vhost in rows if (row_user, row_vhost) == (user, vhost)]
    for pid in pids:
        await rabbitmqctl("--quiet", "close_connection", pid, "operations test: broker cut off")
    return len(pids)


async def restore(user: str, vhost: str, prefix: str) -> None:
    """Give ``user`` back its permissions on ``vhost`` from deploy/rabbitmq/definitions.json."""
    definitions = json.loads(DEFINITIONS.read_text(encoding="utf-8"))
    (perm,) = [
        p for p in definitions["permissions"] if p["user"] == user and prefix + p["vhost"] == vhost
    ]
    await rabbitmqctl(
        "--quiet",
        "set_permissions",
        "-p",
        vhost,
        user,
        perm["configure"],
        perm["write"],
        perm["read"],
    )
