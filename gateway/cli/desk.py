"""``gateway consent pending|grant|deny|revoke`` and ``gateway quarantine discard``.

Thin wrappers over :class:`gateway.desk.operations.Desk`, the code the console calls too.
Every verb takes ``--format table|json|jsonl``. Exit codes: 0 done; 1 not done by the gateway
(blocked, no answer in time, broker or archive unavailable); 2 usage or configuration error;
3 refused by the desk (not pending, would widen the request, not this Party's decision).
"""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gateway.archive import ArchiveStore
from gateway.cli import EXIT_FAILED, EXIT_OK, EXIT_REFUSED, instant
from gateway.cli.archive_access import with_archive
from gateway.cli.output import Format, add_format_argument, print_rows
from gateway.cli.replay import positive_float, run_command
from gateway.config import load_config
from gateway.core.stamping import rfc3339
from gateway.desk.actions import ActionResult
from gateway.desk.operations import DEFAULT_TIMEOUT_S, Desk
from gateway.desk.requests import GrantChoice, PendingRequest

Row = Mapping[str, Any]


def _desk_command(
    use: Callable[[Desk, argparse.Namespace], Awaitable[int]],
) -> Callable[[argparse.Namespace], int]:
    async def handler(args: argparse.Namespace) -> int:
        config = load_config(args.config)

        async def run(store: ArchiveStore) -> int:
            return await use(Desk(config, store, timeout=args.timeout), args)

        return await with_archive(config.archive.url, run)

    return run_command(handler, "consent")


def add_operator(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--operator",
        default=f"cli:{getpass.getuser()}",
        help="the name archived with the action (default cli:<login name>)",
    )


def _common(parser: argparse.ArgumentParser, *, acting: bool) -> None:
    parser.add_argument("--config", type=Path, required=True, metavar="FILE")
    add_format_argument(parser)
    parser.add_argument(
        "--timeout",
        type=positive_float,
        default=DEFAULT_TIMEOUT_S,
        help="seconds to wait for the gateway's answer (default 30)",
    )
    if acting:
        add_operator(parser)


def add_consent_verbs(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    pending = sub.add_parser("pending", help="requests from other Parties awaiting our answer")
    _common(pending, acting=False)
    pending.set_defaults(handler=_desk_command(_pending))

    grant = sub.add_parser("grant", help="grant a pending request, possibly narrowed")
    _common(grant, acting=True)
    grant.add_argument("request_id", metavar="REQUEST_ID")
    grant.add_argument("--recipient", action="append", default=[], help="keep only these")
    scope = grant.add_mutually_exclusive_group()
    scope.add_argument("--envelope", action="append", default=[], help="grant only these")
    scope.add_argument("--thread", action="store_true", help="the requested thread, whole")
    grant.add_argument("--expires", type=instant, help="RFC 3339 end of the consent")
    grant.add_argument("--conditions", help="conditions attached (English text)")
    grant.add_argument("--officer", required=True, help="the deciding liaison officer")
    grant.set_defaults(handler=_desk_command(_grant))

    _answer_verb(sub, "deny", "deny a pending request", "request_id", _deny)
    _answer_verb(sub, "revoke", "revoke a live consent this Party gave", "decision_id", _revoke)


def _answer_verb(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    help_text: str,
    subject: str,
    use: Callable[[Desk, argparse.Namespace], Awaitable[int]],
) -> None:
    parser = sub.add_parser(name, help=help_text)
    _common(parser, acting=True)
    parser.add_argument(subject, metavar=subject.upper())
    parser.add_argument("--reason", required=True)
    parser.add_argument("--officer", required=True, help="the deciding liaison officer")
    parser.set_defaults(handler=_desk_command(use))


def add_quarantine_verbs(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    discard = sub.add_parser("discard", help="drop a quarantined submission for good")
    _common(discard, acting=True)
    discard.add_argument("id", metavar="ID", help="its archive seq or message id")
    discard.add_argument("--reason", required=True)
    discard.set_defaults(handler=_desk_command(_discard))


def pending_row(request: PendingRequest, now: datetime) -> dict[str, Any]:
    return {
        "request_id": request.request_id,
        "requester": request.requester,
        "officer": request.officer,
        "recipients": list(request.recipients),
        "scope": request.scope_text,
        "envelopes": [
            {"id": e.id, "type": e.type, "subject": dict(e.subject)} for e in request.envelopes
        ],
        "purpose": dict(request.purpose),
        "received_at": rfc3339(request.received_at),
        "age_s": int(request.age(now).total_seconds()),
    }


async def _pending(desk: Desk, args: argparse.Namespace) -> int:
    now = datetime.now(UTC)
    rows = [pending_row(p, now) for p in await desk.pending()]
    if args.format == "table":
        for row in rows:
            row["envelopes"] = [f"{e['id']} {e['type']}" for e in row["envelopes"]]
            row["purpose"] = row["purpose"].get("en") or row["purpose"].get("ru")
    columns = ("request_id", "requester", "officer", "recipients", "age_s", "purpose", "envelopes")
    print_rows(rows, args.format, columns, sys.stdout, noun="pending", blank="-")
    return EXIT_OK


def _report(result: ActionResult, fmt: Format) -> int:
    print_rows(
        [result.to_dict()],
        fmt,
        ("status", "envelope_id", "detail"),
        sys.stdout,
        noun="action",
        blank="-",
    )
    if result.ok:
        return EXIT_OK
    return EXIT_REFUSED if result.status == "refused" else EXIT_FAILED


async def _grant(desk: Desk, args: argparse.Namespace) -> int:
    choice = GrantChoice(
        envelope_ids=tuple(args.envelope),
        thread=args.thread,
        recipients=tuple(args.recipient),
        expires_at=args.expires,
        conditions=args.conditions,
    )
    result = await desk.grant(args.request_id, choice, officer=args.officer, operator=args.operator)
    return _report(result, args.format)


async def _deny(desk: Desk, args: argparse.Namespace) -> int:
    result = await desk.deny(
        args.request_id, args.reason, officer=args.officer, operator=args.operator
    )
    return _report(result, args.format)


async def _revoke(desk: Desk, args: argparse.Namespace) -> int:
    result = await desk.revoke(
        args.decision_id, args.reason, officer=args.officer, operator=args.operator
    )
    return _report(result, args.format)


async def _discard(desk: Desk, args: argparse.Namespace) -> int:
    return _report(await desk.discard(args.id, args.reason, operator=args.operator), args.format)
