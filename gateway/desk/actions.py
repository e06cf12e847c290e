"""The desk's operator actions as plain data: their names, what each came to, and the
``operator.action`` archive entry that records it."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Final

from gateway.archive import Entry, Record
from gateway.desk.requests import GrantChoice

AUDIT_KIND: Final = "operator.action"
DISCARD: Final = "quarantine.discard"
# The actions the desk archives as operator.action records: dotted like reason codes, not reasons.
ACTIONS: Final = frozenset(
    {
        "consent.grant",
        "consent.deny",
        "consent.request",
        "consent.revoke",
        "quarantine.release",
        DISCARD,
        "replay.run",
    }
)


@dataclass(frozen=True)
class ActionResult:
    """What one action came to: ``ok`` and a status word, with a sentence for a person."""

    ok: bool
    status: str
    detail: str
    envelope_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def discarded_seqs(records: Sequence[Record]) -> set[int]:
    return {
        r.refers_to
        for r in records
        if r.kind == AUDIT_KIND and r.outcome == DISCARD and r.reason == "discarded"
        if r.refers_to is not None
    }


def audit_entry(
    action: str,
    operator: str,
    result: ActionResult,
    parameters: Mapping[str, Any],
    *,
    refers_to: int | None,
    at: datetime,
    message_id: str,
) -> Entry:
    """The archive entry of one operator action, with its operator, parameters and result."""
    payload = {"action": action, "operator": operator, "parameters": dict(parameters)}
    payload["result"] = result.to_dict()
    return Entry(
        kind=AUDIT_KIND,
        outcome=action,
        occurred_at=at,
        payload=json.dumps(payload, ensure_ascii=False, default=str).encode(),
        message_id=message_id,
        system=operator,
        envelope_id=result.envelope_id,
        reason=result.status,
        detail=result.detail[:1000],
        refers_to=refers_to,
    )


def choice_dict(choice: GrantChoice) -> dict[str, Any]:
    return {
        "envelope_ids": list(choice.envelope_ids),
        "thread": choice.thread,
        "recipients": list(choice.recipients),
        "expires_at": choice.expires_at.isoformat() if choice.expires_at else None,
        "conditions": choice.conditions,
    }


def answer_detail(event: Mapping[str, Any] | None) -> str:
    """What a person reads of the gateway's answer to a control request (or of its silence)."""
    if event is None:
        return "the gateway did not answer in time (the request stays queued on gw.control)"
    parts = [str(event.get(k)) for k in ("reason", "detail") if event.get(k)]
    return ": ".join(parts) or str(event.get("status"))
