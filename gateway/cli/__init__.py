"""The ``gateway`` command line: one sub-module per command group, each with ``register``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import datetime
from types import ModuleType

from gateway.archive.records import parse_time
from gateway.config import ConfigError

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


def instant(text: str) -> datetime:
    """An RFC 3339 instant on the command line (--since, --until)."""
    try:
        return parse_time(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an RFC 3339 time (e.g. 2026-03-01T12:00:00Z)"
        ) from None


def _command_modules() -> list[ModuleType]:
    from gateway.cli import archive, certs, consent, contracts, keys, replay, review, run

    return [run, contracts, keys, certs, archive, consent, replay, review]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gateway", description="Liaison gateway between two Parties' brokers"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in _command_modules():
        module.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.handler(args)
    except ConfigError as exc:
        print(f"gateway: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return EXIT_FAILED
    return code


if __name__ == "__main__":
    sys.exit(main())
