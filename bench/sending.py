"""The sending gateway's own CPU per submission, in-process: ``python -m bench.sending``.

Runs the pure part of CICA's outbound worker on ``--count`` benchmark submissions
(``bench/messages.py``) in batches of ``--batch``, as ``OutboundWorker`` does between the broker
and the archive: decide and apply to the state, the archive entries, the frames, the status
events and the batch's metrics and log lines (rendered to /dev/null as the gateway renders them).
It prints the CPU time (``time.process_time``) per submission of each stage, the best of
``--repeat`` runs for each stage, and a SHA-256 of every byte and field produced: keys, ids
and clocks are fixed, so two versions of the code that do the same work print the same
digest.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import astuple
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import structlog
from aio_pika.abc import AbstractIncomingMessage
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bench.messages import OFFICER, RECIPIENT, SENDER, assignment_bytes, share_bytes
from contracts.registry import all_specs
from gateway.core import publications
from gateway.core.keys import SigningKey
from gateway.core.outbound_decision import Accepted, Delivery, OutboundContext, decide_submission
from gateway.core.state import PartyState
from gateway.logs import configure_logging
from gateway.metrics import GatewayMetrics
from gateway.workers.events import emit
from gateway.workers.submissions import Item, entry_for, frames_of, local_effects

SYSTEM = "case-desk"
NOW = datetime(2026, 12, 1, 6, 0, 0, 123456, tzinfo=UTC)
STAGES = ("decide", "state", "archive entries", "frames", "effects", "emit")


def _context(state: PartyState, ids: Iterator[int]) -> OutboundContext:
    key = SigningKey(
        SENDER,
        "CICA-bench-1",
        NOW - timedelta(days=1),
        NOW + timedelta(days=365),
        Ed25519PrivateKey.from_private_bytes(bytes(range(32))),
    )
    return OutboundContext(
        party=SENDER,
        counterparties=frozenset({RECIPIENT}),
        max_message_bytes=1024 * 1024,
        signing_key=key,
        state=state,
        now=NOW,
        new_id=lambda: f"01960f7e-0000-7000-8000-{next(ids):012x}",
        roster_admins=frozenset({SYSTEM}),
    )


def _item(seq: int, body: bytes) -> Item:
    delivery = Delivery(
        body=body,
        message_id=f"bench-{seq}",
        user_id=SYSTEM,
        content_type="application/json",
        headers={},
        redelivered=False,
        routing_key=None,
    )
    # The pure builders never touch the AMQP message.
    return Item(cast(AbstractIncomingMessage, None), delivery, f"submission:{SYSTEM}:bench-{seq}")


class _Run:
    """One pass over the submissions, timing each stage and digesting what it produced."""

    def __init__(self, metrics: GatewayMetrics) -> None:
        self.seconds = dict.fromkeys(STAGES, 0.0)
        self.digest = hashlib.sha256()
        self._metrics = metrics
        self._log = structlog.get_logger("gateway.workers.base")

    def timed(self, stage: str, work: Callable[[], Any]) -> Any:
        started = time.process_time()
        result = work()
        self.seconds[stage] += time.process_time() - started
        return result

    def batch(self, items: list[Item], ctx: OutboundContext) -> None:
        deliveries = [item.delivery for item in items]
        decisions = self.timed("decide", lambda: [decide_submission(d, ctx) for d in deliveries])
        self.timed("state", lambda: self._apply(items, decisions, ctx))
        entries = self.timed("archive entries", lambda: [entry_for(i, SENDER, NOW) for i in items])
        frames = self.timed("frames", lambda: self._frames(items, ctx))
        effects = self.timed("effects", lambda: local_effects(items, NOW))
        self.timed("emit", lambda: emit(effects.events, self._metrics, self._log))
        for entry in entries:
            self.digest.update(repr(astuple(entry)).encode())
        for outgoing in [*frames, *effects.outgoing]:
            self.digest.update(repr(astuple(outgoing)).encode())

    @staticmethod
    def _apply(items: list[Item], decisions: list[Any], ctx: OutboundContext) -> None:
        for item, decision in zip(items, decisions, strict=True):
            assert isinstance(decision, Accepted), decision
            decision.apply(ctx.state, item.delivery.message_id or "", NOW)
            item.decision = decision

    @staticmethod
    def _frames(items: list[Item], ctx: OutboundContext) -> list[publications.Outgoing]:
        ids = itertools.count()
        return [
            frame
            for envs in frames_of(items).values()
            for frame in publications.frames(
                envs, max_bytes=2 * 1024 * 1024, exchange="x", new_id=lambda: f"f{next(ids)}"
            )
        ]


def run(count: int, batch: int, metrics: GatewayMetrics) -> _Run:
    state = PartyState(SENDER)
    ctx = _context(state, itertools.count())
    setup = _item(-1, assignment_bytes())
    assignment = decide_submission(setup.delivery, ctx)
    assert isinstance(assignment, Accepted), assignment
    state.sent(assignment.envelope, "bench-assignment", NOW - timedelta(minutes=1))
    bodies = [share_bytes(seq) for seq in range(count)]
    measured = _Run(metrics)
    for start in range(0, count, batch):
        items = [_item(seq, bodies[seq]) for seq in range(start, min(start + batch, count))]
        measured.batch(items, ctx)
    return measured


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=5_000)
    parser.add_argument("--batch", type=int, default=250)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with open(os.devnull, "w") as devnull:
        configure_logging("json", "info", stream=devnull)
        types = [spec.type for spec in all_specs()]
        metrics = GatewayMetrics(SENDER, counterparties=[RECIPIENT], message_types=types)
        runs = [run(args.count, args.batch, metrics) for _ in range(args.repeat)]
    digests = {measured.digest.hexdigest() for measured in runs}
    assert len(digests) == 1, "the same input gave different output"
    # Each step's best run: a burst of other load spoils one step of a run, not the others.
    best = {stage: min(measured.seconds[stage] for measured in runs) for stage in STAGES}
    for stage in STAGES:
        print(f"{stage:>16}: {best[stage] / args.count * 1e6:7.1f} µs/submission")
    print(f"{'total':>16}: {sum(best.values()) / args.count * 1e6:7.1f} µs/submission")
    print(f"output digest: {digests.pop()} ({OFFICER} accredited, {args.count} accepted)")


if __name__ == "__main__":
    main()
