"""``gateway run``, ``gateway provision`` and ``gateway demo``: the service itself.

A configuration, key file or broker problem at start stops the command with one line naming the
problem and the fix, and an exit status a supervisor can act on (deploy/systemd does not restart
on 2 or 3):

- 2: the configuration or a key file is wrong;
- 3: the broker refused the credentials, the vhost or a permission;
- 4: the broker or the archive cannot be reached (worth retrying).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy.exc import SQLAlchemyError

from gateway import eventloop, topology
from gateway.broker_errors import BROKER_ERRORS, describe_broker_error, is_refusal
from gateway.cli import EXIT_REFUSED, EXIT_UNAVAILABLE, EXIT_USAGE
from gateway.config import GatewayConfig, load_config
from gateway.core.keys import KeyFileError
from gateway.files import UnsafeFileError
from gateway.logs import configure_logging
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


def _stopped_by(
    command: str, config: GatewayConfig, work: Callable[[], Coroutine[Any, Any, None]]
) -> int:
    """Run ``work``; a start-up problem becomes one line on stderr and an exit status."""
    try:
        eventloop.run(work())
    except KeyFileError as exc:
        print(f"gateway {command}: {exc} (keys.signing_key in the config)", file=sys.stderr)
        return EXIT_USAGE
    except UnsafeFileError as exc:
        print(f"gateway {command}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except SQLAlchemyError as exc:
        first_line = (str(exc).splitlines() or [type(exc).__name__])[0]
        print(
            f"gateway {command}: the archive cannot be opened ({first_line}); check "
            "archive.url and that the database is running",
            file=sys.stderr,
        )
        return EXIT_UNAVAILABLE
    except BROKER_ERRORS as exc:
        print(
            f"gateway {command}: {describe_broker_error(exc, config.broker.url)}", file=sys.stderr
        )
        return EXIT_REFUSED if is_refusal(exc) else EXIT_UNAVAILABLE
    return 0


def _run(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    configure_logging(config.log_format)

    async def main() -> None:
        gateway = Gateway(config)
        try:
            await gateway.start()
        except BaseException:
            with contextlib.suppress(Exception):  # what did start is released; report the cause
                await gateway.stop()
            raise
        await gateway.run_until_signalled()

    return _stopped_by("run", config, main)


def _provision(args: argparse.Namespace) -> int:
    for path in args.config:
        config = load_config(path)

        async def declare(config: GatewayConfig = config) -> None:
            local = local_endpoint(config)
            senders = [c.id for c in config.counterparties]
            limit = config.limits.submit_queue_max_length
            await topology.provision(local.url, limit, senders, local.ssl_context)

        code = _stopped_by("provision", config, declare)
        if code != 0:
            return code
        print(f"provisioned {config.party} ({path})")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from gateway.demo import run_demo

    configs = [load_config(path) for path in args.config]
    # The demonstration's own lines are the point; the gateways' logs only when they warn.
    configure_logging(configs[0].log_format, level="warning")
    return asyncio.run(run_demo(configs, keep_running=not args.exit))
