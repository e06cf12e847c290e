"""Which archived records an operator's selection replays, and what the replay tools print.

``gateway replay`` and the console's replay page turn a :class:`Selection` into a
:class:`ReplayPlan` of control requests (one per record, each envelope once, a released
submission not again) and print the plan and the answers with the functions here. Nothing here
does I/O.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from itertools import count
from typing import Any, Final

from gateway.archive import Record
from gateway.core.control_requests import (
    MAX_SEQS,
    ControlRequest,
    Target,
    redeliver_request,
    replay_request,
)
from gateway.core.replay import REPLAYABLE, check_replayable
from gateway.core.stamping import rfc3339

# Outcomes of the archive record of a request that mean its record went through; a
# quarantined submission with one of these is no longer waiting for release.
PASSED: Final = frozenset({"replayed", "released"})
REQUEST_KINDS: Final = ("replay", "release")
# Records one re-delivery request names: each request is one archive append and broker
# transaction in the gateway, and several in flight keep the tool and the gateway both busy.
SEQS_PER_REQUEST: Final = min(500, MAX_SEQS)
# With a rate, about this many requests a second: bursts stay a tenth of a second's records.
PACED_REQUESTS_PER_S: Final = 10


@dataclass(frozen=True)
class Selection:
    """What an operator asked for; empty means "any". Ids are seqs, envelope or message ids."""

    ids: tuple[str, ...] = ()
    since: datetime | None = None
    until: datetime | None = None
    types: tuple[str, ...] = ()
    outcomes: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()

    def matches(self, record: Record) -> bool:
        return (
            (self.since is None or record.recorded_at >= self.since)
            and (self.until is None or record.recorded_at < self.until)
            and (not self.types or record.type in self.types)
            and (not self.outcomes or record.outcome in self.outcomes)
            and (not self.kinds or record.kind in self.kinds)
        )

    def search_kinds_outcomes(self, target: Target) -> tuple[list[str], list[str]]:
        """Kinds and outcomes to search for (the target's, narrowed by the operator's)."""
        kind, outcomes = REPLAYABLE[target]
        kinds = [kind] if not self.kinds or kind in self.kinds else []
        wanted = sorted(outcomes if not self.outcomes else outcomes & set(self.outcomes))
        return kinds, wanted


@dataclass(frozen=True)
class Planned:
    record: Record
    request: ControlRequest


@dataclass(frozen=True)
class Skipped:
    record: Record
    why: str


@dataclass
class ReplayPlan:
    target: Target
    planned: list[Planned] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)


def plan_replay(
    records: Iterable[Record],
    target: Target,
    *,
    released: Mapping[int, Record],
    new_id: Callable[[], str],
) -> ReplayPlan:
    """The requests that replay ``records`` to ``target``, in archive order.

    Records the target cannot take are skipped with the reason. Each envelope is replayed once
    (the delivered record rather than its duplicates); a submission already released is
    skipped, naming the release (re-send its envelope with target peer instead).
    """
    plan = ReplayPlan(target)
    chosen: dict[str, Record] = {}
    for record in sorted({r.seq: r for r in records}.values(), key=lambda r: r.seq):
        refusal = check_replayable(record, target)
        if refusal is not None:
            plan.skipped.append(Skipped(record, refusal.detail))
            continue
        if target == "reprocess":
            release = released.get(record.seq)
            if release is not None:
                plan.skipped.append(
                    Skipped(
                        record,
                        f"already released by seq {release.seq} as envelope "
                        f"{release.envelope_id or '?'}",
                    )
                )
                continue
            key = str(record.seq)
        else:
            key = record.envelope_id or str(record.seq)
        kept = chosen.get(key)
        if kept is None or (kept.outcome != "delivered" and record.outcome == "delivered"):
            if kept is not None:
                plan.skipped.append(Skipped(kept, f"envelope {key} is replayed once"))
            chosen[key] = record
        else:
            plan.skipped.append(Skipped(record, f"envelope {key} is replayed once"))
    for record in sorted(chosen.values(), key=lambda r: r.seq):
        plan.planned.append(Planned(record, replay_request(new_id(), record.seq, target)))
    return plan


@dataclass(frozen=True)
class Chunk:
    """One request on gw.control and the planned records it names, in order."""

    request: ControlRequest
    planned: tuple[Planned, ...]


def request_ids(run: str) -> Callable[[], str]:
    """Request ids ``<run>-1``, ``<run>-2``, ...: unique as ``run`` is (a uuid4 per command),
    without a random draw per record (a tenth of the tool's time at 100,000 records)."""
    numbers = count(1)
    return lambda: f"{run}-{next(numbers)}"


def request_size(rate: float | None) -> int:
    """Records a request names: at a ``rate`` (records/s), a tenth of a second's."""
    if rate is None:
        return SEQS_PER_REQUEST
    return max(1, min(SEQS_PER_REQUEST, int(rate / PACED_REQUESTS_PER_S)))


def chunked(plan: ReplayPlan, size: int, new_id: Callable[[], str]) -> list[Chunk]:
    """The plan as requests: re-deliveries ``size`` records a request (answered once, with
    each record's result), the other targets one record a request, as planned."""
    if plan.target != "deliver" or size <= 1:
        return [Chunk(p.request, (p,)) for p in plan.planned]
    parts = [plan.planned[i : i + size] for i in range(0, len(plan.planned), size)]
    return [
        Chunk(redeliver_request(new_id(), [p.record.seq for p in part]), tuple(part))
        for part in parts
    ]


def answers_of(chunk: Chunk, answer: Mapping[str, Any] | None) -> list[Mapping[str, Any] | None]:
    """Each planned record's answer, as the answer to a request for it alone would read: its
    entry of the answer's ``results`` over the answer's other members. A request refused as
    a whole (no ``results``) answers each of its records so; a record missing from
    ``results`` is unanswered (None)."""
    if answer is None:
        return [None] * len(chunk.planned)
    results = answer.get("results")
    if not isinstance(results, list):
        return [answer] * len(chunk.planned)
    common = {name: value for name, value in answer.items() if name != "results"}
    by_seq = {r.get("seq"): r for r in results if isinstance(r, dict)}
    answers: list[Mapping[str, Any] | None] = []
    for planned in chunk.planned:
        result = by_seq.get(planned.record.seq)
        if result is None:
            answers.append(None)
            continue
        own = {**common, **result}
        del own["seq"]
        answers.append(own)
    return answers


def released_records(records: Iterable[Record]) -> dict[int, Record]:
    """Archived request records that let their record through, by the seq they refer to."""
    found: dict[int, Record] = {}
    for record in records:
        if (
            record.kind in REQUEST_KINDS
            and record.outcome in PASSED
            and record.refers_to is not None
        ):
            found.setdefault(record.refers_to, record)
    return found


def pause_before(index: int, rate: float | None, elapsed: float) -> float:
    """Seconds to wait before sending record ``index`` (from 0) at ``rate`` records/s."""
    if not rate:
        return 0.0
    return max(0.0, index / rate - elapsed)


# --- what the tools print --------------------------------------------------------------------


def describe(record: Record) -> str:
    route = f"{record.provider or '?'}->{record.recipient or '?'}"
    if record.provider is None and record.recipient is None:
        route = "-"
    ident = record.envelope_id or record.message_id or "-"
    return (
        f"seq {record.seq} {rfc3339(record.recorded_at)} {record.kind}/{record.outcome} "
        f"{record.type or '-'} {route} {ident}"
    )


def plan_lines(plan: ReplayPlan, *, dry_run: bool) -> list[str]:
    verb = "would replay" if dry_run else "replay"
    lines = [f"{verb} to {plan.target}: {describe(p.record)}" for p in plan.planned]
    lines += [f"skip: {describe(s.record)}: {s.why}" for s in plan.skipped]
    lines.append(f"{len(plan.planned)} to replay to {plan.target}, {len(plan.skipped)} skipped")
    return lines


def result_of(event: Mapping[str, Any] | None) -> str:
    """The result of one request as the summary counts it."""
    if event is None:
        return "unanswered"
    return str(event.get("status") or "unknown")


def summary(results: Sequence[str], skipped: int = 0) -> str:
    counts = Counter(results)
    parts = [f"{name} {counts[name]}" for name in sorted(counts)]
    if skipped:
        parts.append(f"skipped {skipped}")
    return "summary: " + (", ".join(parts) if parts else "nothing to do")


def answer_line(event: Mapping[str, Any] | None) -> str:
    if event is None:
        return "no answer before the deadline (the request stays queued on gw.control)"
    line = str(event.get("status"))
    if event.get("envelope_id"):
        line += f" envelope {event['envelope_id']}"
    if event.get("reason"):
        line += f": {event['reason']}"
    if event.get("detail"):
        line += f" ({event['detail']})"
    return line
