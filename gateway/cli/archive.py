"""``gateway archive``: verify, show, search and export the archive without writing SQL."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Coroutine, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, TypeAlias

from sqlalchemy.exc import SQLAlchemyError

from gateway.archive.bundle import BundleError, export_bundle, verify_bundle
from gateway.archive.store import ArchiveStore, SearchFilter
from gateway.archive.verify import Anchor, verify_archive
from gateway.cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE, instant
from gateway.cli.archive_access import with_archive
from gateway.cli.archive_show import print_records, record_view, show_records
from gateway.cli.filters import WHEN, add_record_filters
from gateway.cli.output import Format, add_format_argument, print_rows
from gateway.config import ConfigError, GatewayConfig, load_config
from gateway.core.checkpoints import ChainPoint
from gateway.core.keys import (
    PRIVATE_SUFFIX,
    PUBLIC_SUFFIX,
    KeyFileError,
    Keyring,
    SigningKey,
    load_signing_key,
)
from gateway.logs import configure_logging

DEFAULT_LIMIT = 100

Handler = Callable[[argparse.Namespace], Coroutine[Any, Any, int]]
Subcommands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def register(commands: Subcommands) -> None:
    parser = commands.add_parser(
        "archive",
        help="verify, inspect, search and export the archive",
        description="Operator commands over this Party's archive (no SQL needed).",
    )
    sub = parser.add_subparsers(dest="archive_command", required=True, metavar="SUBCOMMAND")
    _register_verify(sub)
    _register_show(sub)
    _register_search(sub)
    _register_export(sub)
    check = sub.add_parser(
        "verify-bundle", help="check an exported bundle offline with public keys only"
    )
    check.add_argument("bundle", type=Path, metavar="FILE")
    check.add_argument("--keys", nargs="+", type=Path, required=True, metavar="PUB.json")
    _set_handler(check, _verify_bundle)


def _register_verify(sub: Subcommands) -> None:
    verify = sub.add_parser(
        "verify", help="check every hash, link and envelope signature; exit 1 if broken"
    )
    _add_source(verify)
    verify.add_argument(
        "--keys",
        nargs="+",
        type=Path,
        default=[],
        metavar="PUB.json",
        help="public key files (added to those the config names)",
    )
    verify.add_argument(
        "--bundle",
        action="append",
        type=Path,
        default=[],
        metavar="FILE",
        help="an export bundle of this archive kept elsewhere: the archive must still hold "
        "its records (repeatable)",
    )
    _set_handler(verify, _verify)


def _register_show(sub: Subcommands) -> None:
    show = sub.add_parser("show", help="print a record and its history")
    _add_source(show)
    show.add_argument("id", metavar="ID", help="a seq number, an envelope id or a message id")
    add_format_argument(show)
    _set_handler(show, _show)


def _register_search(sub: Subcommands) -> None:
    search = sub.add_parser("search", help="list records matching filters")
    _add_source(search)
    add_record_filters(search)
    search.add_argument("--provider", help="originating Party of the envelope")
    search.add_argument("--recipient", help="recipient Party")
    search.add_argument("--correlation-id", help="correlation id of the thread")
    search.add_argument(
        "--limit",
        type=_positive,
        default=DEFAULT_LIMIT,
        help="at most N records (default: %(default)s)",
    )
    add_format_argument(search)
    _set_handler(search, _search)


def _register_export(sub: Subcommands) -> None:
    export = sub.add_parser("export", help="write a signed, self-verifying bundle of a range")
    _add_source(export)
    export.add_argument("--since", type=instant, required=True, help=f"inclusive ({WHEN})")
    export.add_argument("--until", type=instant, required=True, help=f"exclusive ({WHEN})")
    export.add_argument("--out", type=Path, required=True, metavar="FILE")
    export.add_argument("--force", action="store_true", help="overwrite FILE if it exists")
    export.add_argument(
        "--signing-key",
        type=Path,
        metavar="FILE.key",
        help="this Party's private key (default: keys.signing_key of the config)",
    )
    _set_handler(export, _export)


def _set_handler(parser: argparse.ArgumentParser, handler: Handler) -> None:
    def run(args: argparse.Namespace) -> int:
        # Standard output carries the answer (possibly JSON lines): logs go to standard error,
        # and only when something is wrong.
        configure_logging("auto", level="warning")
        try:
            return asyncio.run(handler(args))
        except (KeyFileError, ValueError) as exc:
            print(f"gateway archive: {exc}", file=sys.stderr)
            return EXIT_USAGE
        except (OSError, SQLAlchemyError) as exc:
            print(f"gateway archive: the archive is unavailable: {exc}", file=sys.stderr)
            return EXIT_FAILED

    parser.set_defaults(handler=run)


def _add_source(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--config", type=Path, metavar="FILE", help="the gateway's config file")
    source.add_argument(
        "--archive", metavar="URL", help="sqlite:////path/to/file.db or postgresql://user@host/db"
    )


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _config(args: argparse.Namespace) -> GatewayConfig | None:
    path: Path | None = args.config
    return None if path is None else load_config(path)


def _archive_url(args: argparse.Namespace) -> str:
    config = _config(args)
    url: str = args.archive if config is None else config.archive.url
    return url


def _own_public_key(config: GatewayConfig) -> Path:
    name = config.keys.signing_key.name
    stem = name[: -len(PRIVATE_SUFFIX)] if name.endswith(PRIVATE_SUFFIX) else name
    return config.keys.signing_key.with_name(stem + PUBLIC_SUFFIX)


def _keyring(args: argparse.Namespace) -> Keyring | None:
    paths: list[Path] = list(args.keys)
    config = _config(args)
    if config is not None:
        paths.append(_own_public_key(config))
        paths.extend(key for party in config.counterparties for key in party.public_keys)
    return Keyring.from_files(paths) if paths else None


class _BadBundle(Exception):
    """A bundle given to verify that is no evidence about this archive."""


def _bundle_anchor(path: Path, keyring: Keyring | None, party: str | None) -> Anchor:
    """The end of the chain an export bundle vouches for, once the bundle itself verifies."""
    if keyring is None:
        raise ConfigError("--bundle needs public keys: give --config or --keys")
    report = verify_bundle(path, keyring)
    if not report.ok:
        raise _BadBundle(f"bundle {path} does not verify: {report.problem}")
    if party is not None and report.party != party:
        raise _BadBundle(f"bundle {path} was exported by {report.party}, not by {party}")
    if report.head_seq is None or report.head_hash is None:
        raise _BadBundle(f"bundle {path} names no chain position")
    point = ChainPoint(report.head_seq, report.head_hash)
    return Anchor(point, f"export bundle {path.name} (signed with {report.key_id})")


async def _verify(args: argparse.Namespace) -> int:
    keyring = _keyring(args)
    config = _config(args)
    party = None if config is None else config.party
    try:
        anchors = [_bundle_anchor(path, keyring, party) for path in args.bundle]
    except _BadBundle as exc:
        print(f"BROKEN: {exc}")
        return EXIT_FAILED
    return await with_archive(
        _archive_url(args), lambda store: _verify_report(store, keyring, anchors)
    )


async def _verify_report(
    store: ArchiveStore, keyring: Keyring | None, anchors: Sequence[Anchor]
) -> int:
    report = await verify_archive(store, keyring, anchors)
    if report.broken is not None:
        kind = report.broken.kind or "-"
        print(f"BROKEN at seq {report.broken.seq} ({kind}): {report.broken.why}")
        print(f"{report.records} records verified before it")
        return EXIT_FAILED
    signatures = (
        f"{report.signatures_checked} envelope signatures"
        if keyring is not None
        else "signatures not checked (no public keys given)"
    )
    print(
        f"ok: {report.records} records, head {report.head_hash}; {signatures}; "
        f"{report.anchors_checked} anchors (checkpoints, bundles) hold"
    )
    return EXIT_OK


async def _show(args: argparse.Namespace) -> int:
    key: str = args.id
    fmt: Format = args.format
    return await with_archive(_archive_url(args), lambda store: show_records(store, key, fmt))


async def _search(args: argparse.Namespace) -> int:
    criteria = SearchFilter(
        since=args.since,
        until=args.until,
        kinds=args.kind,
        types=args.type,
        provider=args.provider,
        recipient=args.recipient,
        correlation_id=args.correlation_id,
        outcomes=args.outcome,
    )
    limit: int = args.limit
    fmt: Format = args.format

    async def run(store: ArchiveStore) -> int:
        found = await store.search(criteria, limit=limit)
        if fmt == "table":
            print_records(found, sys.stdout)
            print(f"({len(found)} records)")
        else:
            print_rows([record_view(r) for r in found], fmt, (), sys.stdout)
        if len(found) == limit:
            print(f"showing the first {limit}; more may match (--limit N)", file=sys.stderr)
        return EXIT_OK

    return await with_archive(_archive_url(args), run)


def _signing_key(args: argparse.Namespace) -> SigningKey:
    path: Path | None = args.signing_key
    if path is None:
        config = _config(args)
        if config is None:
            raise ConfigError("export needs --signing-key FILE or --config FILE")
        path = config.keys.signing_key
    return load_signing_key(path)


async def _export(args: argparse.Namespace) -> int:
    key = _signing_key(args)
    since: datetime = args.since
    until: datetime = args.until
    out: Path = args.out
    if until <= since:
        raise ConfigError("--until must be after --since")
    if not args.force and await asyncio.to_thread(out.exists):
        raise ConfigError(f"{out} exists; pass --force to overwrite it")

    async def run(store: ArchiveStore) -> int:
        try:
            summary = await export_bundle(store, since, until, key, out)
        except BundleError as exc:
            print(f"export refused: {exc}", file=sys.stderr)
            return EXIT_FAILED
        span = f"seq {summary.first_seq}..{summary.last_seq}" if summary.records else "empty range"
        print(
            f"exported {summary.records} records ({span}) to {summary.path}, "
            f"head {summary.head_hash}, signed with {key.key_id}"
        )
        return EXIT_OK

    return await with_archive(_archive_url(args), run)


async def _verify_bundle(args: argparse.Namespace) -> int:
    report = verify_bundle(args.bundle, Keyring.from_files(args.keys))
    if not report.ok:
        where = f" (line {report.line})" if report.line is not None else ""
        print(f"BROKEN{where}: {report.problem}")
        return EXIT_FAILED
    span = f"seq {report.first_seq}..{report.last_seq}" if report.records else "no records"
    print(f"ok: {report.records} records ({span}) exported by {report.party}, key {report.key_id}")
    return EXIT_OK
