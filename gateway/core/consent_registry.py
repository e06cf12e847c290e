"""The consent registry: every consent decision and revocation seen (design section 4).

"The information received under the present Protocol may not be transmitted to third parties
without the prior consent of the providing Party." Everything here is pure state and pure
functions: the shell feeds :class:`ConsentRegistry` the ``consent.decision`` and
``consent.revocation`` envelopes it archives (at start, by replaying the archive in order), and
:func:`gateway.core.consent.decide_route` asks it before anything is published toward a
counterparty.

Consent semantics
-----------------
- A ``granted`` decision by provider P is a :class:`Grant`: P's envelopes in scope (listed
  ``envelope_ids``, or every envelope of P in the ``correlation_id`` thread, including later
  ones) may go to the listed recipients from the moment it is applied until ``expires_at``
  (exclusive) or a revocation, whichever comes first. A grant from P never covers an envelope
  whose provider is not P.
- A ``denied`` decision grants nothing and withdraws nothing: earlier grants stand until P
  revokes them.
- A revocation applies to every routing decision made at or after its own time. Only the
  Party that made the decision can revoke it; anyone else's revocation changes nothing and is
  reported as ``"not_provider"``. A revocation that arrives before its decision is held and
  applied when the decision arrives.
- Applying the same decision id twice changes nothing (archive replays and redeliveries).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Literal

from gateway.core.provenance import KnownEnvelope

GrantStatus = Literal["live", "expired", "revoked", "denied", "pending"]
RevocationOutcome = Literal["revoked", "already_revoked", "held", "not_provider", "not_granted"]


@dataclass(frozen=True)
class Grant:
    """One consent decision of a provider: what may go to whom, and for how long.

    Denied decisions are recorded with the same shape (for ``gateway consent list``) but never
    cover anything.
    """

    decision_id: str
    provider: str
    recipients: frozenset[str]
    envelope_ids: frozenset[str]
    correlation_id: str | None
    granted_at: datetime
    expires_at: datetime | None
    conditions: str | None

    def in_scope(self, envelope: KnownEnvelope) -> bool:
        return envelope.provider == self.provider and (
            envelope.id in self.envelope_ids
            or (self.correlation_id is not None and envelope.correlation_id == self.correlation_id)
        )


@dataclass(frozen=True)
class Revocation:
    decision_id: str
    provider: str
    reason: str | None
    at: datetime


@dataclass(frozen=True)
class DecisionRecord:
    """Everything ``gateway consent show`` prints about one decision."""

    grant: Grant
    granted: bool
    request_id: str | None
    revocation: Revocation | None


def _aware(value: datetime, name: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware")
    return value


def _timestamp(value: Any, name: str) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"{name} is not an RFC 3339 string")
    return _aware(datetime.fromisoformat(value), name)


def _bilingual(value: Any, name: str) -> str | None:
    """Both originals of a bilingual text as one string (neither language is primary)."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        parts = [
            f"{lang}: {value[lang]}" for lang in ("en", "ru") if isinstance(value.get(lang), str)
        ]
        if parts:
            return "\n".join(parts)
    raise ValueError(f"{name} is not a bilingual text")


def _strings(value: Any, name: str) -> frozenset[str]:
    if value is None:
        return frozenset()
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValueError(f"{name} is not a list of strings")
    return frozenset(value)


class ConsentRegistry:
    """Every consent decision and revocation this gateway has seen, queryable at any instant."""

    def __init__(self) -> None:
        self._records: dict[str, DecisionRecord] = {}
        self._by_provider: dict[str, list[str]] = {}
        self._held: dict[str, list[Revocation]] = {}

    def apply_decision(
        self, decision_id: str, provider: str, body: Mapping[str, Any], at: datetime
    ) -> DecisionRecord:
        """Record a ``consent.decision`` body that ``provider`` made at ``at``.

        Raises ValueError on a body the rule cannot interpret (no scope, bad timestamp): the
        contracts refuse those first, and a guessed scope could leak.
        """
        existing = self._records.get(decision_id)
        if existing is not None:
            return existing
        decision = body.get("decision")
        if decision not in ("granted", "denied"):
            raise ValueError(f"decision must be 'granted' or 'denied', not {decision!r}")
        scope = body.get("scope")
        if not isinstance(scope, Mapping):
            raise ValueError("scope is not an object")
        envelope_ids = _strings(scope.get("envelope_ids"), "scope.envelope_ids")
        correlation_id = scope.get("correlation_id")
        if correlation_id is not None and not isinstance(correlation_id, str):
            raise ValueError("scope.correlation_id is not a string")
        if not envelope_ids and not correlation_id:
            raise ValueError("scope names neither envelope_ids nor a correlation_id")
        request_id = body.get("request_id")
        grant = Grant(
            decision_id=decision_id,
            provider=provider,
            recipients=_strings(body.get("recipients"), "recipients"),
            envelope_ids=envelope_ids,
            correlation_id=correlation_id or None,
            granted_at=_aware(at, "at"),
            expires_at=_timestamp(body.get("expires_at"), "expires_at"),
            conditions=_bilingual(body.get("conditions"), "conditions"),
        )
        held = [rev for rev in self._held.pop(decision_id, []) if rev.provider == provider]
        record = DecisionRecord(
            grant=grant,
            granted=decision == "granted",
            request_id=request_id if isinstance(request_id, str) else None,
            revocation=min(held, key=lambda rev: rev.at) if held else None,
        )
        self._records[decision_id] = record
        self._by_provider.setdefault(provider, []).append(decision_id)
        return record

    def apply_revocation(
        self, provider: str, body: Mapping[str, Any], at: datetime
    ) -> RevocationOutcome:
        """Record a ``consent.revocation`` body that ``provider`` made at ``at``.

        Returns what happened: ``revoked``; ``already_revoked`` (an earlier revocation stands);
        ``held`` (the decision is not known yet, the revocation waits for it);
        ``not_provider`` (someone other than the decision's provider tried: ignored);
        ``not_granted`` (the decision was a denial: nothing to revoke).
        """
        decision_id = body.get("decision_id")
        if not isinstance(decision_id, str) or not decision_id:
            raise ValueError("revocation names no decision_id")
        revocation = Revocation(
            decision_id=decision_id,
            provider=provider,
            reason=_bilingual(body.get("reason"), "reason"),
            at=_aware(at, "at"),
        )
        record = self._records.get(decision_id)
        if record is None:
            self._held.setdefault(decision_id, []).append(revocation)
            return "held"
        if record.grant.provider != provider:
            return "not_provider"
        if not record.granted:
            return "not_granted"
        if record.revocation is not None and record.revocation.at <= at:
            return "already_revoked"
        self._records[decision_id] = replace(record, revocation=revocation)
        return "revoked"

    def status(self, decision_id: str, at: datetime) -> GrantStatus | None:
        """The state of a decision at ``at``; None for an unknown decision id.

        ``pending`` means ``at`` is before the decision was made (a question about the past).
        """
        record = self._records.get(decision_id)
        if record is None:
            return None
        _aware(at, "at")
        grant = record.grant
        if not record.granted:
            return "denied"
        if record.revocation is not None and at >= record.revocation.at:
            return "revoked"
        if at < grant.granted_at:
            return "pending"
        if grant.expires_at is not None and at >= grant.expires_at:
            return "expired"
        return "live"

    def live_grants(self, provider: str, at: datetime) -> list[Grant]:
        """Grants by ``provider`` in force at ``at``, in the order they were made."""
        return [
            self._records[decision_id].grant
            for decision_id in self._by_provider.get(provider, ())
            if self.status(decision_id, at) == "live"
        ]

    def covers(
        self, provider: str, envelope: KnownEnvelope, recipient: str, at: datetime
    ) -> Grant | None:
        """A grant by ``provider`` letting ``envelope`` go to ``recipient`` at ``at``, if any.

        Only an envelope of ``provider`` itself can be covered (see :meth:`Grant.in_scope`).
        """
        for grant in self.live_grants(provider, at):
            if recipient in grant.recipients and grant.in_scope(envelope):
                return grant
        return None

    def grants(self) -> list[Grant]:
        """Every decision, granted or denied, in the order they were applied."""
        return [record.grant for record in self._records.values()]

    def record(self, decision_id: str) -> DecisionRecord | None:
        return self._records.get(decision_id)

    def __len__(self) -> int:
        return len(self._records)
