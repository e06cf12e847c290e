"""One measured phase of one scenario: offer messages, wait for all of them, sum up."""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.gateways import Totals
from bench.load import Publisher, Tracker, percentile
from bench.messages import share_bytes
from bench.procs import Sampler, broker_pid
from bench.profiles import Profiler
from bench.scenarios import Scenario

BROKER = "broker (beam.smp)"
DRIVER = "benchmark driver (publisher + consumers)"


@dataclass
class Latency:
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float

    @classmethod
    def of(cls, seconds: list[float]) -> Latency:
        ms = [s * 1000 for s in seconds]
        return cls(percentile(ms, 50), percentile(ms, 95), percentile(ms, 99), max(ms, default=0.0))


@dataclass
class ProcessFigures:
    rss_start_mb: float
    rss_peak_mb: float
    rss_end_mb: float
    cpu_us_per_msg: float


@dataclass
class Stage:
    """One of a gateway's own stage histograms over a phase: how often, and how long on average
    (the archive batch size is records, not milliseconds)."""

    count: int
    mean: float


@dataclass
class Phase:
    scenario: str
    title: str
    phase: str
    count: int
    offered_rate: float | None
    publish_s: float
    elapsed_s: float
    msgs_per_s: float
    latency: Latency
    other_arrivals: dict[str, Latency]
    duplicates: int
    workers: dict[str, ProcessFigures]
    broker: ProcessFigures | None
    driver: ProcessFigures
    leftovers: dict[str, int] = field(default_factory=dict)
    stages: dict[str, dict[str, Stage]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


async def measure(
    scenario: Scenario,
    publisher: Publisher,
    *,
    phase: str,
    tag: str,
    count: int,
    rate: float | None = None,
    stall_s: float = 60.0,
    profile_dir: Path | None = None,
) -> Phase:
    """Publish ``count`` messages (paced at ``rate`` if given) and wait until all arrived."""
    ids = [f"{tag}-{scenario.key}-{phase}-{i}" for i in range(count)]
    messages = [(message_id, share_bytes(i)) for i, message_id in enumerate(ids)]
    sent_at: dict[str, float] = {}
    expected = frozenset(ids)
    trackers = []
    for queue in scenario.finals:
        queue.sink.tracker = Tracker(queue.name, sent_at, expected)
        trackers.append(queue.sink.tracker)
    workers = scenario.workers()
    pids = dict(workers)
    beam = broker_pid()
    if beam is not None and beam not in workers.values():
        pids[BROKER] = beam
    pids[DRIVER] = os.getpid()
    sampler = Sampler(pids)
    profilers = [
        Profiler(pid, profile_dir / f"{tag}-{scenario.key}-{name.replace(' ', '-')}.pyspy.txt")
        for name, pid in workers.items()
        if profile_dir is not None
    ]
    gateways = scenario.gateways()
    before = {name: await gateway.totals() for name, gateway in gateways.items()}
    for profiler in profilers:
        profiler.start()
    sampler.start()
    try:
        started = time.time()
        await publisher.send(messages, sent_at, rate)
        published = time.time()
        for tracker in trackers:
            await tracker.wait(stall_s, scenario.check)
    finally:
        usage = await sampler.stop()
        for profiler in profilers:
            await profiler.stop()
        for queue in scenario.finals:
            queue.sink.tracker = None
    stages = {
        name: _stages(before[name], await gateway.totals()) for name, gateway in gateways.items()
    }
    finished = max(t.last_arrival or published for t in trackers)
    elapsed = finished - started

    def figures(name: str) -> ProcessFigures:
        u = usage[name]
        return ProcessFigures(u.rss_start_mb, u.rss_peak_mb, u.rss_end_mb, u.cpu_s * 1e6 / count)

    return Phase(
        scenario=scenario.key,
        title=scenario.title,
        phase=phase,
        count=count,
        offered_rate=rate,
        publish_s=published - started,
        elapsed_s=elapsed,
        msgs_per_s=count / elapsed if elapsed > 0 else float("nan"),
        latency=Latency.of(trackers[0].latencies),
        other_arrivals={t.name: Latency.of(t.latencies) for t in trackers[1:]},
        duplicates=sum(t.duplicates for t in trackers),
        workers={name: figures(name) for name in workers if name in usage},
        broker=figures(BROKER) if BROKER in usage else None,
        driver=figures(DRIVER),
        leftovers=await scenario.leftovers(),
        stages=stages,
    )


def _stages(before: Totals, after: Totals) -> dict[str, Stage]:
    stages = {}
    for key, (total, count) in after.items():
        total -= before.get(key, (0.0, 0.0))[0]
        count -= before.get(key, (0.0, 0.0))[1]
        if count > 0:
            scale = 1.0 if key == "batch" else 1000.0  # seconds to milliseconds
            stages[key.removeprefix("stage:")] = Stage(int(count), total / count * scale)
    return stages
