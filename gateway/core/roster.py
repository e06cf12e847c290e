"""The roster of accredited liaison officers, built from ``liaison.assignment`` bodies.

Semantics (pure, in memory, deterministic):

- Each ``apply`` records an event for (party, officer id) at ``at``: pass the ``created_at`` of
  the ``liaison.assignment`` envelope, so both gateways see the same timeline.
- At a moment ``t`` the event in force for an officer is the latest one with ``at <= t``. A later
  event wins over an earlier one whatever order they were applied in (the result depends only on
  the set of events), so a later withdraw wins over an earlier assign, and a later assign
  re-accredits a withdrawn officer. On equal ``at`` a withdraw wins over an assign (the safe
  side); equal-time assigns are ordered by their content, so the choice is still deterministic.
  Applying the same body twice changes nothing.
- ``is_accredited(party, officer, t)`` holds when the event in force at ``t`` is an assign whose
  validity window contains ``t``. Check a message against its own ``created_at``: an envelope
  written just before a withdrawal that arrives after it is judged by the roster of its time.
- A withdraw takes effect at its ``at``; its dates, if any, are ignored.
- Validity windows: a datetime bound is an instant (``valid_from`` inclusive, ``valid_to``
  exclusive); a date bound means whole UTC days, both inclusive (``valid_to`` 2026-12-31 covers
  all of that day). ``valid_to`` null means open-ended.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal

from gateway.core.keys import parse_rfc3339

_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class RosterError(ValueError):
    """A liaison.assignment body the roster cannot apply."""


@dataclass(frozen=True)
class Accreditation:
    party: str
    officer_id: str
    name: str
    role: str
    valid_from: datetime | date
    valid_to: datetime | date | None

    def covers(self, moment: datetime) -> bool:
        if moment < _start(self.valid_from):
            return False
        return self.valid_to is None or moment < _end(self.valid_to)


@dataclass(frozen=True)
class _Event:
    at: datetime
    action: Literal["assign", "withdraw"]
    accreditation: Accreditation | None

    def order(self) -> tuple[datetime, int, tuple[str, ...]]:
        if self.accreditation is None:
            return (self.at, 1, ())
        a = self.accreditation
        return (self.at, 0, (a.name, a.role, repr(a.valid_from), repr(a.valid_to)))


class Roster:
    def __init__(self) -> None:
        self._events: dict[tuple[str, str], set[_Event]] = {}

    def apply(self, party: str, body: Mapping[str, Any], at: datetime) -> None:
        """Record one liaison.assignment body sent by ``party``; raise RosterError if unusable."""
        if at.tzinfo is None:
            raise ValueError("at must be a timezone-aware datetime")
        action = body.get("action")
        officer = body.get("officer")
        if action not in ("assign", "withdraw"):
            raise RosterError(f"action must be 'assign' or 'withdraw', got {action!r}")
        if not isinstance(officer, Mapping):
            raise RosterError("officer is missing")
        officer_id = _text(officer, "id")
        at = at.astimezone(UTC)
        if action == "withdraw":
            event = _Event(at, "withdraw", None)
        else:
            valid_from = _bound(body.get("valid_from"), "valid_from")
            raw_to = body.get("valid_to")
            valid_to = None if raw_to is None else _bound(raw_to, "valid_to")
            if valid_to is not None and _end(valid_to) <= _start(valid_from):
                raise RosterError("valid_to must not be before valid_from")
            accreditation = Accreditation(
                party=party,
                officer_id=officer_id,
                name=_text(officer, "name"),
                role=_text(officer, "role"),
                valid_from=valid_from,
                valid_to=valid_to,
            )
            event = _Event(at, "assign", accreditation)
        self._events.setdefault((party, officer_id), set()).add(event)

    def is_accredited(self, party: str, officer_id: str, at: datetime) -> bool:
        if at.tzinfo is None:
            raise ValueError("at must be a timezone-aware datetime")
        event = self._in_force(party, officer_id, at)
        return (
            event is not None and event.accreditation is not None and event.accreditation.covers(at)
        )

    def officers(self, party: str) -> list[Accreditation]:
        """Officers whose latest event is an assign (windows not checked), by officer id."""
        found = []
        for owner, officer_id in sorted(self._events):
            if owner != party:
                continue
            latest = self._in_force(owner, officer_id, None)
            if latest is not None and latest.accreditation is not None:
                found.append(latest.accreditation)
        return found

    def _in_force(self, party: str, officer_id: str, at: datetime | None) -> _Event | None:
        events = self._events.get((party, officer_id), set())
        candidates = [e for e in events if at is None or e.at <= at]
        return max(candidates, key=_Event.order, default=None)


def _text(officer: Mapping[str, Any], name: str) -> str:
    value = officer.get(name)
    if not isinstance(value, str) or not value:
        raise RosterError(f"officer.{name} must be a non-empty string")
    return value


def _bound(value: object, name: str) -> datetime | date:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise RosterError(f"{name} has no UTC offset")
        return value.astimezone(UTC)
    if isinstance(value, date):
        return value
    if not isinstance(value, str):
        raise RosterError(f"{name} must be a date or an RFC 3339 timestamp")
    try:
        if _DATE_RE.fullmatch(value):
            return date.fromisoformat(value)
        return parse_rfc3339(value)
    except ValueError:
        raise RosterError(f"{name} {value!r} is not a date or an RFC 3339 timestamp") from None


def _start(bound: datetime | date) -> datetime:
    if isinstance(bound, datetime):
        return bound
    return datetime.combine(bound, time.min, UTC)


def _end(bound: datetime | date) -> datetime:
    """The first instant after the window."""
    if isinstance(bound, datetime):
        return bound
    if bound == date.max:
        return datetime.max.replace(tzinfo=UTC)
    return datetime.combine(bound + timedelta(days=1), time.min, UTC)
