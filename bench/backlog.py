"""The gateway's memory with a large backlog: ``python -m bench.run backlog --backlog 1000000``.

With CICA's gateway stopped, a back office fills gw.submit with small valid submissions; then
the gateway starts and drains them while its RSS is sampled. A gateway whose memory depends on
the backlog (rather than on its prefetch and batch size) shows it here; so does state that
grows with every message it has handled.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import asdict, dataclass
from typing import Any

from bench import broker
from bench.broker import Vhosts, user_url
from bench.gateways import GatewayProcess
from bench.load import Publisher, Target
from bench.messages import ASSIGNMENT, assignment_bytes, small_share_bytes
from bench.procs import Child, Sampler
from gateway import topology

CHUNK = 100_000


@dataclass
class BacklogResult:
    backlog: int
    publish_s: float
    publish_rate: float
    drain_window_s: float
    drained: int
    drain_rate: float
    rss_at_ready_mb: float
    rss_peak_mb: float
    rss_end_mb: float
    growth_mb_per_100k: float
    peer_running: bool
    series: list[tuple[float, float, int]]  # (seconds since ready, RSS MB, gw.submit depth)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of y over x (0 with fewer than two distinct x)."""
    if len({x for x, _ in points}) < 2:
        return 0.0
    n = len(points)
    mean_x = sum(x for x, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    num = sum((x - mean_x) * (y - mean_y) for x, y in points)
    den = sum((x - mean_x) ** 2 for x, _ in points)
    return num / den


async def fill(vhosts: Vhosts, count: int, tag: str) -> float:
    """Publish the assignment and ``count`` small submissions; return the seconds it took."""
    target = Target(
        user_url("case-desk", vhosts.a), topology.SUBMIT, "information.share", "case-desk"
    )
    publisher = await Publisher.open(target)
    started = time.monotonic()
    try:
        await publisher.send([(f"{tag}-assignment", assignment_bytes())], routing_key=ASSIGNMENT)
        for first in range(0, count, CHUNK):
            chunk = range(first, min(first + CHUNK, count))
            await publisher.send(
                ((f"{tag}-backlog-{i}", small_share_bytes(i)) for i in chunk), window=2000
            )
            elapsed = time.monotonic() - started
            print(
                f"  published {chunk.stop:,} of {count:,} ({chunk.stop / elapsed:,.0f}/s)",
                flush=True,
            )
    finally:
        await publisher.close()
    return time.monotonic() - started


async def measure_backlog(
    vhosts: Vhosts,
    gateways: dict[str, GatewayProcess],
    *,
    count: int,
    drain_s: float,
    tag: str,
) -> BacklogResult:
    cica = gateways["CICA"]
    await broker.provision(vhosts)
    for vhost in vhosts.all():
        await broker.purge(vhost, broker.GATEWAY_QUEUES)
    print(f"filling {vhosts.a}/gw.submit with {count:,} submissions (gateway stopped)", flush=True)
    publish_s = await fill(vhosts, count, tag)
    depth_at_start = (await broker.queue_state(vhosts.a, topology.SUBMIT)).messages
    peer: Child | None = gateways.get("SCO-RATS")
    if peer is not None:
        await gateways["SCO-RATS"].start_ready()
    await cica.start_ready()
    ready = time.monotonic()
    sampler = Sampler({"CICA": cica.pid}, interval=0.5)
    sampler.start()
    series: list[tuple[float, float, int]] = []
    depth = depth_at_start
    print(f"draining for up to {drain_s:.0f} s", flush=True)
    try:
        while time.monotonic() - ready < drain_s and depth > 0:
            await asyncio.sleep(2.0)
            cica.check()
            depth = (await broker.queue_state(vhosts.a, topology.SUBMIT)).messages
            rss = sampler.series["CICA"][-1][1]
            series.append((round(time.monotonic() - ready, 1), round(rss, 1), depth))
            if len(series) % 10 == 0:
                print(
                    f"  t={series[-1][0]:.0f}s RSS {rss:,.0f} MB, gw.submit {depth:,}", flush=True
                )
    finally:
        usage = (await sampler.stop())["CICA"]
    window = time.monotonic() - ready
    drained = depth_at_start - depth
    growth = _slope([(depth_at_start - d, rss) for _, rss, d in series]) * 100_000
    return BacklogResult(
        backlog=count,
        publish_s=publish_s,
        publish_rate=count / publish_s,
        drain_window_s=window,
        drained=drained,
        drain_rate=drained / window,
        rss_at_ready_mb=usage.rss_start_mb,
        rss_peak_mb=usage.rss_peak_mb,
        rss_end_mb=usage.rss_end_mb,
        growth_mb_per_100k=growth,
        peer_running=peer is not None,
        series=series,
    )


def render(result: BacklogResult) -> str:
    per_message = result.growth_mb_per_100k * 1024 * 1024 / 100_000
    return "\n".join(
        [
            f"Backlog of {result.backlog:,} submissions in gw.submit "
            f"(published in {result.publish_s:,.0f} s, {result.publish_rate:,.0f}/s); "
            f"peer gateway {'running' if result.peer_running else 'stopped'}",
            f"  drained {result.drained:,} in {result.drain_window_s:,.0f} s "
            f"({result.drain_rate:,.0f} msgs/s)",
            f"  CICA gateway RSS: {result.rss_at_ready_mb:,.0f} MB when ready, "
            f"peak {result.rss_peak_mb:,.0f} MB, {result.rss_end_mb:,.0f} MB at the end",
            f"  growth: {result.growth_mb_per_100k:,.1f} MB per 100,000 messages handled "
            f"(~{per_message:,.0f} bytes a message)",
        ]
    )
