"""``gateway archive``: verify, show, search and export the archive without writing SQL."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from sqlalchemy.exc import SQLAlchemyError

from gateway.archive.bundle import BundleError, export_bundle, verify_bundle
from gateway.archive.records import Record, format_time, record_to_json
from gateway.archive.store import ArchiveStore, SearchFilter, open_archive
from gateway.archive.verify import Anchor, verify_archive
from gateway.checkpoints import ChainPoint
from gateway.cli import instant
from gateway.config import ConfigError, GatewayConfig, load_config
from gateway.keys import (
    PRIVATE_SUFFIX,
    PUBLIC_SUFFIX,
    KeyFileError,
    Keyring,
    SigningKey,
    load_signing_key,
)
from gateway.logging import configure_logging

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

Handler = Callable[[argparse.Namespace], Coroutine[Any, Any, int]]


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "archive",
        help="verify, inspect, search and export the archive",
        description="Operator commands over this Party's archive (no SQL needed).",
    )
    sub = parser.add_subparsers(dest="archive_command", required=True, metavar="SUBCOMMAND")

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

    show = sub.add_parser("show", help="print a record and its history")
    _add_source(show)
    show.add_argument("id", metavar="ID", help="a seq number, an envelope id or a message id")
    _set_handler(show, _show)

    search = sub.add_parser("search", help="list records matching filters")
    _add_source(search)
    search.add_argument("--since", type=instant, help="recorded at or after (RFC 3339)")
    search.add_argument("--until", type=instant, help="recorded before (RFC 3339)")
    search.add_argument("--type", action="append", default=[], help="message type (repeatable)")
    search.add_argument("--kind", action="append", default=[], help="record kind (repeatable)")
    search.add_argument("--outcome", action="append", default=[], help="outcome (repeatable)")
    search.add_argument("--provider", help="originating Party of the envelope")
    search.add_argument("--recipient", help="recipient Party")
    search.add_argument("--correlation-id", help="correlation id of the thread")
    search.add_argument("--limit", type=_positive, help="at most N records")
    search.add_argument("--format", choices=("table", "jsonl"), default="table")
    _set_handler(search, _search)

    export = sub.add_parser("export", help="write a signed, self-verifying bundle of a range")
    _add_source(export)
    export.add_argument("--since", type=instant, required=True, help="RFC 3339, inclusive")
    export.add_argument("--until", type=instant, required=True, help="RFC 3339, exclusive")
    export.add_argument("--out", type=Path, required=True, metavar="FILE")
    export.add_argument(
        "--signing-key",
        type=Path,
        metavar="FILE.key",
        help="this Party's private key (default: keys.signing_key of the config)",
    )
    _set_handler(export, _export)

    check = sub.add_parser(
        "verify-bundle", help="check an exported bundle offline with public keys only"
    )
    check.add_argument("bundle", type=Path, metavar="FILE")
    check.add_argument("--keys", nargs="+", type=Path, required=True, metavar="PUB.json")
    _set_handler(check, _verify_bundle)


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
    prefix = "sqlite:///"
    # Read-only commands must not create an empty archive where the operator mistyped a path.
    if url.startswith(prefix) and not Path(url[len(prefix) :]).is_file():
        raise ConfigError(f"no archive file at {url[len(prefix) :]}")
    return url


async def _with_store(
    args: argparse.Namespace, use: Callable[[ArchiveStore], Awaitable[int]]
) -> int:
    store = open_archive(_archive_url(args))
    try:
        await store.open()
        return await use(store)
    finally:
        await store.close()


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
    return await _with_store(args, lambda store: _verify_report(store, keyring, anchors))


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


def _payload_text(payload: bytes) -> str:
    try:
        return json.dumps(json.loads(payload), indent=2, ensure_ascii=False, sort_keys=False)
    except (UnicodeDecodeError, json.JSONDecodeError):
        pass
    try:
        return payload.decode("utf-8")
    except UnicodeDecodeError:
        return f"<{len(payload)} bytes of binary; use 'search --format jsonl' for base64>"


def _print_record(record: Record, out: TextIO) -> None:
    print(f"record {record.seq}: {record.kind} {record.outcome}", file=out)
    fields: list[tuple[str, object]] = [
        ("recorded_at", format_time(record.recorded_at)),
        ("occurred_at", format_time(record.occurred_at)),
        ("message_id", record.message_id),
        ("system", record.system),
        ("envelope_id", record.envelope_id),
        ("type", record.type),
        ("provider", record.provider),
        ("recipient", record.recipient),
        ("correlation_id", record.correlation_id),
        ("reason", record.reason),
        ("detail", record.detail),
        ("dedup_key", record.dedup_key),
        ("refers_to", record.refers_to),
        ("derived_from", ", ".join(record.derived_from)),
        ("attachments", ", ".join(record.attachment_sha256)),
        ("headers", ", ".join(f"{k}={v}" for k, v in record.headers)),
        ("signature", record.signature),
        ("prev_hash", record.prev_hash),
        ("hash", record.hash),
    ]
    for name, value in fields:
        if value not in (None, ""):
            print(f"  {name + ':':<16}{value}", file=out)
    print(f"  payload ({len(record.payload)} bytes):", file=out)
    for line in _payload_text(record.payload).splitlines():
        print(f"    {line}", file=out)


_TABLE_COLUMNS = ("seq", "recorded_at", "kind", "outcome", "type", "route", "id", "reason")


def _row(record: Record) -> tuple[str, ...]:
    route = f"{record.provider or ''}->{record.recipient or ''}"
    ident = record.envelope_id or record.message_id or ""
    return (
        str(record.seq),
        format_time(record.recorded_at),
        record.kind,
        record.outcome,
        record.type or "",
        route if route != "->" else "",
        ident,
        record.reason or "",
    )


def _print_table(found: Sequence[Record], out: TextIO) -> None:
    rows = [_TABLE_COLUMNS, *(_row(r) for r in found)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(_TABLE_COLUMNS))]
    for row in rows:
        print(
            "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip(), file=out
        )


async def _show(args: argparse.Namespace) -> int:
    key: str = args.id
    return await _with_store(args, lambda store: _show_in(store, key))


async def _show_in(store: ArchiveStore, key: str) -> int:
    found = await store.get(int(key)) if key.isdigit() else None
    if found is not None:
        primary = [found]
        related: dict[int, Record] = {found.seq: found}
        for ident in {found.message_id, found.envelope_id} - {None}:
            related.update((r.seq, r) for r in await store.history(str(ident)))
        history = [related[seq] for seq in sorted(related)]
    else:
        history = await store.history(key)
        primary = [r for r in history if key in (r.message_id, r.envelope_id)]
    if not primary:
        print(f"nothing in the archive for {key!r}", file=sys.stderr)
        return EXIT_FAILED
    for record in primary:
        _print_record(record, sys.stdout)
        print()
    print(f"history ({len(history)} records):")
    _print_table(history, sys.stdout)
    return EXIT_OK


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
    limit: int | None = args.limit
    as_jsonl = args.format == "jsonl"

    async def run(store: ArchiveStore) -> int:
        found = await store.search(criteria, limit=limit)
        if as_jsonl:
            for record in found:
                print(json.dumps(record_to_json(record), ensure_ascii=False))
        else:
            _print_table(found, sys.stdout)
            print(f"({len(found)} records)")
        return EXIT_OK

    return await _with_store(args, run)


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

    return await _with_store(args, run)


async def _verify_bundle(args: argparse.Namespace) -> int:
    report = verify_bundle(args.bundle, Keyring.from_files(args.keys))
    if not report.ok:
        where = f" (line {report.line})" if report.line is not None else ""
        print(f"BROKEN{where}: {report.problem}")
        return EXIT_FAILED
    span = f"seq {report.first_seq}..{report.last_seq}" if report.records else "no records"
    print(f"ok: {report.records} records ({span}) exported by {report.party}, key {report.key_id}")
    return EXIT_OK
