"""Run the benchmark: ``python -m bench.run [run|profile|backlog] [options]``.

run      (default) scenarios a-d at full speed with the same N messages, then each paced at
         --rate msgs/s for latency; prints the tables and the ratios, writes JSON to
         bench/results/.
profile  scenarios b and c at full speed with py-spy attached to every gateway process;
         prints where the CPU time goes and keeps the raw profiles in bench/results/.
backlog  fills CICA's gw.submit with --backlog small submissions while its gateway is stopped,
         then starts it and samples its RSS while it drains (minutes for a million).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import os
import platform
import shutil
import sys
import time
import traceback
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import backlog, broker, report
from bench.broker import Vhosts
from bench.gateways import GatewayProcess, make_keys
from bench.load import Publisher
from bench.measure import Phase, measure
from bench.messages import ASSIGNMENT
from bench.procs import ROOT, machine
from bench.profiles import format_summary, summarise
from bench.scenarios import SCENARIOS, Context, Scenario

PROFILE_RATE = 200
RETRY_PAUSE_S = 20.0


class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    pass


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.run",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        formatter_class=HelpFormatter,
        epilog=(__doc__ or "").split("\n\n", 1)[-1],
    )
    parser.add_argument("command", nargs="?", default="run", choices=("run", "profile", "backlog"))
    parser.add_argument("--count", type=int, default=20_000, help="messages per scenario")
    parser.add_argument("--warmup", type=int, default=500, help="unmeasured messages first")
    parser.add_argument(
        "--scenarios", default="a,b,c,d", help="which of a,b,c,d to run (run; profile: b,c)"
    )
    parser.add_argument(
        "--rate",
        type=_rates,
        default=[500.0],
        help="paced offered load, msgs/s; several comma-separated: one paced phase each",
    )
    parser.add_argument(
        "--paced-seconds", type=float, default=10.0, help="length of each paced phase (0: skip)"
    )
    parser.add_argument(
        "--paced-min-count",
        type=int,
        default=200,
        help="at least this many messages in a paced phase (a low rate's sample)",
    )
    parser.add_argument(
        "--prefetch", type=int, default=512, help="prefetch of the bare forwarder and the shovel"
    )
    parser.add_argument(
        "--stall-timeout", type=float, default=60.0, help="give up after this long with no arrival"
    )
    parser.add_argument("--vhost-prefix", default="bench-", help="vhosts <prefix>party-a/b/c")
    parser.add_argument(
        "--setup-vhosts", action="store_true", help="(re)create the vhosts and permissions"
    )
    parser.add_argument(
        "--retries", type=int, default=2, help="run a failed scenario again this many times"
    )
    parser.add_argument("--keep-workdir", action="store_true", help="keep configs, logs, archives")
    parser.add_argument("--backlog", type=int, default=1_000_000, help="backlog: submissions")
    parser.add_argument(
        "--drain-seconds", type=float, default=120.0, help="backlog: how long to watch it drain"
    )
    parser.add_argument(
        "--with-peer", action="store_true", help="backlog: run SCO-RATS's gateway too"
    )
    args = parser.parse_args(argv)
    args.scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    unknown = [s for s in args.scenarios if s not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenarios {unknown}; choose from a, b, c, d")
    return args


def _rates(text: str) -> list[float]:
    rates = [float(part) for part in text.split(",") if part.strip()]
    if not rates or any(rate <= 0 for rate in rates):
        raise argparse.ArgumentTypeError(f"rates must be positive numbers: {text!r}")
    return rates


async def versions() -> dict[str, str]:
    return {
        "rabbitmq": await broker.server_version(),
        "python": platform.python_version(),
        "aio-pika": importlib.metadata.version("aio-pika"),
        "aiormq": importlib.metadata.version("aiormq"),
    }


def warn_if_busy() -> None:
    load = os.getloadavg()[0]
    cpus = os.cpu_count() or 1
    if load > 0.5 * cpus:
        print(
            f"WARNING: load average {load:.1f} on {cpus} CPUs before the run: other work "
            "competes for the CPU, so the figures will be low and noisy",
            flush=True,
        )


async def run_scenario(
    scenario: Scenario,
    args: argparse.Namespace,
    tag: str,
    phases: list[Phase],
    profile_dir: Path | None,
) -> None:
    publisher: Publisher | None = None
    print(f"({scenario.key}) {scenario.title}: starting", flush=True)
    try:
        await scenario.start()
        publisher = await Publisher.open(scenario.target)
        await publisher.send(scenario.preamble(), routing_key=ASSIGNMENT)
        if args.warmup:
            await measure(
                scenario,
                publisher,
                phase="warmup",
                tag=tag,
                count=args.warmup,
                stall_s=args.stall_timeout,
            )
        full = await measure(
            scenario,
            publisher,
            phase="full",
            tag=tag,
            count=args.count,
            stall_s=args.stall_timeout,
            profile_dir=profile_dir,
        )
        phases.append(full)
        print(
            f"  full speed: {full.msgs_per_s:,.0f} msgs/s, p50 {full.latency.p50_ms:,.1f} ms",
            flush=True,
        )
        for rate in args.rate if profile_dir is None and args.paced_seconds > 0 else ():
            paced = await measure(
                scenario,
                publisher,
                phase="paced",
                tag=f"{tag}-{rate:g}",
                count=max(int(rate * args.paced_seconds), args.paced_min_count),
                rate=rate,
                stall_s=args.stall_timeout,
            )
            phases.append(paced)
            print(
                f"  paced {rate:,.0f}/s: p50 {paced.latency.p50_ms:,.1f} ms, "
                f"p99 {paced.latency.p99_ms:,.1f} ms",
                flush=True,
            )
    except Exception:
        print(f"({scenario.key}) FAILED:\n{traceback.format_exc()}", flush=True)
        try:
            print(await scenario.diagnose(), flush=True)
        except Exception as exc:
            print(f"(no diagnosis: {exc!r})")
        raise
    finally:
        if publisher is not None:
            await publisher.close()
        await scenario.stop()


async def run(args: argparse.Namespace, profiling: bool) -> int:
    vhosts = Vhosts(args.vhost_prefix)
    await broker.wait_reachable()
    if await broker.ensure_vhosts(vhosts, force=args.setup_vhosts):
        print(f"created vhosts {', '.join(vhosts.all())}", flush=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    tag = f"{stamp}-{uuid.uuid4().hex[:6]}"
    workdir = ROOT / "var" / "bench" / tag
    keys = workdir / "keys"
    make_keys(keys)
    ctx = Context(vhosts, workdir, keys, args.prefetch)
    profile_dir = report.RESULTS / f"profile-{stamp}" if profiling else None
    if profile_dir is not None:
        profile_dir.mkdir(parents=True)
    keys_to_run = [k for k in args.scenarios if not profiling or k in ("b", "c")]
    info: dict[str, Any] = {"machine": machine(), "versions": await versions()}
    print(f"machine: {info['machine']}\nversions: {info['versions']}", flush=True)
    warn_if_busy()
    phases: list[Phase] = []
    failures: dict[str, str] = {}
    for key in keys_to_run:
        for attempt in range(1 + args.retries):
            done: list[Phase] = []
            try:
                await run_scenario(SCENARIOS[key](ctx), args, f"{tag}-{attempt}", done, profile_dir)
            except Exception as exc:
                failures[key] = f"{type(exc).__name__}: {exc}"
                if profile_dir is not None:  # a failed attempt's profile is not the figures'
                    for partial in profile_dir.glob(f"{tag}-{attempt}-{key}-*"):
                        partial.unlink()
                if attempt < args.retries:
                    print(f"({key}) trying again in {RETRY_PAUSE_S:.0f} s", flush=True)
                    # A restart of the broker by another session often comes in a series.
                    await asyncio.sleep(RETRY_PAUSE_S)
                    await broker.wait_reachable(timeout=300)
                continue
            phases += done
            failures.pop(key, None)
            break
    print()
    print(report.render(phases, failures, args.count))
    payload = {
        "kind": "profile" if profiling else "run",
        **info,
        "args": vars(args),
        "phases": [p.to_json() for p in phases],
        "ratios": {
            f"{n}/{d}": report.ratio(phases, n, d) for n, d in (("b", "a"), ("b", "d"), ("c", "a"))
        },
        "cpu_ratio_b/a": report.cpu_ratio(phases, "b", "a"),
        "failures": failures,
    }
    if profile_dir is not None:
        summaries = []
        for raw in sorted(profile_dir.glob("*.pyspy.txt")):
            text = format_summary(raw.name.removesuffix(".pyspy.txt"), summarise(raw), PROFILE_RATE)
            summaries.append(text)
            print("\n" + text)
        (profile_dir / "summary.txt").write_text("\n\n".join(summaries) + "\n")
        print(f"\nprofiles: {profile_dir}")
    path = report.write_json(payload["kind"], payload)
    print(f"\nresults: {path}")
    if failures or args.keep_workdir:
        print(f"work directory (configs, logs, archives): {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    return 1 if failures else 0


async def run_backlog(args: argparse.Namespace) -> int:
    vhosts = Vhosts(args.vhost_prefix)
    await broker.wait_reachable()
    await broker.ensure_vhosts(vhosts, force=args.setup_vhosts)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    tag = f"{stamp}-{uuid.uuid4().hex[:6]}"
    workdir = ROOT / "var" / "bench" / tag
    keys = workdir / "keys"
    make_keys(keys)
    parties = ["CICA", "SCO-RATS"] if args.with_peer else ["CICA"]
    gateways = {p: GatewayProcess(p, vhosts, keys, workdir) for p in parties}
    info: dict[str, Any] = {"machine": machine(), "versions": await versions()}
    started = time.monotonic()
    try:
        result = await backlog.measure_backlog(
            vhosts, gateways, count=args.backlog, drain_s=args.drain_seconds, tag=tag
        )
    finally:
        for gateway in gateways.values():
            await gateway.stop()
        # A million messages left on the broker would slow everything else down.
        await broker.wait_reachable(timeout=180)
        for vhost in vhosts.all():
            await broker.purge(vhost, broker.GATEWAY_QUEUES)
    print()
    print(backlog.render(result))
    path = report.write_json(
        "backlog", {"kind": "backlog", **info, "args": vars(args), "result": result.to_json()}
    )
    print(f"\nresults: {path} (took {time.monotonic() - started:,.0f} s)")
    if args.keep_workdir:
        print(f"work directory: {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.command == "backlog":
        return asyncio.run(run_backlog(args))
    return asyncio.run(run(args, profiling=args.command == "profile"))


if __name__ == "__main__":
    sys.exit(main())
