"""What ``gateway consent`` and ``gateway quarantine`` show, computed from archive records.

Pure functions over :class:`~gateway.archive.Record` lists: the consent registry rebuilt the way
the running gateway rebuilds it (decisions and revocations in archive order, each at the time
it was archived), the quarantined submissions still waiting for release, and their text.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from gateway.archive import Record
from gateway.core.consent_registry import ConsentRegistry, DecisionRecord
from gateway.core.replay_plan import PASSED, released_records
from gateway.core.stamping import rfc3339

CONSENT_TYPES = ("consent.decision", "consent.revocation")
# The wording of gateway.core.consent.decide_route's refusal detail, one clause per match or gap.
_UNDECLARED = re.compile(r"reproduces received envelope (\S+) of (\S+) \(([^)]*)\)")
_MISSING = re.compile(r"no consent from (\S+) for envelope (\S+) to ([^;]+)")
# Decisions received from a provider govern this Party's routes; the ones this Party sent are
# its own consents to others, shown too so an operator sees both directions.
_APPLIED = {("envelope.in", "delivered"), ("envelope.out", "sent")}


def consent_registry(records: Iterable[Record]) -> ConsentRegistry:
    """Every consent decision and revocation in ``records`` (archive order), applied."""
    registry = ConsentRegistry()
    for record in records:
        if record.type not in CONSENT_TYPES or (record.kind, record.outcome) not in _APPLIED:
            continue
        try:
            envelope = json.loads(record.payload)
            provider = envelope["originator"]["party"]
            if record.type == "consent.decision":
                registry.apply_decision(
                    envelope["id"], provider, envelope["body"], record.occurred_at
                )
            else:
                registry.apply_revocation(provider, envelope["body"], record.occurred_at)
        except (ValueError, KeyError, TypeError):
            # Both gateways validated these before archiving; an unreadable one grants nothing.
            continue
    return registry


def _scope(decision: DecisionRecord) -> str:
    grant = decision.grant
    if grant.correlation_id is not None:
        return f"thread {grant.correlation_id}"
    return "envelopes " + ", ".join(sorted(grant.envelope_ids))


def consent_rows(registry: ConsentRegistry, party: str, now: datetime) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = [
        ("decision", "provider", "direction", "status", "recipients", "expires_at", "scope")
    ]
    for grant in registry.grants():
        record = registry.record(grant.decision_id)
        assert record is not None
        rows.append(
            (
                grant.decision_id,
                grant.provider,
                "given" if grant.provider == party else "received",
                registry.status(grant.decision_id, now) or "unknown",
                ",".join(sorted(grant.recipients)),
                rfc3339(grant.expires_at) if grant.expires_at else "-",
                _scope(record),
            )
        )
    return rows


def consent_detail(registry: ConsentRegistry, decision_id: str, now: datetime) -> list[str]:
    """The lines ``gateway consent show`` prints; empty for an unknown decision."""
    record = registry.record(decision_id)
    if record is None:
        return []
    grant = record.grant
    lines = [
        f"decision {grant.decision_id}",
        f"  provider:    {grant.provider}",
        f"  decision:    {'granted' if record.granted else 'denied'}",
        f"  status:      {registry.status(decision_id, now)}",
        f"  recipients:  {', '.join(sorted(grant.recipients))}",
        f"  scope:       {_scope(record)}",
        f"  decided_at:  {rfc3339(grant.granted_at)}",
        f"  expires_at:  {rfc3339(grant.expires_at) if grant.expires_at else 'until revoked'}",
    ]
    if record.request_id:
        lines.append(f"  request:     {record.request_id}")
    if grant.conditions:
        lines.append("  conditions:")
        lines += [f"    {line}" for line in grant.conditions.splitlines()]
    if record.revocation is not None:
        revocation = record.revocation
        lines.append(f"  revoked_at:  {rfc3339(revocation.at)}")
        if revocation.reason:
            lines.append("  reason:")
            lines += [f"    {line}" for line in revocation.reason.splitlines()]
    return lines


def undeclared_matches(detail: str | None) -> list[tuple[str, str, str]]:
    """(envelope id, provider, evidence) of each received envelope a quarantined submission
    reproduced without declaring it, read from its refusal detail."""
    return [(m[1], m[2], m[3]) for m in _UNDECLARED.finditer(detail or "")]


def missing_consents(detail: str | None) -> list[tuple[str, str, str]]:
    """(provider, envelope id, recipients) of each consent a refusal detail says is missing."""
    return [(m[1], m[2], m[3].strip()) for m in _MISSING.finditer(detail or "")]


def consent_dict(
    registry: ConsentRegistry, decision_id: str, now: datetime
) -> dict[str, Any] | None:
    """What ``gateway consent show --format json`` prints; None for an unknown decision."""
    record = registry.record(decision_id)
    if record is None:
        return None
    grant, revocation = record.grant, record.revocation
    return {
        "decision": grant.decision_id,
        "provider": grant.provider,
        "granted": record.granted,
        "status": registry.status(decision_id, now),
        "recipients": sorted(grant.recipients),
        "scope": _scope(record),
        "decided_at": rfc3339(grant.granted_at),
        "expires_at": rfc3339(grant.expires_at) if grant.expires_at else None,
        "request_id": record.request_id,
        "conditions": grant.conditions,
        "revoked_at": rfc3339(revocation.at) if revocation else None,
        "revocation_reason": revocation.reason if revocation else None,
    }


def pending_quarantine(quarantined: Iterable[Record], requests: Iterable[Record]) -> list[Record]:
    """Quarantined submissions that no release or replay has let through yet."""
    released = released_records(requests)
    return [r for r in quarantined if r.outcome == "quarantined" and r.seq not in released]


def format_age(age: timedelta) -> str:
    seconds = int(age.total_seconds())
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    if seconds < 172800:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} days"


def missing_providers(detail: str | None) -> str:
    """The Parties whose consent a quarantine reason says is missing."""
    return ", ".join(sorted({provider for provider, _, _ in missing_consents(detail)})) or "-"


def quarantine_rows(records: Sequence[Record], now: datetime) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = [
        (
            "seq",
            "recorded_at",
            "age",
            "provider",
            "type",
            "system",
            "message_id",
            "recipient",
            "reason",
        )
    ]
    rows += [
        (
            str(r.seq),
            rfc3339(r.recorded_at),
            format_age(now - r.recorded_at),
            missing_providers(r.detail),
            r.type or "-",
            r.system or "-",
            r.message_id or "-",
            r.recipient or "-",
            r.reason or "-",
        )
        for r in records
    ]
    return rows


def table(rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]


def _payload_lines(payload: bytes) -> list[str]:
    try:
        data: Any = json.loads(payload)
        return json.dumps(data, indent=2, ensure_ascii=False).splitlines()
    except (UnicodeDecodeError, ValueError):
        return [f"<{len(payload)} bytes, not JSON>"]


def _record_dict(record: Record) -> dict[str, Any]:
    return {
        "seq": record.seq,
        "recorded_at": rfc3339(record.recorded_at),
        "kind": record.kind,
        "outcome": record.outcome,
        "envelope_id": record.envelope_id,
        "reason": record.reason,
        "detail": record.detail,
    }


def quarantine_dict(record: Record, attempts: Sequence[Record]) -> dict[str, Any]:
    """What ``gateway quarantine show --format json`` prints."""
    try:
        submission: Any = json.loads(record.payload)
    except (UnicodeDecodeError, ValueError):
        submission = None
    return {
        **_record_dict(record),
        "system": record.system,
        "message_id": record.message_id,
        "type": record.type,
        "recipient": record.recipient,
        "derived_from": list(record.derived_from),
        "submission": submission,
        "release_attempts": [_record_dict(a) for a in attempts],
    }


def quarantine_detail(record: Record, history: Sequence[Record]) -> list[str]:
    """The lines ``gateway quarantine show`` prints: the record, then every release attempt."""
    lines = [f"seq {record.seq}: {record.kind} {record.outcome}"]
    fields: Mapping[str, object] = {
        "recorded_at": rfc3339(record.recorded_at),
        "system": record.system,
        "message_id": record.message_id,
        "type": record.type,
        "recipient": record.recipient,
        "derived_from": ", ".join(record.derived_from),
        "reason": record.reason,
        "detail": record.detail,
    }
    lines += [f"  {name + ':':<14}{value}" for name, value in fields.items() if value]
    lines.append("  submission:")
    lines += [f"    {line}" for line in _payload_lines(record.payload)]
    attempts = [r for r in history if r.refers_to == record.seq]
    lines.append(f"release attempts: {len(attempts)}")
    for attempt in attempts:
        why = f" {attempt.reason}: {attempt.detail}" if attempt.reason else ""
        sent = f" as envelope {attempt.envelope_id}" if attempt.outcome in PASSED else ""
        lines.append(
            f"  seq {attempt.seq} {rfc3339(attempt.recorded_at)} {attempt.kind} "
            f"{attempt.outcome}{sent}{why}"
        )
    return lines
