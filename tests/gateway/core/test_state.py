"""PartyState: what the workers apply as they go equals what a replay of the archive rebuilds."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from gateway.core.receipts import Pending, receipt_body
from gateway.core.state import PartyState
from tests.gateway.trust_helpers import (
    NOW,
    assignment_envelope,
    new_key,
    signed,
    withdrawal_envelope,
)

CICA_KEY = new_key("CICA", "CICA-2026-1")
RATS_KEY = new_key("SCO-RATS", "SCO-RATS-2026-1")
MINUTE = timedelta(minutes=1)


def compact(obj: Mapping[str, Any]) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass
class Journal:
    """A live PartyState and the archive records the workers would write beside it."""

    live: PartyState = field(default_factory=lambda: PartyState("CICA"))
    records: list[tuple[str, str, bytes, datetime]] = field(default_factory=list)

    def sent(self, envelope: dict[str, Any], at: datetime) -> None:
        self.live.sent(envelope, envelope["originator"]["submission_id"], at)
        self.records.append(("envelope.out", "sent", compact(envelope), at))

    def received(self, envelope: dict[str, Any], at: datetime) -> None:
        self.live.received(envelope, at)
        self.records.append(("envelope.in", "delivered", compact(envelope), at))

    def receipt(self, receipt: dict[str, Any], at: datetime) -> Pending | None:
        body = receipt["body"]
        settled = self.live.receipts.settle(
            body["envelope_id"], body["envelope_sha256"], receipt["originator"]["party"]
        )
        self.records.append(("receipt.in", "delivered", compact(receipt), at))
        return settled

    def noise(self, kind: str, outcome: str, payload: dict[str, Any], at: datetime) -> None:
        """A record that must not change the state (rejections, duplicates, our receipts)."""
        self.records.append((kind, outcome, compact(payload), at))

    def rebuilt(self) -> PartyState:
        state = PartyState("CICA")
        for kind, outcome, payload, at in self.records:
            state.replay_record(kind, outcome, payload, at)
        return state


def receipt_of(envelope: dict[str, Any], at: datetime, key: Any = RATS_KEY) -> dict[str, Any]:
    body = receipt_body(envelope, "delivered", at)
    return signed(key, "receipt", body=body, officer=None, recipient="CICA", created_at=at)


def decision_body(envelope_id: str) -> dict[str, Any]:
    return {
        "decision": "granted",
        "scope": {"envelope_ids": [envelope_id]},
        "recipients": ["UNOCT"],
        "expires_at": None,
    }


def history() -> tuple[Journal, dict[str, dict[str, Any]]]:
    j = Journal()
    t = NOW - timedelta(hours=1)
    e: dict[str, dict[str, Any]] = {}
    e["assign"] = assignment_envelope(CICA_KEY, "lo-0001", created_at=t)
    j.sent(e["assign"], t)
    e["assign_unoct"] = assignment_envelope(CICA_KEY, "lo-0009", recipient="UNOCT", created_at=t)
    j.sent(e["assign_unoct"], t)
    e["waiting"] = signed(CICA_KEY, created_at=t + MINUTE)
    j.sent(e["waiting"], t + MINUTE)
    e["answered"] = signed(CICA_KEY, created_at=t + 2 * MINUTE)
    j.sent(e["answered"], t + 2 * MINUTE)
    e["their_assign"] = assignment_envelope(RATS_KEY, "lo-0117", recipient="CICA")
    j.received(e["their_assign"], t + 3 * MINUTE)
    e["their_share"] = signed(RATS_KEY, recipient="CICA", officer="lo-0117")
    j.received(e["their_share"], t + 4 * MINUTE)
    e["consent"] = signed(
        RATS_KEY,
        "consent.decision",
        body=decision_body(e["their_share"]["id"]),
        officer=None,
        recipient="CICA",
    )
    j.received(e["consent"], t + 5 * MINUTE)
    for name in ("assign", "answered"):
        assert j.receipt(receipt_of(e[name], t + 6 * MINUTE), t + 6 * MINUTE) is not None
    # The peer re-sends its original receipt when it sees a duplicate: settled once only.
    assert j.receipt(receipt_of(e["answered"], t + 7 * MINUTE), t + 7 * MINUTE) is None
    e["withdraw"] = withdrawal_envelope(RATS_KEY, "lo-0117", recipient="CICA")
    j.received(e["withdraw"], t + 8 * MINUTE)
    ghost = assignment_envelope(RATS_KEY, "lo-ghost", recipient="CICA")
    for kind, outcome in (
        ("envelope.in", "rejected"),
        ("envelope.in", "duplicate"),
        ("submission", "rejected"),
        ("receipt.out", "sent"),
    ):
        j.noise(kind, outcome, ghost, t + 9 * MINUTE)
    return j, e


def test_the_roster_is_rebuilt() -> None:
    j, _ = history()
    live, rebuilt = j.live, j.rebuilt()
    for party in ("CICA", "SCO-RATS"):
        assert live.roster.officers(party) == rebuilt.roster.officers(party)
    moments = [NOW - timedelta(hours=2), NOW - timedelta(minutes=55), NOW]
    for party, officer in (("CICA", "lo-0001"), ("SCO-RATS", "lo-0117"), ("SCO-RATS", "lo-ghost")):
        for moment in moments:
            assert live.roster.is_accredited(party, officer, moment) == (
                rebuilt.roster.is_accredited(party, officer, moment)
            )
    assert rebuilt.roster.is_accredited("CICA", "lo-0001", NOW)
    assert rebuilt.roster.is_accredited("SCO-RATS", "lo-0117", NOW - timedelta(minutes=56))
    assert not rebuilt.roster.is_accredited("SCO-RATS", "lo-0117", NOW)
    assert not rebuilt.roster.is_accredited("SCO-RATS", "lo-ghost", NOW)


def test_what_each_counterparty_was_told_is_rebuilt() -> None:
    j, _ = history()
    live, rebuilt = j.live, j.rebuilt()
    assert sorted(rebuilt.announced) == sorted(live.announced) == ["SCO-RATS", "UNOCT"]
    for recipient, expected in (("SCO-RATS", ["lo-0001"]), ("UNOCT", ["lo-0009"])):
        officers = [a.officer_id for a in rebuilt.announced[recipient].officers("CICA")]
        assert officers == expected
        assert live.announced[recipient].officers("CICA") == (
            rebuilt.announced[recipient].officers("CICA")
        )


def test_consent_is_rebuilt() -> None:
    j, e = history()
    live, rebuilt = j.live, j.rebuilt()
    assert live.consent.grants() == rebuilt.consent.grants()
    assert len(rebuilt.consent) == 1
    assert rebuilt.consent.status(e["consent"]["id"], NOW) == "live"
    assert live.consent.status(e["consent"]["id"], NOW) == "live"


def test_provenance_is_rebuilt() -> None:
    j, e = history()
    live, rebuilt = j.live, j.rebuilt()
    assert len(rebuilt.provenance) == len(live.provenance) == 8
    for name, envelope in e.items():
        assert (envelope["id"] in rebuilt.provenance) == (envelope["id"] in live.provenance), name
        assert live.provenance.get(envelope["id"]) == rebuilt.provenance.get(envelope["id"])


def test_receipts_are_rebuilt() -> None:
    j, e = history()
    live, rebuilt = j.live, j.rebuilt()
    for counterparty in ("SCO-RATS", "UNOCT", None):
        assert live.receipts.pending_count(counterparty) == (
            rebuilt.receipts.pending_count(counterparty)
        )
    assert rebuilt.receipts.pending_count("SCO-RATS") == 1
    assert rebuilt.receipts.pending_count("UNOCT") == 1
    # The waiting envelope settles exactly once in both, the answered one never again.
    receipt = receipt_of(e["waiting"], NOW)["body"]
    for state in (live, rebuilt):
        settled = state.receipts.settle(
            receipt["envelope_id"], receipt["envelope_sha256"], "SCO-RATS"
        )
        assert settled is not None
        assert settled.submission_id == e["waiting"]["originator"]["submission_id"]
        assert settled.type == "information.share"
        again = receipt_of(e["answered"], NOW)["body"]
        assert (
            state.receipts.settle(again["envelope_id"], again["envelope_sha256"], "SCO-RATS")
            is None
        )


def test_overdue_counts_from_the_first_send_after_a_rebuild() -> None:
    j, e = history()
    rebuilt = j.rebuilt()
    due = rebuilt.receipts.overdue(NOW, timedelta(minutes=30))
    assert sorted(p.envelope_id for p in due) == sorted(
        [e["waiting"]["id"], e["assign_unoct"]["id"]]
    )
