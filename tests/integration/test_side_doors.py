"""The side doors of the third-party rule, on the real broker across three vhosts: a duplicate
re-sent after the provider revoked its consent, and a roster update from a system that is not
a roster administrator."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from gateway import topology
from tests.integration.conftest import Network
from tests.integration.test_third_party_rule import Scene, cica_shares, scene
from tests.support.broker import Vhost
from tests.support.parties import assignment, share, submission
from tests.support.waiting import wait_until

pytestmark = pytest.mark.broker
__all__ = ["scene"]  # the fixture, imported so pytest finds it here


def ids_at_unoct(scene: Scene) -> list[str]:
    return [str(e["id"]) for e in scene.envelopes_at_unoct()]


async def test_a_duplicate_after_the_revocation_is_not_resent(scene: Scene) -> None:
    original = await cica_shares(scene)
    decision_id = await scene.a_decides(
        {
            "decision": "granted",
            "scope": {"envelope_ids": [original]},
            "recipients": ["UNOCT"],
            "expires_at": (datetime.now(UTC) + timedelta(days=1)).isoformat(),
        }
    )
    await scene.arrival_at_b("consent.decision")
    onward = share("UNOCT", "Briefing material from our partner.", officer="lo-b")
    onward["derived_from"] = [original]
    message_id = await scene.b.submit(onward)
    sent = await scene.final_status(scene.status_b, message_id)
    assert sent["status"] == "sent", json.dumps(sent)
    await wait_until(lambda: ids_at_unoct(scene) == [sent["envelope_id"]], message="at UNOCT")

    await scene.a.submit(submission("consent.revocation", "SCO-RATS", {"decision_id": decision_id}))
    await scene.arrival_at_b("consent.revocation")
    await scene.b.submit(onward, message_id=message_id)  # the same submission, re-published

    def blocked() -> list[dict[str, object]]:
        return [
            s
            for s in scene.status_b.bodies()
            if s["submission_id"] == message_id and s["status"] == "blocked"
        ]

    await wait_until(lambda: bool(blocked()), message="the duplicate blocked")
    assert blocked()[0]["reason"] == "consent.missing"
    assert blocked()[0]["envelope_id"] == sent["envelope_id"]
    # Sentinel: SCO-RATS's own fresh message, published after the duplicate, must arrive.
    fresh = await scene.b_sends("UNOCT", "Our own note on the meeting schedule.")
    assert fresh["status"] == "sent", json.dumps(fresh)
    await wait_until(lambda: fresh["envelope_id"] in ids_at_unoct(scene), message="sentinel")
    assert ids_at_unoct(scene) == [sent["envelope_id"], fresh["envelope_id"]]


async def test_an_assignment_from_a_system_that_is_no_roster_administrator_is_rejected(
    network: Network, vhosts: dict[str, Vhost]
) -> None:
    at_b = await vhosts["SCO-RATS"].bind_collector(topology.DELIVER)
    status_a = await vhosts["CICA"].bind_collector(topology.STATUS)
    rejected_a = await vhosts["CICA"].collect(topology.REJECTED)
    await network.start("CICA", roster_admins=["personnel-registry"])
    await network.start("SCO-RATS")
    desk = await network.desk("CICA")

    message_id = await desk.submit(
        submission("liaison.assignment", "SCO-RATS", assignment("lo-forged"))
    )
    await wait_until(lambda: len(rejected_a.messages) == 1, message="gw.rejected copy")
    headers = rejected_a.messages[0].headers or {}
    assert headers[topology.REASON_HEADER] == "roster.not_an_administrator"
    assert "case-desk" in str(headers[topology.DETAIL_HEADER])
    await wait_until(
        lambda: any(s["submission_id"] == message_id for s in status_a.bodies()), message="status"
    )
    [status] = [s for s in status_a.bodies() if s["submission_id"] == message_id]
    assert (status["status"], status["reason"]) == ("rejected", "roster.not_an_administrator")

    # Sentinel: a message that needs no officer, published after the assignment, arrives.
    revocation = {"decision_id": str(uuid.uuid4())}
    await desk.submit(submission("consent.revocation", "SCO-RATS", revocation))
    await wait_until(lambda: len(at_b.messages) == 1, message="sentinel at SCO-RATS")
    assert [e["type"] for e in at_b.bodies()] == ["consent.revocation"]
