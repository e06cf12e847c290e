"""Gateways as the benchmark runs them: real ``gateway run`` processes on the benchmark vhosts.

Each runs as its own process (``<venv>/bin/gateway run --config ...``), so its memory and CPU
time are its own. The configuration is the local set-up's (deploy/local/*.toml: prefetch 512,
batches of 256 within 4 ms) and every key can be overridden from the environment as usual,
e.g. ``GATEWAY_BROKER__BATCH_SIZE=512 python -m bench.run``.
"""

from __future__ import annotations

import asyncio
import json
import socket
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from bench.broker import Vhosts, user_url
from bench.procs import Child
from gateway.core.keys import generate_key_pair

PARTIES = {  # party: (vhost attribute, user slug)
    "CICA": ("a", "cica"),
    "SCO-RATS": ("b", "sco-rats"),
    "UNOCT": ("c", "unoct"),
}
PARTNERS = {"CICA": "SCO-RATS", "SCO-RATS": "CICA", "UNOCT": "CICA"}
# The local set-up's back-office systems, which the scenarios submit as (assignments included).
ROSTER_ADMINS = ("case-desk", "analysis-desk", "unoct-desk")
GATEWAY_BIN = Path(sys.executable).parent / "gateway"

# The gateway's own histograms whose sums and counts say where a batch spends its time.
STAGE_METRICS = ("gateway_stage_seconds", "gateway_archive_batch_size")

Totals = dict[str, tuple[float, float]]
"""(sum, count) of each stage histogram, keyed ``stage:<label>`` or ``archive_batch_size``."""


def key_id(party: str) -> str:
    return f"{party}-bench-1"


def make_keys(directory: Path) -> None:
    start = datetime.now(UTC) - timedelta(days=1)
    for party in PARTIES:
        generate_key_pair(party, directory, key_id=key_id(party), valid_from=start)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def config_text(party: str, vhosts: Vhosts, keys: Path, archive: Path, http_port: int) -> str:
    vhost_of = {p: getattr(vhosts, attr) for p, (attr, _) in PARTIES.items()}
    slug = PARTIES[party][1]
    lines = [
        f'party = "{party}"',
        'log_format = "json"',
        f"roster_admins = {json.dumps(list(ROSTER_ADMINS))}",
        "[broker]",
        f'url = "{user_url(slug + "-gateway", vhost_of[party])}"',
        # Plain AMQP, as the bare forwarder and the shovel it is compared with.
        "allow_plaintext = true",
        "prefetch = 512",
        "batch_size = 256",
        "batch_linger_ms = 4",
        "[http]",
        f"port = {http_port}",
        "[archive]",
        f'url = "sqlite:///{archive}"',
        "[keys]",
        f'signing_key = "{keys / (key_id(party) + ".key")}"',
    ]
    for other in PARTIES:
        if other == party:
            continue
        role = "partner" if PARTNERS[party] == other else "third-party"
        lines += [
            "[[counterparties]]",
            f'id = "{other}"',
            f'role = "{role}"',
            f'url = "{user_url(slug + "-peer", vhost_of[other])}"',
            "allow_plaintext = true",
            f'public_keys = ["{keys / (key_id(other) + ".pub.json")}"]',
        ]
    return "\n".join(lines) + "\n"


class GatewayProcess(Child):
    """One Party's gateway with a fresh archive; ``start`` returns once /readyz says ready."""

    def __init__(self, party: str, vhosts: Vhosts, keys: Path, workdir: Path) -> None:
        slug = PARTIES[party][1]
        self.http_port = free_port()
        archive = workdir / f"{slug}.db"
        for stale in workdir.glob(f"{slug}.db*"):
            stale.unlink()
        config = workdir / f"{slug}.toml"
        config.write_text(config_text(party, vhosts, keys, archive, self.http_port))
        super().__init__(
            f"{party} gateway",
            [str(GATEWAY_BIN), "run", "--config", str(config)],
            workdir / f"{slug}.log",
        )

    async def totals(self) -> Totals:
        """The stage histograms' running sums and counts, from the gateway's /metrics."""
        url = f"http://127.0.0.1:{self.http_port}/metrics"
        async with aiohttp.ClientSession() as session, session.get(url) as response:
            text = await response.text()
        found: dict[str, list[float]] = {}
        for family in text_string_to_metric_families(text):
            if family.name not in STAGE_METRICS:
                continue
            for sample in family.samples:
                part = sample.name.rpartition("_")[2]
                if part not in ("sum", "count"):
                    continue
                key = f"stage:{sample.labels['stage']}" if "stage" in sample.labels else "batch"
                slot = found.setdefault(key, [0.0, 0.0])
                slot[0 if part == "sum" else 1] += sample.value
        return {key: (value[0], value[1]) for key, value in found.items()}

    async def start_ready(self, timeout: float = 60.0) -> None:
        self.start()
        url = f"http://127.0.0.1:{self.http_port}/readyz"
        deadline = time.monotonic() + timeout
        last = "no answer"
        async with aiohttp.ClientSession() as session:
            while time.monotonic() < deadline:
                self.check()
                try:
                    async with session.get(url) as response:
                        if response.status == 200:
                            return
                        last = await response.text()
                except aiohttp.ClientError as exc:
                    last = repr(exc)
                await asyncio.sleep(0.2)
        raise TimeoutError(f"{self.name} not ready after {timeout:.0f} s: {last}")
