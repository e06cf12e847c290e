"""``gateway consent`` and ``gateway quarantine``: the third-party rule's operator commands.

``consent list|show`` and ``quarantine list|show`` read the archive only (the gateway may be
running or not). ``consent request`` and ``quarantine release`` ask the running gateway through
``gw.control`` and wait for its answer: a release re-runs every check, the consent one included,
and only forwards what passes now.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from contracts import ContractError, parse_submission
from gateway.archive import ArchiveStore, Record, SearchFilter
from gateway.cli import EXIT_FAILED, EXIT_OK, EXIT_REFUSED, EXIT_USAGE
from gateway.cli.archive_access import with_archive
from gateway.cli.desk import (
    add_consent_verbs,
    add_operator,
    add_quarantine_verbs,
)
from gateway.cli.output import Format, add_format_argument, print_item, print_rows
from gateway.cli.replay import DEFAULT_TIMEOUT_S, positive_float, run_command
from gateway.config import GatewayConfig, load_config
from gateway.core.archive_views import (
    CONSENT_TYPES,
    consent_detail,
    consent_dict,
    consent_registry,
    consent_rows,
    quarantine_detail,
    quarantine_dict,
    quarantine_rows,
    table,
)
from gateway.desk.actions import ActionResult
from gateway.desk.operations import Desk


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    consent = commands.add_parser(
        "consent", help="consent decisions in force, and requests for consent"
    )
    sub = consent.add_subparsers(dest="consent_command", required=True, metavar="SUBCOMMAND")
    listing = sub.add_parser("list", help="every consent decision with its status now")
    _config(listing)
    add_format_argument(listing)
    listing.set_defaults(handler=run_command(_consent_list, "consent"))
    show = sub.add_parser("show", help="one consent decision in full")
    _config(show)
    show.add_argument("id", metavar="ID", help="the consent.decision envelope id")
    add_format_argument(show)
    show.set_defaults(handler=run_command(_consent_show, "consent"))
    request = sub.add_parser(
        "request", help="ask a provider for consent (sent by the gateway as system 'operator')"
    )
    _config(request)
    request.add_argument("--provider", required=True, help="the Party asked for consent")
    request.add_argument(
        "--recipient", action="append", required=True, help="who would receive it (repeatable)"
    )
    scope = request.add_mutually_exclusive_group(required=True)
    scope.add_argument(
        "--envelope", nargs="+", metavar="ID", help="the provider's envelope ids in question"
    )
    scope.add_argument("--thread", metavar="CORRELATION_ID", help="a whole correlation thread")
    request.add_argument("--purpose", required=True, help="why (English text)")
    request.add_argument("--purpose-ru", help="why (Russian text), if given in Russian too")
    request.add_argument("--officer", required=True, help="the liaison officer asking")
    _timeout(request)
    add_operator(request)
    add_format_argument(request)
    request.set_defaults(handler=run_command(_consent_request, "consent"))
    add_consent_verbs(sub)

    quarantine = commands.add_parser(
        "quarantine", help="submissions the third-party rule stopped: list, show, release, discard"
    )
    qsub = quarantine.add_subparsers(dest="quarantine_command", required=True, metavar="SUBCOMMAND")
    qlist = qsub.add_parser("list", help="quarantined submissions waiting for a decision")
    _config(qlist)
    add_format_argument(qlist)
    qlist.set_defaults(handler=run_command(_quarantine_list, "quarantine"))
    qshow = qsub.add_parser("show", help="one quarantined submission and its release attempts")
    _config(qshow)
    qshow.add_argument("id", metavar="ID", help="its archive seq or message id")
    add_format_argument(qshow)
    qshow.set_defaults(handler=run_command(_quarantine_show, "quarantine"))
    release = qsub.add_parser(
        "release", help="run the checks again; forward the submission if it passes now"
    )
    _config(release)
    release.add_argument("id", metavar="ID", help="its archive seq or message id")
    _timeout(release)
    add_operator(release)
    add_format_argument(release)
    release.set_defaults(handler=run_command(_quarantine_release, "quarantine"))
    add_quarantine_verbs(qsub)


def _config(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, required=True, metavar="FILE")


def _timeout(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--timeout",
        type=positive_float,
        default=DEFAULT_TIMEOUT_S,
        help="seconds to wait for the gateway's answer (default 30)",
    )


async def _search(config: GatewayConfig, *criteria: SearchFilter) -> list[list[Record]]:
    """The records matching each of ``criteria``, read in one visit to the archive."""
    found: list[list[Record]] = []

    async def read(store: ArchiveStore) -> int:
        found.extend([await store.search(c) for c in criteria])
        return EXIT_OK

    await with_archive(config.archive.url, read)
    return found


async def _consent_records(config: GatewayConfig) -> list[Record]:
    [found] = await _search(config, SearchFilter(types=CONSENT_TYPES))
    return found


def _print_listing(rows: Sequence[Sequence[str]], fmt: Format, summary: str) -> None:
    """``rows`` (a header row first) as an aligned table ending with ``(summary)``, or as JSON
    records keyed by the header."""
    if fmt == "table":
        for line in table(rows):
            print(line)
        print(f"({summary})")
    else:
        print_rows([dict(zip(rows[0], row, strict=True)) for row in rows[1:]], fmt, (), sys.stdout)


async def _consent_list(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    registry = consent_registry(await _consent_records(config))
    rows = consent_rows(registry, config.party, datetime.now(UTC))
    _print_listing(
        rows, args.format, f"{len(registry)} decision{'' if len(registry) == 1 else 's'}"
    )
    return EXIT_OK


async def _consent_show(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    registry = consent_registry(await _consent_records(config))
    now = datetime.now(UTC)
    found = consent_dict(registry, args.id, now)
    if found is None:
        print(f"no consent decision {args.id!r} in the archive", file=sys.stderr)
        return EXIT_FAILED
    print_item(found, args.format, sys.stdout, consent_detail(registry, args.id, now))
    return EXIT_OK


def _consent_submission(args: argparse.Namespace) -> dict[str, Any]:
    scope: dict[str, Any] = (
        {"envelope_ids": list(args.envelope)} if args.envelope else {"correlation_id": args.thread}
    )
    purpose = {"en": args.purpose}
    if args.purpose_ru:
        purpose["ru"] = args.purpose_ru
    return {
        "type": "consent.request",
        "recipient": args.provider,
        "officer": args.officer,
        "correlation_id": args.thread,
        "in_reply_to": None,
        "derived_from": [],
        "handling": {"onward": "consent-required", "pre_approved": []},
        "body": {
            "provider": args.provider,
            "scope": scope,
            "recipients": list(dict.fromkeys(args.recipient)),
            "purpose": purpose,
        },
    }


async def _consent_request(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    submission = _consent_submission(args)
    try:
        parse_submission(json.dumps(submission).encode())
    except ContractError as exc:
        print(
            f"gateway consent: the request is not valid: {exc.code}: {exc.message}", file=sys.stderr
        )
        return EXIT_USAGE

    async def ask(desk: Desk) -> int:
        desk.timeout = args.timeout
        result = await desk.request_consent(submission, operator=args.operator)
        sent = f"sent envelope {result.envelope_id}"
        line = sent if result.ok else f"{result.status}: {result.detail}"
        print_item(result.to_dict(), args.format, sys.stdout, [line])
        return EXIT_OK if result.ok else EXIT_FAILED

    return await _with_desk(config, ask)


async def _with_desk(config: GatewayConfig, use: Callable[[Desk], Awaitable[int]]) -> int:
    async def run(store: ArchiveStore) -> int:
        return await use(Desk(config, store))

    return await with_archive(config.archive.url, run)


async def _quarantine_list(args: argparse.Namespace) -> int:
    config = load_config(args.config)

    async def listing(desk: Desk) -> int:
        pending = await desk.quarantined()
        rows = quarantine_rows(pending, datetime.now(UTC))
        _print_listing(rows, args.format, f"{len(pending)} quarantined, waiting for a decision")
        return EXIT_OK

    return await _with_desk(config, listing)


async def _quarantine_show(args: argparse.Namespace) -> int:
    config = load_config(args.config)

    async def show(desk: Desk) -> int:
        item = await desk.quarantine_item(args.id)
        if item is None:
            print(f"no quarantined submission {args.id!r} in the archive", file=sys.stderr)
            return EXIT_FAILED
        record, attempts, _ = item
        print_item(
            quarantine_dict(record, attempts),
            args.format,
            sys.stdout,
            quarantine_detail(record, attempts),
        )
        return EXIT_OK

    return await _with_desk(config, show)


def _release_line(result: ActionResult) -> str:
    if result.ok:
        return f"released: {result.detail}"
    if result.status == "blocked":
        return f"still quarantined: {result.detail}"
    return f"not released: {result.status}: {result.detail}"


async def _quarantine_release(args: argparse.Namespace) -> int:
    config = load_config(args.config)

    async def release(desk: Desk) -> int:
        desk.timeout = args.timeout
        result = await desk.release(args.id, operator=args.operator)
        print_item(result.to_dict(), args.format, sys.stdout, [_release_line(result)])
        if result.ok:
            return EXIT_OK
        return EXIT_REFUSED if result.status == "refused" else EXIT_FAILED

    return await _with_desk(config, release)
