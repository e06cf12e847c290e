"""``gateway operators add|remove|list``: the console's operator accounts (console.operators_file).

Exit codes: 0 done; 1 no such operator (remove); 2 usage error (bad role, short password).
"""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path
from typing import cast

from gateway.cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE
from gateway.cli.output import add_format_argument, print_rows
from gateway.config import load_config
from gateway.desk.accounts import ROLES, AccountError, OperatorAccounts, Role


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    operators = commands.add_parser("operators", help="operator accounts of the console")
    sub = operators.add_subparsers(dest="operators_command", required=True, metavar="SUBCOMMAND")
    add = sub.add_parser("add", help="create an operator account, or replace its password/roles")
    _config(add)
    add.add_argument("name", metavar="NAME")
    add.add_argument("--role", action="append", required=True, choices=ROLES, help="repeatable")
    add.add_argument("--officer", help="the liaison officer id its consent decisions carry")
    add.add_argument(
        "--password-file",
        type=Path,
        help="read the password from this file (first line); default: ask on the terminal",
    )
    add.set_defaults(handler=_add)
    remove = sub.add_parser("remove", help="delete an operator account")
    _config(remove)
    remove.add_argument("name", metavar="NAME")
    remove.set_defaults(handler=_remove)
    listing = sub.add_parser("list", help="operator accounts and their roles")
    _config(listing)
    add_format_argument(listing)
    listing.set_defaults(handler=_list)


def _config(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, required=True, metavar="FILE")


def _accounts(args: argparse.Namespace) -> OperatorAccounts:
    return OperatorAccounts(load_config(args.config).console.operators_file)


def _password(args: argparse.Namespace) -> str:
    if args.password_file is not None:
        lines = args.password_file.read_text(encoding="utf-8").splitlines()
        return lines[0] if lines else ""
    return getpass.getpass(f"password for {args.name}: ")


def _add(args: argparse.Namespace) -> int:
    accounts = _accounts(args)
    try:
        roles = {cast(Role, r) for r in args.role}
        operator = accounts.add(args.name, _password(args), roles, args.officer)
    except (AccountError, OSError) as exc:
        print(f"gateway operators: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(f"operator {operator.name}: {', '.join(sorted(operator.roles))} ({accounts.path})")
    return EXIT_OK


def _remove(args: argparse.Namespace) -> int:
    if not _accounts(args).remove(args.name):
        print(f"gateway operators: no operator {args.name!r}", file=sys.stderr)
        return EXIT_FAILED
    print(f"operator {args.name} removed")
    return EXIT_OK


def _list(args: argparse.Namespace) -> int:
    rows = [
        {"name": op.name, "roles": sorted(op.roles), "officer": op.officer}
        for op in _accounts(args).load().values()
    ]
    print_rows(
        rows, args.format, ("name", "roles", "officer"), sys.stdout, noun="operators", blank="-"
    )
    return EXIT_OK
