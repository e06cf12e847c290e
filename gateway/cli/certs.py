"""``gateway certs local``: the local set-up's certificate authority and TLS certificates."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gateway.certs import LOCAL_HOSTS, ensure_local_pki
from gateway.cli import EXIT_FAILED, EXIT_OK


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "certs",
        help="create the local set-up's CA and TLS certificates",
        description="Create TLS certificates for the local set-up and the tests.",
    )
    actions = parser.add_subparsers(dest="certs_command", required=True, metavar="ACTION")
    local = actions.add_parser(
        "local",
        help="create what is missing of a CA, the broker's and the users' certificates",
        description=(
            "Create in DIR what is missing of: ca.pem/ca.key (a CA), server.pem/server.key "
            "(the broker, for --host names) and USER.pem/USER.key per --user (client "
            "certificates, common name = the broker user). Keys are mode 0600; existing "
            "files are kept, so a rerun changes nothing."
        ),
    )
    local.add_argument("--out", required=True, type=Path, metavar="DIR")
    local.add_argument("--user", action="append", default=[], metavar="USER")
    local.add_argument(
        "--host", action="append", metavar="NAME", help=f"default: {' '.join(LOCAL_HOSTS)}"
    )
    local.set_defaults(handler=_local)


def _local(args: argparse.Namespace) -> int:
    try:
        written = ensure_local_pki(args.out, args.user, args.host or LOCAL_HOSTS)
    except (OSError, ValueError) as exc:
        print(f"gateway certs local: {exc}", file=sys.stderr)
        return EXIT_FAILED
    for path in written:
        print(f"created {path}")
    return EXIT_OK
