"""``gateway replay``: re-deliver, re-send or re-process archived messages after an incident.

The command selects records from the archive, then asks the running gateway to replay each one
(through ``gw.control``, as the gateway's broker user) and waits for every answer: the gateway
re-runs validation and the third-party rule with what it knows now, and archives the replay.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from collections.abc import Callable, Coroutine, Mapping, Sequence
from pathlib import Path
from typing import Any

import aiormq
from sqlalchemy.exc import SQLAlchemyError
from tqdm import tqdm

from gateway import eventloop
from gateway.archive import ArchiveStore, Record, SearchFilter
from gateway.cli import EXIT_FAILED, EXIT_OK
from gateway.cli.archive_access import with_archive
from gateway.cli.filters import add_record_filters
from gateway.cli.output import Format, add_format_argument, print_rows
from gateway.config import ConfigError, GatewayConfig, load_config
from gateway.control_client import Answer, ControlClient
from gateway.core.control_requests import TARGETS, Target
from gateway.core.replay_plan import (
    PASSED,
    REQUEST_KINDS,
    Chunk,
    Planned,
    ReplayPlan,
    Selection,
    answer_line,
    answers_of,
    chunked,
    describe,
    pause_before,
    plan_lines,
    plan_replay,
    released_records,
    request_ids,
    request_size,
    result_of,
    summary,
)
from gateway.core.stamping import rfc3339
from gateway.logs import configure_logging
from gateway.tls import local_endpoint

DEFAULT_TIMEOUT_S = 30.0


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "replay",
        help="replay archived messages to gw.deliver, to the peer, or through the checks again",
        description=(
            "Select archived records and have the running gateway replay them: 'deliver' "
            "re-delivers received envelopes to the local gw.deliver (header x-gw-replay-of), "
            "'peer' re-sends sent envelopes unchanged to their recipient, 'reprocess' runs "
            "rejected or quarantined submissions through validation and the third-party rule "
            "again and forwards what passes now."
        ),
    )
    parser.add_argument("--config", type=Path, required=True, metavar="FILE")
    parser.add_argument(
        "--id",
        action="append",
        default=[],
        dest="ids",
        metavar="ID",
        help="a seq, envelope id or message id (repeatable)",
    )
    add_record_filters(parser)
    parser.add_argument("--target", choices=TARGETS, required=True)
    parser.add_argument(
        "--dry-run", action="store_true", help="list what would be replayed; change nothing"
    )
    parser.add_argument("--rate", type=positive_float, help="at most N records per second")
    parser.add_argument(
        "--timeout",
        type=positive_float,
        default=DEFAULT_TIMEOUT_S,
        help="seconds to wait for the next answer before the rest count as unanswered (default 30)",
    )
    add_format_argument(parser)
    parser.set_defaults(handler=run_command(_replay, "replay"))


def positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("must be positive")
    return value


def run_command(
    handler: Callable[[argparse.Namespace], Coroutine[Any, Any, int]], name: str
) -> Callable[[argparse.Namespace], int]:
    """A synchronous argparse handler running ``handler``; the answer goes to stdout."""

    def run(args: argparse.Namespace) -> int:
        configure_logging("auto", level="warning")
        try:
            return eventloop.run(handler(args))
        except (OSError, SQLAlchemyError, aiormq.exceptions.AMQPError) as exc:
            print(f"gateway {name}: unavailable: {exc}", file=sys.stderr)
            return EXIT_FAILED

    return run


async def records_for_id(store: ArchiveStore, ident: str) -> list[Record]:
    """Records a seq, envelope id or message id names."""
    found: dict[int, Record] = {}
    if ident.isdigit():
        record = await store.get(int(ident))
        if record is not None:
            found[record.seq] = record
    for criteria in (SearchFilter(envelope_ids=[ident]), SearchFilter(message_ids=[ident])):
        found.update((r.seq, r) for r in await store.search(criteria))
    return [found[seq] for seq in sorted(found)]


async def select_records(
    store: ArchiveStore, selection: Selection, target: Target
) -> tuple[list[Record], list[str]]:
    """Candidate records, and the ids that named no record at all."""
    if selection.ids:
        candidates: list[Record] = []
        unknown: list[str] = []
        for ident in selection.ids:
            found = await records_for_id(store, ident)
            if not found:
                unknown.append(ident)
            candidates += [r for r in found if selection.matches(r)]
        return candidates, unknown
    kinds, outcomes = selection.search_kinds_outcomes(target)
    if not kinds or not outcomes:
        return [], []
    criteria = SearchFilter(
        since=selection.since,
        until=selection.until,
        kinds=kinds,
        types=selection.types,
        outcomes=outcomes,
    )
    return await store.search(criteria), []


async def released(store: ArchiveStore) -> dict[int, Record]:
    return released_records(
        await store.search(SearchFilter(kinds=REQUEST_KINDS, outcomes=sorted(PASSED)))
    )


async def _replay(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    selection = Selection(
        ids=tuple(args.ids),
        since=args.since,
        until=args.until,
        types=tuple(args.type),
        outcomes=tuple(args.outcome),
        kinds=tuple(args.kind),
    )
    if selection == Selection():
        raise ConfigError("select something: --id, --since, --until, --type, --outcome or --kind")
    target: Target = args.target
    fmt: Format = args.format

    async def plan_from(store: ArchiveStore) -> int:
        candidates, unknown = await select_records(store, selection, target)
        done = await released(store) if target == "reprocess" else {}
        plan = plan_replay(candidates, target, released=done, new_id=request_ids(uuid.uuid4().hex))
        for ident in unknown:
            print(f"gateway replay: no archive record for {ident!r}", file=sys.stderr)
        if args.dry_run:
            _print_plan(plan, fmt)
            return EXIT_FAILED if unknown else EXIT_OK
        if fmt == "table":
            _print_plan(plan, fmt, dry_run=False)
        answered = await send_plan(config, plan, rate=args.rate, timeout=args.timeout, fmt=fmt)
        return EXIT_OK if answered and not unknown else EXIT_FAILED

    return await with_archive(config.archive.url, plan_from)


def _row(record: Record, action: str, **extra: Any) -> dict[str, Any]:
    return {
        "action": action,
        "seq": record.seq,
        "recorded_at": rfc3339(record.recorded_at),
        "kind": record.kind,
        "outcome": record.outcome,
        "type": record.type,
        "provider": record.provider,
        "recipient": record.recipient,
        "id": record.envelope_id or record.message_id,
        **extra,
    }


def _print_plan(plan: ReplayPlan, fmt: Format, *, dry_run: bool = True) -> None:
    """The plan (a dry run's answer): lines for people, rows for json/jsonl."""
    if fmt == "table":
        for line in plan_lines(plan, dry_run=dry_run):
            print(line)
        if dry_run:
            print("dry run: nothing was sent")
        return
    rows = [_row(p.record, "replay", target=plan.target) for p in plan.planned]
    rows += [_row(s.record, "skip", why=s.why) for s in plan.skipped]
    print_rows(rows, fmt, (), sys.stdout)


async def send_plan(
    config: GatewayConfig,
    plan: ReplayPlan,
    *,
    rate: float | None,
    timeout: float,
    fmt: Format = "table",
) -> bool:
    """Send the plan's requests at ``rate`` records/s (re-deliveries many records a request),
    wait for the answers, print them; all answered? With json/jsonl, one row per record (its
    answer included) and per skipped record."""
    if not plan.planned:
        if fmt == "table":
            print(summary([], len(plan.skipped)))
        else:
            _print_plan(plan, fmt)
        return True
    chunks = chunked(plan, request_size(rate), new_id=request_ids(uuid.uuid4().hex))
    with tqdm(total=len(plan.planned), file=sys.stderr, unit="msg", desc="replayed") as bar:

        def progress(event: Answer) -> None:
            bar.update(len(event.get("results") or ()) or 1)

        async with ControlClient(local_endpoint(config), on_answer=progress) as client:
            if rate is None:
                await client.send_all(chunk.request for chunk in chunks)
            else:
                await _send_paced(client, chunks, rate)
            answers = await client.wait([chunk.request.request_id for chunk in chunks], timeout)
    by_record = [
        (planned, event)
        for chunk in chunks
        for planned, event in zip(
            chunk.planned, answers_of(chunk, answers[chunk.request.request_id]), strict=True
        )
    ]
    _print_answers(plan, by_record, fmt)
    return all(event is not None for _, event in by_record)


async def _send_paced(client: ControlClient, chunks: Sequence[Chunk], rate: float) -> None:
    started, index = time.monotonic(), 0
    for chunk in chunks:
        await asyncio.sleep(pause_before(index, rate, time.monotonic() - started))
        await client.send(chunk.request)
        index += len(chunk.planned)


def _print_answers(
    plan: ReplayPlan, by_record: Sequence[tuple[Planned, Mapping[str, Any] | None]], fmt: Format
) -> None:
    results, rows = [], []
    for planned, event in by_record:
        results.append(result_of(event))
        if fmt == "table":
            print(f"{describe(planned.record)}: {answer_line(event)}")
        rows.append(_row(planned.record, "replay", target=plan.target, answer=event))
    if fmt == "table":
        print(summary(results, len(plan.skipped)))
    else:
        rows += [_row(s.record, "skip", why=s.why) for s in plan.skipped]
        print_rows(rows, fmt, (), sys.stdout)
