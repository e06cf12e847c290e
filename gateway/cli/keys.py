"""``gateway keys``: generate a signing key pair, show a key's public information.

Neither command ever prints private key material.
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from pathlib import Path

from gateway.cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE
from gateway.cli.output import add_format_argument, print_item
from gateway.core.keys import (
    PRIVATE_SUFFIX,
    KeyFileError,
    PublicKey,
    generate_key_pair,
    load_public_key,
    load_signing_key,
    parse_rfc3339,
)


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "keys",
        help="generate and inspect Ed25519 signing keys",
        description="Generate and inspect this Party's Ed25519 signing keys.",
    )
    actions = parser.add_subparsers(dest="keys_command", required=True, metavar="ACTION")

    generate = actions.add_parser(
        "generate",
        help="write a new key pair: KEY_ID.key (mode 0600) and KEY_ID.pub.json",
        description=(
            "Write a new Ed25519 key pair into DIR: KEY_ID.key, the private key (mode 0600, "
            "for this Party's keys.signing_key), and KEY_ID.pub.json, the public key to give "
            "to counterparties. Existing files are never overwritten."
        ),
    )
    generate.add_argument("--party", required=True, help="this Party's id, e.g. CICA")
    generate.add_argument("--out", required=True, type=Path, metavar="DIR")
    generate.add_argument(
        "--key-id", help="default: PARTY-YEAR-N with the first free N in DIR", metavar="ID"
    )
    generate.add_argument(
        "--valid-days", type=int, default=730, metavar="N", help="validity in days (730)"
    )
    generate.add_argument(
        "--valid-from",
        type=_timestamp,
        metavar="TIME",
        help="RFC 3339 start of validity, e.g. for the next key of a rotation (default: now)",
    )
    generate.set_defaults(handler=_generate)

    show = actions.add_parser(
        "show",
        help="print the public information of a .pub.json or .key file",
        description=(
            "Print the published (.pub.json) form of a key file. For a .key file this is what "
            "counterparties need; the private key is never printed."
        ),
    )
    show.add_argument("file", type=Path, metavar="FILE")
    add_format_argument(show, default="json")
    show.set_defaults(handler=_show)


def _timestamp(text: str) -> datetime:
    try:
        return parse_rfc3339(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an RFC 3339 timestamp with offset, e.g. 2027-01-01T00:00:00Z"
        ) from None


def _generate(args: argparse.Namespace) -> int:
    out: Path = args.out
    try:
        private_path, public_path = generate_key_pair(
            args.party,
            out,
            key_id=args.key_id,
            valid_from=args.valid_from,
            valid_days=args.valid_days,
        )
    except ValueError as exc:
        print(f"gateway keys generate: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (KeyFileError, OSError) as exc:
        print(f"gateway keys generate: {exc}", file=sys.stderr)
        return EXIT_FAILED
    key_id = private_path.name.removesuffix(PRIVATE_SUFFIX)
    print(f"key id:      {key_id}")
    print(f"private key: {private_path}  (mode 0600; keys.signing_key; never share)")
    print(f"public key:  {public_path}  (give to counterparties)")
    return EXIT_OK


def _show(args: argparse.Namespace) -> int:
    path: Path = args.file
    try:
        key: PublicKey = (
            load_signing_key(path).public()
            if path.name.endswith(PRIVATE_SUFFIX)
            else load_public_key(path)
        )
    except KeyFileError as exc:
        print(f"gateway keys show: {exc}", file=sys.stderr)
        return EXIT_FAILED
    print_item(key.published(), args.format, sys.stdout)
    return EXIT_OK
