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
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from contracts import ContractError, parse_submission
from gateway.archive import ArchiveStore, Record, SearchFilter
from gateway.cli.replay import (
    DEFAULT_TIMEOUT_S,
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    positive_float,
    run_command,
    with_archive,
)
from gateway.config import GatewayConfig, load_config
from gateway.control_client import ControlClient
from gateway.operator_views import (
    CONSENT_TYPES,
    consent_detail,
    consent_registry,
    consent_rows,
    pending_quarantine,
    quarantine_detail,
    quarantine_rows,
    table,
)
from gateway.replay import (
    REQUEST_KINDS,
    ControlRequest,
    answer_line,
    release_request,
    submit_request,
)
from gateway.tls import local_endpoint


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    consent = commands.add_parser(
        "consent", help="consent decisions in force, and requests for consent"
    )
    sub = consent.add_subparsers(dest="consent_command", required=True, metavar="SUBCOMMAND")
    listing = sub.add_parser("list", help="every consent decision with its status now")
    _config(listing)
    listing.set_defaults(handler=run_command(_consent_list, "consent"))
    show = sub.add_parser("show", help="one consent decision in full")
    _config(show)
    show.add_argument("id", metavar="ID", help="the consent.decision envelope id")
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
    request.set_defaults(handler=run_command(_consent_request, "consent"))

    quarantine = commands.add_parser(
        "quarantine", help="submissions the third-party rule stopped: list, show, release"
    )
    qsub = quarantine.add_subparsers(dest="quarantine_command", required=True, metavar="SUBCOMMAND")
    qlist = qsub.add_parser("list", help="quarantined submissions not released yet")
    _config(qlist)
    qlist.set_defaults(handler=run_command(_quarantine_list, "quarantine"))
    qshow = qsub.add_parser("show", help="one quarantined submission and its release attempts")
    _config(qshow)
    qshow.add_argument("id", metavar="ID", help="its archive seq or message id")
    qshow.set_defaults(handler=run_command(_quarantine_show, "quarantine"))
    release = qsub.add_parser(
        "release", help="run the checks again; forward the submission if it passes now"
    )
    _config(release)
    release.add_argument("id", metavar="ID", help="its archive seq or message id")
    _timeout(release)
    release.set_defaults(handler=run_command(_quarantine_release, "quarantine"))


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

    await with_archive(config, read)
    return found


async def _consent_records(config: GatewayConfig) -> list[Record]:
    [found] = await _search(config, SearchFilter(types=CONSENT_TYPES))
    return found


async def _consent_list(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    registry = consent_registry(await _consent_records(config))
    for line in table(consent_rows(registry, config.party, datetime.now(UTC))):
        print(line)
    print(f"({len(registry)} decision{'' if len(registry) == 1 else 's'})")
    return EXIT_OK


async def _consent_show(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    registry = consent_registry(await _consent_records(config))
    lines = consent_detail(registry, args.id, datetime.now(UTC))
    if not lines:
        print(f"no consent decision {args.id!r} in the archive", file=sys.stderr)
        return EXIT_FAILED
    for line in lines:
        print(line)
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


async def _ask(config: GatewayConfig, request: ControlRequest, timeout: float) -> dict[str, Any]:
    async with ControlClient(local_endpoint(config)) as client:
        await client.send(request)
        answers = await client.wait([request.request_id], timeout)
    event = answers[request.request_id]
    return {} if event is None else event


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
    event = await _ask(config, submit_request(str(uuid.uuid4()), submission), args.timeout)
    print(answer_line(event or None))
    return EXIT_OK if event.get("status") == "sent" else EXIT_FAILED


_QUARANTINED = SearchFilter(kinds=["submission"], outcomes=["quarantined"])
_REQUESTS = SearchFilter(kinds=REQUEST_KINDS)


async def _quarantine_list(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    quarantined, requests = await _search(config, _QUARANTINED, _REQUESTS)
    pending = pending_quarantine(quarantined, requests)
    for line in table(quarantine_rows(pending)):
        print(line)
    print(f"({len(pending)} quarantined, not released)")
    return EXIT_OK


def _find(quarantined: list[Record], ident: str) -> Record | None:
    matches = [r for r in quarantined if ident in (str(r.seq), r.message_id)]
    return matches[-1] if matches else None


async def _quarantine_show(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    quarantined, requests = await _search(config, _QUARANTINED, _REQUESTS)
    record = _find(quarantined, args.id)
    if record is None:
        print(f"no quarantined submission {args.id!r} in the archive", file=sys.stderr)
        return EXIT_FAILED
    for line in quarantine_detail(record, requests):
        print(line)
    return EXIT_OK


async def _quarantine_release(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    [quarantined] = await _search(config, _QUARANTINED)
    record = _find(quarantined, args.id)
    if record is None:
        print(f"no quarantined submission {args.id!r} in the archive", file=sys.stderr)
        return EXIT_FAILED
    event = await _ask(config, release_request(str(uuid.uuid4()), record.seq), args.timeout)
    status = event.get("status")
    if status == "replayed":
        print(f"released: seq {record.seq} forwarded as envelope {event.get('envelope_id')}")
        return EXIT_OK
    if status == "blocked":
        print(f"still quarantined: {event.get('reason')}: {event.get('detail')}")
    else:
        print(f"not released: {answer_line(event or None)}")
    return EXIT_FAILED
