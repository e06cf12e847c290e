"""A control request that forwards nothing: its archive record and its answer (pure).

One builder for every such ending, so a refused request, a release that a check stops now, a
review's refusal and a re-processed submission that stays refused are recorded and answered the
same way (gateway.workers.review and gateway.workers.control_outcomes use it).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from gateway.archive import Entry, Record
from gateway.core.control_requests import ControlRequest
from gateway.core.replay import answer, request_entry
from gateway.workers.outcomes import Outcome


@dataclass(frozen=True)
class Ending:
    """How a request ends: its record's outcome, its answer's status, and why."""

    outcome: str
    status: str
    reason: str
    detail: str


@dataclass(frozen=True)
class Named:
    """What the answer names of the submission concerned (None: nothing, it is not over)."""

    submission_id: str | None = None
    envelope_id: str | None = None


def ended(
    request: ControlRequest,
    body: bytes,
    record: Record | None,
    ending: Ending,
    now: datetime,
    *,
    user: str,
    named: Named = Named(),
    type_: str | None = None,
    result: str | None = None,
) -> Outcome:
    """The request's record (archived) and its answer; ``type_`` defaults to the record's, and
    ``result`` (what the worker logs) to the record's outcome."""
    entry = ending_entry(request, body, record, ending, now, user=user, type_=type_)
    event = answer(
        ending.status,
        request.request_id,
        at=now,
        submission_id=named.submission_id,
        envelope_id=named.envelope_id,
        type=type_ or (record.type if record else None),
        reason=ending.reason,
        detail=ending.detail,
    )
    return Outcome(result or ending.outcome, entries=[entry], effects=[event])


def ending_entry(
    request: ControlRequest,
    body: bytes,
    record: Record | None,
    ending: Ending,
    now: datetime,
    *,
    user: str,
    type_: str | None = None,
) -> Entry:
    """The archive record of a request that ends so."""
    return request_entry(
        request,
        ending.outcome,
        at=now,
        body=body,
        system=user,
        record=record,
        type=type_,
        reason=ending.reason,
        detail=ending.detail,
    )


def rejection(reason: str, detail: str) -> Ending:
    """A request refused outright: archived and answered ``rejected``."""
    return Ending("rejected", "rejected", reason, detail)


def refused(
    request: ControlRequest,
    body: bytes,
    record: Record | None,
    reason: str,
    detail: str,
    now: datetime,
    *,
    user: str,
) -> Outcome:
    """A request refused outright: ``rejected``, naming the record it was about, if any."""
    named = Named(record.message_id, record.envelope_id) if record else Named()
    return ended(request, body, record, rejection(reason, detail), now, user=user, named=named)
