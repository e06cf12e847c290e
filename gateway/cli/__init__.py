"""The ``gateway`` command line: one sub-module per command group, each with ``register``.

Only the module of the command being run is imported: ``gateway --help`` and
``gateway --version`` answer without loading the broker, archive or crypto libraries.
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import re
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Final, NoReturn

# Exit statuses of the operator commands (``gateway submit`` has its own, for shell scripts).
EXIT_OK: Final = 0
EXIT_FAILED: Final = 1  # not done: unavailable, no answer in time, a check failed
EXIT_USAGE: Final = 2  # bad arguments, a bad configuration or key file
EXIT_REFUSED: Final = 3  # refused: by the broker (run), by the desk's rules (consent)
EXIT_UNAVAILABLE: Final = 4  # the broker or the archive cannot be reached (run)

# Each command, the module that registers it, and its one-line help (a test checks that the
# modules say the same).
COMMANDS: Final[dict[str, tuple[str, str]]] = {
    "run": ("run", "run one Party's gateway until SIGTERM/SIGINT"),
    "provision": ("run", "declare the wire contract's exchanges and queues (idempotent)"),
    "demo": ("run", "run both local Parties' gateways and a demonstration exchange"),
    "submit": (
        "submit",
        "validate a submission and publish it to gw.submit as a back-office system",
    ),
    "contracts": ("contracts", "the shared contracts"),
    "keys": ("keys", "generate and inspect Ed25519 signing keys"),
    "certs": ("certs", "create the local set-up's CA and TLS certificates"),
    "archive": ("archive", "verify, inspect, search and export the archive"),
    "consent": ("consent", "consent decisions in force, and requests for consent"),
    "quarantine": (
        "consent",
        "submissions the third-party rule stopped: list, show, release, discard",
    ),
    "replay": (
        "replay",
        "replay archived messages to gw.deliver, to the peer, or through the checks again",
    ),
    "review": ("review", "held submissions: list, show, release or refuse (four eyes)"),
    "operators": ("operators", "operator accounts of the console"),
}

_AGO = re.compile(r"^(\d+)\s*(s|m|h|d|w)$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_instant(text: str, now: datetime) -> datetime:
    """An RFC 3339 time, a span ago (``30m``, ``2h``, ``7d``, ``1w``), or ``today``/``yesterday``
    (midnight UTC); ValueError otherwise."""
    from gateway.archive.records import parse_time

    word = text.strip().lower()
    midnight = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if word == "now":
        return now
    if word == "today":
        return midnight
    if word == "yesterday":
        return midnight - timedelta(days=1)
    ago = _AGO.match(word)
    if ago is not None:
        return now - timedelta(**{_UNITS[ago.group(2)]: int(ago.group(1))})
    return parse_time(text)


def instant(text: str) -> datetime:
    """A time on the command line (--since, --until): see ``parse_instant``."""
    try:
        return parse_instant(text, datetime.now(UTC))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a time: use RFC 3339 (2026-03-01T12:00:00Z), a span ago "
            "(30m, 2h, 7d, 1w), today or yesterday"
        ) from None


def one_of(allowed: Sequence[str], what: str) -> Callable[[str], str]:
    """An argument type accepting ``allowed`` only, suggesting the nearest on a typo."""

    def check(text: str) -> str:
        if text in allowed:
            return text
        near = difflib.get_close_matches(text, allowed, n=1)
        hint = f"did you mean {near[0]}?" if near else f"one of {', '.join(allowed)}"
        raise argparse.ArgumentTypeError(f"{text!r} is not a known {what} ({hint})")

    return check


class _Parser(argparse.ArgumentParser):
    """Usage errors in one line, naming the command to ask for help (exit 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: {message} (see {self.prog} --help)\n")


def _module(name: str) -> ModuleType:
    return importlib.import_module(f"gateway.cli.{name}")


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser with ``command``'s module registered (every module when None); the other
    commands are listed with their help only."""
    from gateway.version import package_version

    parser = _Parser(prog="gateway", description="Liaison gateway between two Parties' brokers")
    parser.add_argument("--version", action="version", version=f"gateway {package_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    # None: every module (tests); a known command: its module only; anything else: none.
    if command is None:
        load = {module for module, _ in COMMANDS.values()}
    else:
        load = {COMMANDS[command][0]} if command in COMMANDS else set()
    loaded: set[str] = set()
    for name, (module, help_text) in COMMANDS.items():
        if module not in load:
            commands.add_parser(name, help=help_text)
        elif module not in loaded:
            _module(module).register(commands)
            loaded.add(module)
    return parser


def _command_of(argv: Sequence[str]) -> str | None:
    """The command named on the command line, or "" when there is none."""
    for arg in argv:
        if not arg.startswith("-"):
            return arg
    return ""


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(_command_of(arguments))
    args = parser.parse_args(arguments)
    from gateway.config import ConfigError

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
