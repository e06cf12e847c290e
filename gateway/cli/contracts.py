"""``gateway contracts export [--check]``: regenerate the contract's JSON Schemas and AsyncAPI."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from contracts.export import DEFAULT_ROOT, stale, write
from gateway.cli import EXIT_FAILED, EXIT_OK

EXIT_STALE = EXIT_FAILED  # the generated files differ from the models


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("contracts", help="the shared contracts")
    actions = parser.add_subparsers(dest="contracts_command", required=True, metavar="ACTION")
    export = actions.add_parser(
        "export",
        help="write contracts/schemas/*.json and contracts/asyncapi.yaml from the models",
    )
    export.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 listing the files that are missing or out of date",
    )
    export.add_argument(
        "--root",
        type=Path,
        default=DEFAULT_ROOT,
        help="directory holding the contracts/ package (default: %(default)s)",
    )
    export.set_defaults(handler=_export)


def _export(args: argparse.Namespace) -> int:
    root: Path = args.root
    if args.check:
        outdated = stale(root)
        for relative in outdated:
            print(f"stale: {relative}", file=sys.stderr)
        if outdated:
            print("run `gateway contracts export` and commit the result", file=sys.stderr)
            return EXIT_STALE
        return EXIT_OK
    for path in write(root):
        print(f"wrote {path}")
    return EXIT_OK
