"""Pending consent requests and the narrowing rule of a grant, over hand-made archive records."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from gateway.archive import Record
from gateway.desk.requests import (
    GrantChoice,
    PendingRequest,
    ScopeError,
    denial_body,
    grant_body,
    pending_requests,
)
from tests.gateway.core.test_archive_views import NOW
from tests.gateway.core.test_archive_views import record as archive_record

OURS = "01960f7e-8a5c-7b3e-9c1d-2f4a6b8c0d01"
OURS_TOO = "01960f7e-8a5c-7b3e-9c1d-2f4a6b8c0d02"
THEIRS = "01960f7e-8a5c-7b3e-9c1d-2f4a6b8c0d03"
REQUEST = "01960f80-1b2c-7d4e-8f6a-0b1c2d3e4f01"
LATER_REQUEST = "01960f80-1b2c-7d4e-8f6a-0b1c2d3e4f02"


def record(seq: int, kind: str, outcome: str, envelope: dict[str, Any]) -> Record:
    body = json.dumps(envelope).encode()
    fields = {"type": envelope["type"], "envelope_id": envelope["id"]}
    return archive_record(seq, kind, outcome, body, recipient=envelope["recipient"], **fields)


def shared(seq: int, envelope_id: str, thread: str | None = "case-7") -> Record:
    envelope = {
        "id": envelope_id,
        "type": "information.share",
        "recipient": "SCO-RATS",
        "created_at": "2026-06-01T01:00:00Z",
        "correlation_id": thread,
        "originator": {"party": "CICA", "officer": "lo-a"},
        "body": {"subject": {"en": "Courier routes", "ru": "Маршруты курьеров"}},
    }
    return record(seq, "envelope.out", "sent", envelope)


def asked(seq: int, request_id: str, scope: dict[str, Any], provider: str = "CICA") -> Record:
    envelope = {
        "id": request_id,
        "type": "consent.request",
        "recipient": provider,
        "originator": {"party": "SCO-RATS", "officer": "lo-b"},
        "body": {
            "provider": provider,
            "scope": scope,
            "recipients": ["UNOCT"],
            "purpose": {"en": "Joint briefing.", "ru": "Совместный брифинг."},
        },
    }
    return record(seq, "envelope.in", "delivered", envelope)


def answered(seq: int, request_id: str) -> Record:
    envelope = {
        "id": "01960f80-1b2c-7d4e-8f6a-0b1c2d3e4f99",
        "type": "consent.decision",
        "recipient": "SCO-RATS",
        "originator": {"party": "CICA"},
        "body": {"request_id": request_id, "decision": "denied"},
    }
    return record(seq, "envelope.out", "sent", envelope)


def pending_one(*records: Record) -> PendingRequest:
    [request] = pending_requests(list(records), "CICA")
    return request


def test_a_request_waits_until_this_party_answers_it_oldest_first() -> None:
    records = [
        shared(1, OURS),
        asked(2, REQUEST, {"envelope_ids": [OURS]}),
        asked(3, LATER_REQUEST, {"correlation_id": "case-7"}),
        asked(4, "01960f80-1b2c-7d4e-8f6a-0b1c2d3e4f03", {"envelope_ids": [OURS]}, "UNOCT"),
    ]
    pending = pending_requests(records, "CICA")
    assert [p.request_id for p in pending] == [REQUEST, LATER_REQUEST]
    first = pending[0]
    assert (first.requester, first.officer, first.recipients) == ("SCO-RATS", "lo-b", ("UNOCT",))
    assert first.purpose == {"en": "Joint briefing.", "ru": "Совместный брифинг."}
    assert [e.subject["ru"] for e in first.envelopes] == ["Маршруты курьеров"]
    assert first.age(NOW) == timedelta(hours=8)
    assert [p.request_id for p in pending_requests([*records, answered(5, REQUEST)], "CICA")] == [
        LATER_REQUEST
    ]


def test_a_grant_by_default_covers_what_was_asked() -> None:
    request = pending_one(shared(1, OURS), asked(2, REQUEST, {"envelope_ids": [OURS]}))
    body = grant_body(request, GrantChoice(conditions="Briefing only."), NOW)
    assert body["scope"] == {"envelope_ids": [OURS]}
    assert body["recipients"] == ["UNOCT"]
    assert body["request_id"] == REQUEST
    assert body["conditions"] == {"en": "Briefing only."}


def test_a_grant_may_narrow_a_thread_to_some_envelopes_with_an_expiry() -> None:
    request = pending_one(
        shared(1, OURS), shared(2, OURS_TOO), asked(3, REQUEST, {"correlation_id": "case-7"})
    )
    expiry = NOW + timedelta(days=30)
    body = grant_body(request, GrantChoice(envelope_ids=(OURS_TOO,), expires_at=expiry), NOW)
    assert body["scope"] == {"envelope_ids": [OURS_TOO]}
    assert body["expires_at"] == "2026-07-01T12:00:00.000000Z"
    whole = grant_body(request, GrantChoice(thread=True), NOW)
    assert whole["scope"] == {"correlation_id": "case-7"}


@pytest.mark.parametrize(
    ("scope", "choice", "complaint"),
    [
        ({"envelope_ids": [OURS]}, GrantChoice(recipients=("UNODC",)), "did not name: UNODC"),
        ({"envelope_ids": [OURS]}, GrantChoice(thread=True), "would widen"),
        ({"envelope_ids": [OURS]}, GrantChoice(envelope_ids=(OURS_TOO,)), OURS_TOO),
        ({"envelope_ids": [OURS, THEIRS]}, GrantChoice(), THEIRS),
        ({"correlation_id": "case-9"}, GrantChoice(), "none of this Party's envelopes"),
        (
            {"envelope_ids": [OURS]},
            GrantChoice(expires_at=NOW - timedelta(seconds=1)),
            "not in the future",
        ),
    ],
)
def test_a_grant_never_widens_the_request_nor_covers_another_partys_envelopes(
    scope: dict[str, Any], choice: GrantChoice, complaint: str
) -> None:
    request = pending_one(shared(1, OURS), shared(2, OURS_TOO, "case-8"), asked(3, REQUEST, scope))
    with pytest.raises(ScopeError, match=complaint):
        grant_body(request, choice, NOW)


def test_a_denial_answers_the_whole_request_with_its_reason() -> None:
    request = pending_one(shared(1, OURS), asked(2, REQUEST, {"correlation_id": "case-7"}))
    body = denial_body(request, "Not for third parties.")
    assert body["decision"] == "denied"
    assert body["scope"] == {"correlation_id": "case-7"}
    assert body["conditions"] == {"en": "Not for third parties."}
