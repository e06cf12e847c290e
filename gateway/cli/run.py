"""``gateway run``, ``gateway provision`` and ``gateway demo``: the service itself."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

import structlog

from gateway import topology
from gateway.config import load_config
from gateway.logging import configure_logging
from gateway.service import Gateway
from gateway.tls import local_endpoint

log = structlog.get_logger(__name__)


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    run = commands.add_parser("run", help="run one Party's gateway until SIGTERM/SIGINT")
    run.add_argument("--config", type=Path, required=True)
    run.set_defaults(handler=_run)

    provision = commands.add_parser(
        "provision", help="declare the wire contract's exchanges and queues (idempotent)"
    )
    provision.add_argument("--config", type=Path, required=True, nargs="+")
    provision.set_defaults(handler=_provision)

    demo = commands.add_parser(
        "demo", help="run both local Parties' gateways and a demonstration exchange"
    )
    demo.add_argument("--config", type=Path, nargs=2, required=True, metavar=("A", "B"))
    demo.add_argument(
        "--exit", action="store_true", help="stop after the exchange instead of running on"
    )
    demo.set_defaults(handler=_demo)


def _run(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    configure_logging(config.log_format)

    async def main() -> None:
        gateway = Gateway(config)
        await gateway.start()
        await gateway.run_until_signalled()

    asyncio.run(main())
    return 0


def _provision(args: argparse.Namespace) -> int:
    for path in args.config:
        config = load_config(path)
        local = local_endpoint(config)
        limit = config.limits.submit_queue_max_length
        asyncio.run(topology.provision(local.url, limit, local.ssl_context))
        print(f"provisioned {config.party} ({path})")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from gateway.demo import run_demo

    configs = [load_config(path) for path in args.config]
    # The demonstration's own lines are the point; the gateways' logs only when they warn.
    configure_logging(configs[0].log_format, level="warning")
    return asyncio.run(run_demo(configs, keep_running=not args.exit))
