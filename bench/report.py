"""The benchmark's output: tables for a terminal, ratios against the targets, JSON for later."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.measure import Phase

RESULTS = Path(__file__).resolve().parent / "results"


def _label(phase: Phase) -> str:
    return f"({phase.scenario}) {phase.title}"


def _joined(values: Sequence[float], digits: int = 0) -> str:
    return " + ".join(f"{v:,.{digits}f}" for v in values) or "-"


def publisher_bound(phase: Phase) -> bool:
    """The last message arrived as the publisher finished: the system kept up with it, so its
    rate is only a lower bound (at full speed), or it sustained the offered rate (paced)."""
    return phase.elapsed_s <= 1.05 * phase.publish_s


def _rate(phase: Phase) -> str:
    rate = f"{phase.msgs_per_s:,.0f}"
    if phase.offered_rate is None:
        return (">=" + rate) if publisher_bound(phase) else rate
    return rate if phase.msgs_per_s >= 0.95 * phase.offered_rate else rate + "!"


def _row(phase: Phase) -> str:
    workers = list(phase.workers.values())
    broker_cpu = f"{phase.broker.cpu_us_per_msg:,.0f}" if phase.broker else "-"
    return (
        f"{_label(phase):<44} {_rate(phase):>8} {phase.latency.p50_ms:>8,.1f} "
        f"{phase.latency.p95_ms:>8,.1f} {phase.latency.p99_ms:>8,.1f} "
        f"{_joined([w.rss_peak_mb for w in workers]):>13} "
        f"{_joined([w.cpu_us_per_msg for w in workers]):>13} {broker_cpu:>9}"
    )


HEADER = (
    f"{'scenario':<44} {'msgs/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} "
    f"{'peak RSS MB':>13} {'CPU us/msg':>13} {'broker':>9}"
)
NOTES = (
    "peak RSS and CPU us/msg are those of the process(es) doing the work: the forwarder, the\n"
    "gateway(s) (CICA + SCO-RATS for (c)), the broker itself for the shovel. 'broker' is the\n"
    "RabbitMQ node's CPU us/msg over the same interval (it also serves anything else running).\n"
    "'>=N': the system kept up with the publisher, N is a lower bound. 'N!': it did not keep up\n"
    "with the offered rate, so its latency is that of a growing queue. CPU us/msg is the\n"
    "figure least disturbed by other load on the machine."
)


def _phase(phase: Phase) -> str:
    if phase.offered_rate is None:
        return phase.phase
    return f"{phase.phase} {phase.offered_rate:,.0f}/s"


# Issue 15's end-to-end targets: (p50, p99) in ms under load, p50 alone at a low rate.
LOADED_TARGET_MS = (15.0, 100.0)
LOW_RATE = 100.0
LOW_RATE_P50_MS = 10.0


def _latency_verdict(phase: Phase) -> str:
    p50, p99 = phase.latency.p50_ms, phase.latency.p99_ms
    figures = f"(c) at {phase.offered_rate or 0:,.0f} msgs/s: p50 {p50:.1f} ms, p99 {p99:.1f} ms"
    if phase.offered_rate is not None and phase.offered_rate <= LOW_RATE:
        verdict = "meets" if p50 <= LOW_RATE_P50_MS else "misses"
        return f"{figures} ({verdict} the p50 <= {LOW_RATE_P50_MS:g} ms target)"
    p50_target, p99_target = LOADED_TARGET_MS
    verdict = "meets" if p50 <= p50_target and p99 <= p99_target else "misses"
    return f"{figures} ({verdict} the p50 <= {p50_target:g} / p99 <= {p99_target:g} ms target)"


def ratio(phases: Sequence[Phase], numerator: str, denominator: str) -> float | None:
    by_key = {p.scenario: p for p in phases if p.phase == "full"}
    if numerator in by_key and denominator in by_key:
        return by_key[numerator].msgs_per_s / by_key[denominator].msgs_per_s
    return None


def cpu_ratio(phases: Sequence[Phase], numerator: str, denominator: str) -> float | None:
    """Worker CPU per message of one scenario over another's (full-speed phases)."""
    by_key = {p.scenario: p for p in phases if p.phase == "full"}
    if numerator in by_key and denominator in by_key:
        num = sum(w.cpu_us_per_msg for w in by_key[numerator].workers.values())
        den = sum(w.cpu_us_per_msg for w in by_key[denominator].workers.values())
        return num / den if den else None
    return None


def render(phases: Sequence[Phase], failures: dict[str, str], count: int) -> str:
    out: list[str] = []
    full = [p for p in phases if p.phase == "full"]
    paced = [p for p in phases if p.phase == "paced"]
    if full:
        out += [
            f"Throughput: {count:,} messages of ~1 KB, published as fast as confirms allow "
            "(latency includes the queueing of a saturated system)",
            HEADER,
            "-" * len(HEADER),
        ]
        out += [_row(p) for p in full]
    for rate in dict.fromkeys(p.offered_rate for p in paced):
        at_rate = [p for p in paced if p.offered_rate == rate]
        out += [
            "",
            f"Latency at an offered {rate or 0:,.0f} msgs/s ({at_rate[0].count:,} messages, paced)",
            HEADER,
            "-" * len(HEADER),
        ]
        out += [_row(p) for p in at_rate]
    for p in phases:
        for process, stages in p.stages.items():
            parts = [
                f"archive batch {s.mean:,.1f} records x{s.count:,}"
                if name == "batch"
                else f"{name} {s.mean:,.1f} ms x{s.count:,}"
                for name, s in sorted(stages.items())
            ]
            out.append(f"({p.scenario}, {_phase(p)}) {process} mean per stage: {', '.join(parts)}")
    for p in phases:
        for name, latency in p.other_arrivals.items():
            out.append(
                f"({p.scenario}, {_phase(p)}) {name}: p50 {latency.p50_ms:,.1f} ms, "
                f"p95 {latency.p95_ms:,.1f} ms, p99 {latency.p99_ms:,.1f} ms"
            )
    out += ["", NOTES, ""]
    for label, num, den, target in (
        ("b/a  (one gateway hop / bare forwarder)", "b", "a", "target >= 1.0"),
        ("b/d  (one gateway hop / shovel)", "b", "d", "aim >= 0.5"),
        ("c/a  (end to end / bare forwarder)", "c", "a", ""),
    ):
        value = ratio(phases, num, den)
        if value is not None:
            out.append(f"throughput ratio {label}: {value:.2f}  {target}".rstrip())
    value = cpu_ratio(phases, "b", "a")
    if value is not None:
        out.append(f"CPU per message, gateway hop / bare forwarder (b/a): {value:.2f}")
    for p in paced:
        if p.scenario == "c":
            out.append(_latency_verdict(p))
    for p in phases:
        if p.duplicates:
            out.append(f"WARNING ({p.scenario}, {p.phase}): {p.duplicates} messages arrived twice")
        if p.leftovers:
            out.append(f"WARNING ({p.scenario}, {p.phase}): messages left in {p.leftovers}")
    for key, error in failures.items():
        out.append(f"FAILED ({key}): {error}")
    return "\n".join(out)


def write_json(kind: str, payload: dict[str, Any]) -> Path:
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS / f"{kind}-{stamp}.json"
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    return path
