"""The copies of refused submissions for gw.quarantine and gw.rejected."""

from __future__ import annotations

import json

from gateway import topology
from gateway.core.consent import RouteDecision
from gateway.workers.held_copies import quarantine_copy, rejected_copy

ROUTE = RouteDecision(
    allowed=False,
    reason="consent.missing",
    missing=(("UNOCT", "env-1"),),
    matched=("env-1",),
    providers=frozenset({"UNOCT", "CICA"}),
    detail="UNOCT has not consented",
)


def test_a_quarantine_copy_says_which_consents_are_missing() -> None:
    copy = quarantine_copy(b"{}", ROUTE, message_id="m-1", content_type=None, system="case-desk")
    assert (copy.exchange, copy.routing_key, copy.message_id) == (
        topology.QUARANTINE,
        "consent.missing",
        "m-1",
    )
    assert copy.headers[topology.DETAIL_HEADER] == "UNOCT has not consented"
    assert copy.headers["x-gw-system"] == "case-desk"
    assert copy.headers["x-gw-providers"] == "CICA,UNOCT"
    assert json.loads(copy.headers["x-gw-missing"]) == [["UNOCT", "env-1"]]
    assert copy.headers["x-gw-matched"] == "env-1"


def test_a_quarantine_copy_of_a_resend_names_no_system() -> None:
    copy = quarantine_copy(b"{}", ROUTE, message_id="env-9", content_type="application/json")
    assert "x-gw-system" not in copy.headers
    assert copy.content_type == "application/json"


def test_a_rejected_copy_carries_its_reason_and_the_submitting_system() -> None:
    copy = rejected_copy(
        b"[]", reason="schema.x", detail="bad", message_id=None, content_type=None, system=None
    )
    assert (copy.exchange, copy.routing_key, copy.body) == (topology.REJECTED, "schema.x", b"[]")
    assert copy.headers[topology.REASON_HEADER] == "schema.x"
    assert copy.headers["x-gw-system"] == ""
    assert copy.headers["x-gw-stage"] == "submission"
