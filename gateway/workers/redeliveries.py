"""A request re-delivering many records (``seqs``): what it leads to, as plain data (pure).

Each record is decided as a request for it alone would be, and leaves the same archive record
(its payload the single-record request it stands for, so each record documents itself) and the
same re-delivery; the request is answered once, listing each record's result in its order.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from gateway.archive import Record
from gateway.core.control_requests import ControlRequest
from gateway.core.inbound_decision import InboundContext
from gateway.core.replay import (
    Redeliver,
    Refusal,
    answer,
    decide_redelivery,
    redelivery_result,
    unknown_record,
)
from gateway.workers.control_outcomes import redelivery, redelivery_entry
from gateway.workers.outcomes import Outcome
from gateway.workers.refusals import ending_entry, rejection


@dataclass(frozen=True)
class Decided:
    """One record of the request, as decided: ``record`` None when the archive has no ``seq``."""

    seq: int
    record: Record | None
    result: Redeliver | Refusal


def decide_all(
    seqs: Sequence[int],
    known: Mapping[int, Record],
    inbound_context: Callable[[datetime], InboundContext],
) -> list[Decided]:
    """Each record verified again as of its arrival (``decide_redelivery``), in order."""
    decided = []
    for seq in seqs:
        record = known.get(seq)
        if record is None:
            decided.append(Decided(seq, None, unknown_record(seq)))
        else:
            result = decide_redelivery(record, inbound_context(record.occurred_at))
            decided.append(Decided(seq, record, result))
    return decided


def redelivered_many(
    request: ControlRequest, decided: Sequence[Decided], now: datetime, user: str
) -> Outcome:
    """The records' archive entries and re-deliveries, in order, and the one answer."""
    outcome = Outcome("replayed")
    for item in decided:
        one = request.one(item.seq)
        body = one.to_json()
        if isinstance(item.result, Redeliver):
            assert item.record is not None
            outcome.entries.append(redelivery_entry(one, body, item.record, now, user))
            outcome.effects.append(redelivery(item.seq, item.result))
        else:
            ending = rejection(item.result.reason, item.result.detail)
            outcome.entries.append(ending_entry(one, body, item.record, ending, now, user=user))
    results = [redelivery_result(item.seq, item.record, item.result) for item in decided]
    event = answer(
        "replayed",
        request.request_id,
        at=now,
        submission_id=None,
        envelope_id=None,
        type=None,
        results=results,
    )
    outcome.effects.append(event)
    return outcome
