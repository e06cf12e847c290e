"""What the consent and quarantine commands compute and print from archive records."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from gateway.archive import Record
from gateway.core.archive_views import (
    consent_detail,
    consent_registry,
    consent_rows,
    missing_consents,
    missing_providers,
    pending_quarantine,
    quarantine_detail,
    quarantine_rows,
    table,
    undeclared_matches,
)
from tests.gateway.core.test_consent import DIGEST_A, A, C, D, W, World, known

NOW = datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC)
DECISION_ID = "01960f80-1b2c-7d4e-8f6a-0b1c2d3e4f5a"
GIVEN_ID = "01960f80-1b2c-7d4e-8f6a-0b1c2d3e4f5b"
SHARED_ID = "01960f7e-8a5c-7b3e-9c1d-2f4a6b8c0d1e"


def record(seq: int, kind: str, outcome: str, body: bytes = b"{}", **fields: Any) -> Record:
    at = fields.pop("at", NOW - timedelta(hours=10 - seq))
    return Record(
        seq=seq,
        recorded_at=at,
        prev_hash="0" * 64,
        hash="1" * 64,
        kind=kind,
        outcome=outcome,
        occurred_at=at,
        payload=body,
        **fields,
    )


def consent_envelope(
    seq: int, kind: str, outcome: str, envelope_id: str, party: str, body: dict[str, Any]
) -> Record:
    type_ = "consent.revocation" if "decision_id" in body else "consent.decision"
    envelope = {"id": envelope_id, "type": type_, "originator": {"party": party}, "body": body}
    return record(
        seq, kind, outcome, json.dumps(envelope).encode(), type=type_, envelope_id=envelope_id
    )


def granted(*, expires_at: str | None = None, recipients: tuple[str, ...] = ("UNOCT",)) -> Any:
    return {
        "decision": "granted",
        "scope": {"envelope_ids": [SHARED_ID]},
        "recipients": list(recipients),
        "expires_at": expires_at,
        "conditions": {"en": "For the joint briefing only."},
    }


def test_the_registry_is_rebuilt_from_decisions_and_revocations_in_both_directions() -> None:
    records = [
        consent_envelope(1, "envelope.in", "delivered", DECISION_ID, "CICA", granted()),
        consent_envelope(2, "envelope.out", "sent", GIVEN_ID, "SCO-RATS", granted()),
        consent_envelope(
            3,
            "envelope.in",
            "delivered",
            "01960f80-1b2c-7d4e-8f6a-0b1c2d3e4f5c",
            "CICA",
            {"decision_id": DECISION_ID, "reason": {"en": "Cancelled."}},
        ),
    ]
    registry = consent_registry(records)
    assert registry.status(DECISION_ID, NOW) == "revoked"
    assert registry.status(GIVEN_ID, NOW) == "live"
    rows = consent_rows(registry, "SCO-RATS", NOW)
    assert rows[1][:4] == (DECISION_ID, "CICA", "received", "revoked")
    assert rows[2][:4] == (GIVEN_ID, "SCO-RATS", "given", "live")
    assert rows[1][6] == f"envelopes {SHARED_ID}"


def test_only_accepted_consent_envelopes_count() -> None:
    records = [
        consent_envelope(1, "envelope.in", "rejected", DECISION_ID, "CICA", granted()),
        consent_envelope(2, "envelope.in", "duplicate", DECISION_ID, "CICA", granted()),
        record(3, "envelope.in", "delivered", b"not json", type="consent.decision"),
        consent_envelope(4, "envelope.in", "delivered", GIVEN_ID, "CICA", {"decision": "?"}),
    ]
    assert len(consent_registry(records)) == 0


def test_consent_show_prints_the_decision_and_its_status() -> None:
    expires = (NOW - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    records = [
        consent_envelope(
            1, "envelope.in", "delivered", DECISION_ID, "CICA", granted(expires_at=expires)
        )
    ]
    lines = consent_detail(consent_registry(records), DECISION_ID, NOW)
    text = "\n".join(lines)
    assert lines[0] == f"decision {DECISION_ID}"
    assert "status:      expired" in text
    assert "For the joint briefing only." in text
    assert consent_detail(consent_registry(records), GIVEN_ID, NOW) == []


def test_quarantine_lists_what_no_release_let_through() -> None:
    first = record(3, "submission", "quarantined", message_id="m-3", reason="consent.missing")
    second = record(4, "submission", "quarantined", message_id="m-4", reason="consent.missing")
    requests = [
        record(5, "release", "quarantined", refers_to=3),
        record(6, "release", "quarantined", refers_to=4),
        record(7, "replay", "replayed", refers_to=4, envelope_id="e-9"),
    ]
    assert pending_quarantine([first, second], requests) == [first]
    rows = quarantine_rows([first], first.recorded_at + timedelta(minutes=5))
    assert dict(zip(rows[0], rows[1], strict=True))["age"] == "5 min"
    rows = table(rows)
    assert rows[0].split() == [
        "seq",
        "recorded_at",
        "age",
        "provider",
        "type",
        "system",
        "message_id",
        "recipient",
        "reason",
    ]
    assert rows[1].split()[0] == "3"
    assert rows[1].split()[-1] == "consent.missing"
    assert rows[0].index("message_id") == rows[1].index("m-3")


def test_quarantine_show_prints_the_submission_and_every_attempt() -> None:
    held = record(
        4,
        "submission",
        "quarantined",
        b'{"type": "information.share"}',
        message_id="m-4",
        reason="consent.missing",
        detail="no consent from CICA",
    )
    requests = [
        record(6, "release", "quarantined", refers_to=4, reason="consent.missing", detail="no"),
        record(7, "replay", "replayed", refers_to=4, envelope_id="e-9"),
        record(8, "replay", "replayed", refers_to=99, envelope_id="e-0"),
    ]
    text = "\n".join(quarantine_detail(held, requests))
    assert "seq 4: submission quarantined" in text
    assert '"type": "information.share"' in text
    assert "release attempts: 2" in text
    assert "replay replayed as envelope e-9" in text
    assert "e-0" not in text


def test_a_refusal_detail_names_the_undeclared_match_and_the_missing_consents() -> None:
    world = World(W, known("x", C))
    detail = world.route(D, ("x",), attachments=(DIGEST_A,)).detail
    assert undeclared_matches(detail) == [("w", A, f"attachment sha256 {DIGEST_A}")]
    assert missing_consents(detail) == [(A, "w", D), (C, "x", D)]
    assert undeclared_matches(None) == []
    assert missing_providers(detail) == ", ".join(sorted({A, C}))
    assert missing_providers(None) == "-"
