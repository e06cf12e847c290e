"""Consent requests waiting for this Party's answer, and the answers a consent officer may give.

Pure functions over archive :class:`~gateway.archive.Record` lists. A ``consent.request`` from
another Party asks this Party (its ``provider``) to let some of its envelopes go to third
parties. This Party answers with a ``consent.decision`` (``request_id`` = the request's envelope
id); a request stays pending until such a decision has been sent.

A grant may narrow the request (fewer envelopes, fewer recipients, an expiry, conditions) but
never widen it: no recipient the request did not name, no envelope outside the request's scope,
and never an envelope this Party did not itself provide.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from gateway.archive import Record
from gateway.core.stamping import rfc3339

DECISION = "consent.decision"
REVOCATION = "consent.revocation"
REQUEST = "consent.request"


class ScopeError(ValueError):
    """An answer the request does not allow (it would widen it, or it is malformed)."""


@dataclass(frozen=True)
class SharedEnvelope:
    """One of this Party's envelopes, as a consent officer needs to see it."""

    id: str
    type: str
    subject: Mapping[str, str]
    officer: str | None
    recipient: str
    created_at: str
    correlation_id: str | None


@dataclass(frozen=True)
class PendingRequest:
    """A ``consent.request`` from another Party that this Party has not answered yet."""

    request_id: str
    requester: str
    officer: str | None
    recipients: tuple[str, ...]
    envelope_ids: tuple[str, ...]
    correlation_id: str | None
    purpose: Mapping[str, str]
    received_at: datetime
    envelopes: tuple[SharedEnvelope, ...] = field(default=())

    def age(self, now: datetime) -> timedelta:
        return now - self.received_at

    @property
    def scope_text(self) -> str:
        if self.correlation_id is not None:
            return f"thread {self.correlation_id}"
        return "envelopes " + ", ".join(self.envelope_ids)


@dataclass(frozen=True)
class GrantChoice:
    """How the officer narrows a request; empty fields keep the request's own scope."""

    envelope_ids: tuple[str, ...] = ()
    thread: bool = False
    recipients: tuple[str, ...] = ()
    expires_at: datetime | None = None
    conditions: str | None = None


def _envelope(record: Record) -> dict[str, Any] | None:
    try:
        data = json.loads(record.payload)
    except (UnicodeDecodeError, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("body"), dict) else None


def _texts(value: Any) -> dict[str, str]:
    if not isinstance(value, Mapping):
        return {}
    return {lang: str(value[lang]) for lang in ("en", "ru") if isinstance(value.get(lang), str)}


def own_envelopes(records: Iterable[Record]) -> dict[str, SharedEnvelope]:
    """Every envelope this Party sent (``envelope.out``/``sent``), by id."""
    found: dict[str, SharedEnvelope] = {}
    for record in records:
        if (record.kind, record.outcome) != ("envelope.out", "sent"):
            continue
        envelope = _envelope(record)
        if envelope is None or not isinstance(envelope.get("id"), str):
            continue
        originator = envelope.get("originator") or {}
        found[envelope["id"]] = SharedEnvelope(
            id=envelope["id"],
            type=str(envelope.get("type")),
            subject=_texts(envelope["body"].get("subject")),
            officer=originator.get("officer") if isinstance(originator, dict) else None,
            recipient=str(envelope.get("recipient")),
            created_at=str(envelope.get("created_at")),
            correlation_id=envelope.get("correlation_id"),
        )
    return found


def answered_requests(records: Iterable[Record]) -> set[str]:
    """Ids of the consent requests this Party has sent a decision for."""
    answered: set[str] = set()
    for record in records:
        if (record.kind, record.outcome, record.type) != ("envelope.out", "sent", DECISION):
            continue
        envelope = _envelope(record)
        request_id = envelope["body"].get("request_id") if envelope else None
        if isinstance(request_id, str):
            answered.add(request_id)
    return answered


def _request(record: Record, party: str, own: Mapping[str, SharedEnvelope]) -> PendingRequest:
    envelope = _envelope(record)
    if envelope is None:
        raise ValueError("unreadable")
    body = envelope["body"]
    if body.get("provider") != party:
        raise ValueError("asks another provider")
    scope = body.get("scope") or {}
    ids = tuple(scope.get("envelope_ids") or ())
    thread = scope.get("correlation_id")
    in_scope = [
        e
        for e in own.values()
        if e.id in ids or (thread is not None and e.correlation_id == thread)
    ]
    return PendingRequest(
        request_id=str(envelope["id"]),
        requester=str(envelope["originator"]["party"]),
        officer=envelope["originator"].get("officer"),
        recipients=tuple(body.get("recipients") or ()),
        envelope_ids=ids,
        correlation_id=thread,
        purpose=_texts(body.get("purpose")),
        received_at=record.occurred_at,
        envelopes=tuple(sorted(in_scope, key=lambda e: e.created_at)),
    )


def pending_requests(records: Sequence[Record], party: str) -> list[PendingRequest]:
    """Requests from other Parties asking ``party``'s consent, unanswered, oldest first."""
    own = own_envelopes(records)
    answered = answered_requests(records)
    pending: list[PendingRequest] = []
    for record in records:
        if (record.kind, record.outcome, record.type) != ("envelope.in", "delivered", REQUEST):
            continue
        if record.envelope_id in answered:
            continue
        try:
            pending.append(_request(record, party, own))
        except (ValueError, KeyError, TypeError, AttributeError):
            continue  # validated on arrival; one this desk cannot read is not a question to it
    return sorted(pending, key=lambda p: p.received_at)


def _granted_scope(request: PendingRequest, choice: GrantChoice) -> dict[str, Any]:
    own = {e.id for e in request.envelopes}
    if choice.thread:
        if request.correlation_id is None:
            raise ScopeError("the request names envelopes, not a thread: --thread would widen it")
        return {"correlation_id": request.correlation_id}
    wanted = choice.envelope_ids or (request.envelope_ids if request.correlation_id is None else ())
    if not wanted:
        if not own:
            raise ScopeError("none of this Party's envelopes is in the requested thread")
        return {"correlation_id": request.correlation_id}
    outside = [i for i in wanted if i not in own]
    if outside:
        raise ScopeError(
            "not this Party's envelopes in the request's scope, so not this Party's to grant: "
            + ", ".join(outside)
        )
    return {"envelope_ids": list(dict.fromkeys(wanted))}


def grant_body(request: PendingRequest, choice: GrantChoice, now: datetime) -> dict[str, Any]:
    """The ``consent.decision`` body granting ``request`` as ``choice`` narrows it.

    Raises ScopeError for an answer that would widen the request.
    """
    recipients = choice.recipients or request.recipients
    extra = [r for r in recipients if r not in request.recipients]
    if extra:
        raise ScopeError("recipients the request did not name: " + ", ".join(extra))
    if choice.expires_at is not None and choice.expires_at <= now:
        raise ScopeError(f"expiry {rfc3339(choice.expires_at)} is not in the future")
    return {
        "request_id": request.request_id,
        "decision": "granted",
        "scope": _granted_scope(request, choice),
        "recipients": list(dict.fromkeys(recipients)),
        "expires_at": rfc3339(choice.expires_at) if choice.expires_at else None,
        "conditions": {"en": choice.conditions} if choice.conditions else None,
    }


def denial_body(request: PendingRequest, reason: str) -> dict[str, Any]:
    """The ``consent.decision`` body denying ``request``.

    The v1 decision body has no reason field: a denial's reason travels as its conditions.
    """
    scope: dict[str, Any] = (
        {"correlation_id": request.correlation_id}
        if request.correlation_id is not None
        else {"envelope_ids": list(request.envelope_ids)}
    )
    return {
        "request_id": request.request_id,
        "decision": "denied",
        "scope": scope,
        "recipients": list(request.recipients),
        "conditions": {"en": reason},
    }


def submission(
    type_: str,
    recipient: str,
    officer: str,
    body: Mapping[str, Any],
    *,
    in_reply_to: str | None = None,
) -> dict[str, Any]:
    """An operator submission of a consent answer, for ``gw.control``."""
    return {
        "type": type_,
        "recipient": recipient,
        "officer": officer,
        "correlation_id": None,
        "in_reply_to": in_reply_to,
        "derived_from": [],
        "handling": {"onward": "consent-required", "pre_approved": []},
        "body": dict(body),
    }


def revocation_body(decision_id: str, reason: str) -> dict[str, Any]:
    return {"decision_id": decision_id, "reason": {"en": reason}}


def decision_recipient(records: Iterable[Record], decision_id: str) -> str | None:
    """The Party this Party sent decision ``decision_id`` to; None if it sent no such one."""
    for record in records:
        if (record.kind, record.outcome, record.type) == (
            "envelope.out",
            "sent",
            DECISION,
        ) and record.envelope_id == decision_id:
            return record.recipient
    return None
