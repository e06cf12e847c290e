"""The release review's operations: list, show, release and refuse held submissions.

Plain async functions over an open archive and a control client, so the ``gateway review``
command and an operator console run the same code. Listing and showing read the archive only
(the gateway may be running or not); release and refusal ask the running gateway through
``gw.control`` and return its answer, because only the gateway can re-check the rule against its
live state, sign and forward.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

from gateway.archive import ArchiveStore, Record, SearchFilter
from gateway.control_client import Answer, ControlClient
from gateway.core.control_requests import (
    ControlRequest,
    review_refuse_request,
    review_release_request,
)
from gateway.core.review import SETTLED, Resemblance, officer_of, resembles_of

_HELD = SearchFilter(kinds=["submission"], outcomes=["held"])
_REVIEWS = SearchFilter(kinds=["review"])


@dataclass(frozen=True)
class HeldSubmission:
    record: Record
    officer: str | None
    resembles: tuple[Resemblance, ...]

    @property
    def best_score(self) -> float | None:
        return max((r.score for r in self.resembles), default=None)


@dataclass(frozen=True)
class ResembledEnvelope:
    resemblance: Resemblance
    envelope: dict[str, Any] | None  # None when the archive no longer holds it


@dataclass(frozen=True)
class HeldView:
    held: HeldSubmission
    submission: Any  # the submission as published (JSON), or None when unreadable
    resembled: tuple[ResembledEnvelope, ...]
    history: tuple[Record, ...]  # review steps taken on it, in order
    settled: bool


def held_submission(record: Record) -> HeldSubmission:
    return HeldSubmission(record, officer_of(record.headers), resembles_of(record.headers))


def pending(held: list[Record], reviews: list[Record]) -> list[HeldSubmission]:
    """Held submissions that no release or refusal has settled yet, oldest first."""
    settled = {r.refers_to for r in reviews if r.outcome in SETTLED}
    return [held_submission(r) for r in held if r.seq not in settled]


async def list_held(store: ArchiveStore) -> list[HeldSubmission]:
    return pending(await store.search(_HELD), await store.search(_REVIEWS))


async def find_held(store: ArchiveStore, ident: str) -> Record | None:
    """The held submission ``ident`` names: its archive seq or its message_id."""
    if ident.isdigit():
        record = await store.get(int(ident))
        held = record is not None and (record.kind, record.outcome) == ("submission", "held")
        return record if held else None
    found = await store.search(
        SearchFilter(kinds=["submission"], outcomes=["held"], message_ids=[ident])
    )
    return found[-1] if found else None


def _json(payload: bytes) -> Any:
    try:
        return json.loads(payload)
    except (UnicodeDecodeError, ValueError):
        return None


async def show_held(store: ArchiveStore, ident: str) -> HeldView | None:
    """A held submission beside the received envelopes it resembles, with the scores."""
    record = await find_held(store, ident)
    if record is None:
        return None
    held = held_submission(record)
    resembled = []
    for resemblance in held.resembles:
        found = await store.search(
            SearchFilter(kinds=["envelope.in"], envelope_ids=[resemblance.envelope_id])
        )
        resembled.append(ResembledEnvelope(resemblance, _json(found[0].payload) if found else None))
    history = tuple(r for r in await store.search(_REVIEWS) if r.refers_to == record.seq)
    return HeldView(
        held,
        _json(record.payload),
        tuple(resembled),
        history,
        any(r.outcome in SETTLED for r in history),
    )


async def _ask(client: ControlClient, request: ControlRequest, timeout: float) -> Answer | None:
    await client.send(request)
    return (await client.wait([request.request_id], timeout))[request.request_id]


async def release(client: ControlClient, seq: int, officer: str, timeout: float) -> Answer | None:
    """Ask the gateway to release held submission ``seq`` on ``officer``'s word; its answer
    (``sent``, or ``rejected``/``blocked`` with the reason), None if none came in time."""
    return await _ask(client, review_release_request(str(uuid.uuid4()), seq, officer), timeout)


async def refuse(
    client: ControlClient, seq: int, officer: str, reason: str, timeout: float
) -> Answer | None:
    """Ask the gateway to refuse held submission ``seq``; ``rejected`` with reason
    ``review.refused`` when done."""
    request = review_refuse_request(str(uuid.uuid4()), seq, officer, reason)
    return await _ask(client, request, timeout)
