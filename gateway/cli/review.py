"""``gateway review``: held submissions waiting for a person of this Party (the release review).

Exit codes: 0 done (listed, shown, released, refused); 1 not done (no such held submission, the
gateway refused the request: four eyes, reviewer role, already decided, the rule or a check
stops it now; or no answer in time); 2 usage or configuration error.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from gateway.archive import ArchiveStore, Record
from gateway.cli import EXIT_FAILED, EXIT_OK
from gateway.cli.archive_access import with_archive
from gateway.cli.replay import DEFAULT_TIMEOUT_S, positive_float, run_command
from gateway.config import load_config
from gateway.control_client import Answer, ControlClient
from gateway.core.archive_views import table
from gateway.core.replay_plan import answer_line
from gateway.core.stamping import rfc3339
from gateway.review_ops import (
    HeldSubmission,
    HeldView,
    find_held,
    list_held,
    refuse,
    release,
    show_held,
)
from gateway.tls import local_endpoint

FORMATS = ("table", "json")


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    review = commands.add_parser(
        "review", help="held submissions: list, show, release or refuse (four eyes)"
    )
    sub = review.add_subparsers(dest="review_command", required=True, metavar="SUBCOMMAND")
    listing = sub.add_parser("list", help="held submissions not released or refused yet")
    _common(listing)
    listing.set_defaults(handler=run_command(_list, "review"))
    show = sub.add_parser("show", help="a held submission beside what it resembles")
    _common(show)
    show.add_argument("id", metavar="ID", help="its archive seq or message id")
    show.set_defaults(handler=run_command(_show, "review"))
    for name, what in (
        ("release", "run every check again and forward it if it passes"),
        ("refuse", "refuse it for good, with a reason"),
    ):
        action = sub.add_parser(name, help=what)
        _common(action)
        action.add_argument("id", metavar="ID", help="its archive seq or message id")
        action.add_argument(
            "--officer",
            required=True,
            help="the officer deciding: on this Party's roster, not the submission's officer",
        )
        if name == "refuse":
            action.add_argument("--reason", required=True, help="why it is refused (archived)")
        action.add_argument(
            "--timeout",
            type=positive_float,
            default=DEFAULT_TIMEOUT_S,
            help="seconds to wait for the gateway's answer (default 30)",
        )
        action.set_defaults(handler=run_command(_decide, "review"))


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, required=True, metavar="FILE")
    parser.add_argument("--format", choices=FORMATS, default="table")


def _held_json(held: HeldSubmission) -> dict[str, Any]:
    r = held.record
    return {
        "seq": r.seq,
        "recorded_at": rfc3339(r.recorded_at),
        "message_id": r.message_id,
        "system": r.system,
        "type": r.type,
        "recipient": r.recipient,
        "officer": held.officer,
        "reason": r.reason,
        "detail": r.detail,
        "resembles": [
            {"envelope_id": x.envelope_id, "provider": x.provider, "score": x.score}
            for x in held.resembles
        ],
    }


def _step_json(record: Record) -> dict[str, Any]:
    return {
        "seq": record.seq,
        "recorded_at": rfc3339(record.recorded_at),
        "outcome": record.outcome,
        "envelope_id": record.envelope_id,
        "reason": record.reason,
        "detail": record.detail,
    }


def held_rows(held: list[HeldSubmission]) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = [
        ("seq", "recorded_at", "type", "recipient", "officer", "reason", "score", "resembles")
    ]
    for h in held:
        score = h.best_score
        rows.append(
            (
                str(h.record.seq),
                rfc3339(h.record.recorded_at),
                h.record.type or "-",
                h.record.recipient or "-",
                h.officer or "-",
                h.record.reason or "-",
                "-" if score is None else f"{score:.2f}",
                ",".join(f"{x.provider}:{x.envelope_id}" for x in h.resembles) or "-",
            )
        )
    return rows


def _indented(value: Any) -> list[str]:
    if value is None:
        return ["    <not in the archive or not JSON>"]
    return ["    " + line for line in json.dumps(value, indent=2, ensure_ascii=False).splitlines()]


def view_lines(view: HeldView) -> list[str]:
    record = view.held.record
    state = "settled" if view.settled else "waiting for review"
    lines = [f"held submission seq {record.seq} ({state})"]
    info = _held_json(view.held)
    lines += [f"  {k + ':':<13}{v}" for k, v in info.items() if k != "resembles" and v]
    lines.append("  submission:")
    lines += _indented(view.submission)
    if not view.resembled:
        lines.append("resembles no received envelope above the review threshold")
    for item in view.resembled:
        x = item.resemblance
        lines.append(f"resembles envelope {x.envelope_id} of {x.provider}, score {x.score:.2f}:")
        lines += _indented(item.envelope)
    lines.append(f"review steps: {len(view.history)}")
    lines += [
        f"  seq {r.seq} {rfc3339(r.recorded_at)} {r.outcome}: {r.detail or r.reason or ''}"
        for r in view.history
    ]
    return lines


def view_json(view: HeldView) -> dict[str, Any]:
    return {
        **_held_json(view.held),
        "settled": view.settled,
        "submission": view.submission,
        "resembled": [
            {
                "envelope_id": item.resemblance.envelope_id,
                "provider": item.resemblance.provider,
                "score": item.resemblance.score,
                "envelope": item.envelope,
            }
            for item in view.resembled
        ],
        "history": [_step_json(r) for r in view.history],
    }


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False))


async def _read(args: argparse.Namespace, use: Callable[[ArchiveStore], Awaitable[int]]) -> int:
    return await with_archive(load_config(args.config).archive.url, use)


async def _list(args: argparse.Namespace) -> int:
    async def listed(store: ArchiveStore) -> int:
        held = await list_held(store)
        if args.format == "json":
            _print_json([_held_json(h) for h in held])
        else:
            for line in table(held_rows(held)):
                print(line)
            print(f"({len(held)} held)")
        return EXIT_OK

    return await _read(args, listed)


async def _show(args: argparse.Namespace) -> int:
    async def shown(store: ArchiveStore) -> int:
        view = await show_held(store, args.id)
        if view is None:
            print(f"gateway review: no held submission {args.id!r}", file=sys.stderr)
            return EXIT_FAILED
        if args.format == "json":
            _print_json(view_json(view))
        else:
            for line in view_lines(view):
                print(line)
        return EXIT_OK

    return await _read(args, shown)


async def _decide(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    found: list[Record] = []

    async def lookup(store: ArchiveStore) -> int:
        record = await find_held(store, args.id)
        found.extend([record] if record is not None else [])
        return EXIT_OK

    await with_archive(config.archive.url, lookup)
    if not found:
        print(f"gateway review: no held submission {args.id!r}", file=sys.stderr)
        return EXIT_FAILED
    seq = found[0].seq
    async with ControlClient(local_endpoint(config)) as client:
        if args.review_command == "release":
            event = await release(client, seq, args.officer, args.timeout)
        else:
            event = await refuse(client, seq, args.officer, args.reason, args.timeout)
    return _report(args, seq, event)


def _report(args: argparse.Namespace, seq: int, event: Answer | None) -> int:
    wanted = "sent" if args.review_command == "release" else "rejected"
    done = event is not None and event.get("status") == wanted
    if args.review_command == "refuse":
        done = done and event is not None and event.get("reason") == "review.refused"
    if args.format == "json":
        _print_json({"seq": seq, "done": done, "answer": event})
    elif done and args.review_command == "release":
        print(f"released: seq {seq} forwarded as envelope {event and event.get('envelope_id')}")
    elif done:
        print(f"refused: seq {seq}")
    else:
        print(f"not {args.review_command}d: {answer_line(event)}")
    return EXIT_OK if done else EXIT_FAILED
