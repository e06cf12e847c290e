"""The third-party rule across three vhosts: CICA (party-a), SCO-RATS (party-b), UNOCT (party-c).

Information CICA gives SCO-RATS reaches UNOCT only with CICA's live, signed consent.
"""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from contracts import parse_frame
from gateway import topology
from tests.integration.conftest import Network
from tests.support.broker import Collector, Vhost, body_has
from tests.support.parties import Desk, assignment, share, submission
from tests.support.waiting import wait_until

pytestmark = pytest.mark.broker

SECRET = b"Names and routes of the couriers, as observed by CICA's liaison office in 2026."


def attachment(data: bytes) -> dict[str, Any]:
    return {
        "name": "couriers.txt",
        "media_type": "text/plain",
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "content": base64.b64encode(data).decode(),
    }


class Scene:
    """CICA and SCO-RATS running, officers accredited, UNOCT's inbound queue watched."""

    def __init__(self, network: Network, vhosts: dict[str, Vhost]) -> None:
        self.network = network
        self.vhosts = vhosts

    async def set_up(self) -> None:
        # What either Party's gateway sends the third party, each in its own queue there.
        self.unoct_inbound: list[Collector] = [
            await self.vhosts["UNOCT"].collect(topology.inbound_from(sender))
            for sender in ("CICA", "SCO-RATS")
        ]
        self.at_a = await self.vhosts["CICA"].bind_collector(topology.DELIVER)
        self.at_b = await self.vhosts["SCO-RATS"].bind_collector(topology.DELIVER)
        self.status_a = await self.vhosts["CICA"].bind_collector(topology.STATUS)
        self.status_b = await self.vhosts["SCO-RATS"].bind_collector(topology.STATUS)
        self.quarantine_b = await self.vhosts["SCO-RATS"].collect(topology.QUARANTINE)
        await self.network.start("CICA")
        await self.network.start("SCO-RATS")
        self.a: Desk = await self.network.desk("CICA")
        self.b: Desk = await self.network.desk("SCO-RATS")
        await self.a.submit(submission("liaison.assignment", "SCO-RATS", assignment("lo-a")))
        await self.b.submit(submission("liaison.assignment", "CICA", assignment("lo-b")))
        # The sender checks its officer is known to the recipient too.
        await self.b.submit(submission("liaison.assignment", "UNOCT", assignment("lo-b")))
        await wait_until(lambda: len(self.at_a.messages) == 1 and len(self.at_b.messages) == 1)

    async def arrival_at_b(self, type_: str, count: int = 1) -> dict[str, Any]:
        def arrived() -> list[dict[str, Any]]:
            return [e for e in self.at_b.bodies() if e["type"] == type_]

        await wait_until(lambda: len(arrived()) >= count, message=f"{type_} at SCO-RATS")
        return arrived()[count - 1]

    async def final_status(self, statuses: Collector, message_id: str) -> dict[str, Any]:
        final = {"sent", "blocked", "rejected"}

        def found() -> list[dict[str, Any]]:
            return [
                s
                for s in statuses.bodies()
                if s["submission_id"] == message_id and s["status"] in final
            ]

        await wait_until(lambda: bool(found()), message=f"status of {message_id}")
        return found()[0]

    async def b_sends(self, recipient: str, text: str, **kwargs: Any) -> dict[str, Any]:
        message_id = await self.b.submit(share(recipient, text, officer="lo-b", **kwargs))
        return await self.final_status(self.status_b, message_id)

    async def a_decides(self, body: dict[str, Any]) -> str:
        message_id = await self.a.submit(submission("consent.decision", "SCO-RATS", body))
        status = await self.final_status(self.status_a, message_id)
        assert status["status"] == "sent", json.dumps(status)
        return str(status["envelope_id"])

    def envelopes_at_unoct(self) -> list[dict[str, Any]]:
        """Information that reached the third party (its roster updates aside)."""
        return [
            e
            for collector in self.unoct_inbound
            for m in collector.messages
            for e in parse_frame(m.body)
            if e["type"] != "liaison.assignment"
        ]


@pytest.fixture
async def scene(network: Network, vhosts: dict[str, Vhost]) -> Scene:
    s = Scene(network, vhosts)
    await s.set_up()
    return s


async def cica_shares(scene: Scene) -> str:
    await scene.a.submit(
        share(
            "SCO-RATS",
            "Courier routes observed this spring across the border regions.",
            officer="lo-a",
            attachments=[attachment(SECRET)],
            correlation_id="case-7",
        )
    )
    return str((await scene.arrival_at_b("information.share"))["id"])


async def test_onward_routes_are_quarantined_without_consent(scene: Scene) -> None:
    original = await cica_shares(scene)

    declared = await scene.b_sends(
        "UNOCT", "Passing on the partner's report.", derived_from=[original]
    )
    assert declared["status"] == "blocked", json.dumps(declared)
    assert declared["reason"] == "consent.missing"
    assert original in declared["detail"]

    # A derivative: SCO-RATS's own message built on CICA's, then a message built on that one.
    own = await scene.b_sends(
        "CICA", "Our assessment of the courier routes you sent us.", derived_from=[original]
    )
    assert own["status"] == "sent", json.dumps(own)
    derivative = await scene.b_sends(
        "UNOCT", "Our assessment, for your information.", derived_from=[own["envelope_id"]]
    )
    assert derivative["status"] == "blocked", json.dumps(derivative)
    assert derivative["reason"] == "consent.missing"

    copied = await scene.b_sends(
        "UNOCT", "Please find the attached note.", attachments=[attachment(SECRET)]
    )
    assert copied["status"] == "blocked", json.dumps(copied)
    assert copied["reason"] == "consent.undeclared_derivation"
    assert original in copied["detail"]

    await wait_until(lambda: len(scene.quarantine_b.messages) == 3, message="3 quarantined")
    headers = [m.headers or {} for m in scene.quarantine_b.messages]
    assert [h[topology.REASON_HEADER] for h in headers] == [
        "consent.missing",
        "consent.missing",
        "consent.undeclared_derivation",
    ]
    assert all("CICA" in str(h["x-gw-providers"]) for h in headers)
    assert scene.envelopes_at_unoct() == []


async def test_consent_granted_then_revoked(scene: Scene) -> None:
    original = await cica_shares(scene)
    request_id = await scene.b.submit(
        submission(
            "consent.request",
            "CICA",
            {
                "provider": "CICA",
                "scope": {"envelope_ids": [original]},
                "recipients": ["UNOCT"],
                "purpose": {"en": "Joint briefing with UNOCT."},
            },
            officer="lo-b",
        )
    )
    request_status = await scene.final_status(scene.status_b, request_id)
    await wait_until(lambda: any(e["type"] == "consent.request" for e in scene.at_a.bodies()))

    decision_id = await scene.a_decides(
        {
            "request_id": request_status["envelope_id"],
            "decision": "granted",
            "scope": {"envelope_ids": [original]},
            "recipients": ["UNOCT"],
            "expires_at": (datetime.now(UTC) + timedelta(days=1))
            .isoformat()
            .replace("+00:00", "Z"),
            "conditions": {"en": "For the joint briefing only."},
        }
    )
    await scene.arrival_at_b("consent.decision")

    allowed = await scene.b_sends(
        "UNOCT", "Briefing material from our partner.", derived_from=[original]
    )
    assert allowed["status"] == "sent", json.dumps(allowed)
    await wait_until(lambda: len(scene.envelopes_at_unoct()) == 1, message="arrival at UNOCT")
    assert scene.envelopes_at_unoct()[0]["derived_from"] == [original]

    await scene.a.submit(
        submission(
            "consent.revocation",
            "SCO-RATS",
            {"decision_id": decision_id, "reason": {"en": "The briefing was cancelled."}},
        )
    )
    await scene.arrival_at_b("consent.revocation")
    refused = await scene.b_sends(
        "UNOCT", "Briefing material, second part.", derived_from=[original]
    )
    assert refused["status"] == "blocked", json.dumps(refused)
    assert refused["reason"] == "consent.missing"
    assert len(scene.envelopes_at_unoct()) == 1


async def test_an_expired_grant_does_not_count(scene: Scene) -> None:
    original = await cica_shares(scene)
    await scene.a_decides(
        {
            "decision": "granted",
            "scope": {"correlation_id": "case-7"},
            "recipients": ["UNOCT"],
            "expires_at": (datetime.now(UTC) - timedelta(minutes=1))
            .isoformat()
            .replace("+00:00", "Z"),
        }
    )
    await scene.arrival_at_b("consent.decision")
    refused = await scene.b_sends("UNOCT", "Old material.", derived_from=[original])
    assert refused["status"] == "blocked", json.dumps(refused)
    assert scene.envelopes_at_unoct() == []


async def test_pre_approved_recipient_and_return_to_the_provider_pass(scene: Scene) -> None:
    await scene.a.submit(
        share("SCO-RATS", "Routes, cleared for UNOCT.", officer="lo-a", pre_approved=["UNOCT"])
    )
    cleared = str((await scene.arrival_at_b("information.share"))["id"])
    original = await cica_shares(scene)

    back = await scene.b_sends(
        "CICA", "Returning your report with our notes.", derived_from=[original]
    )
    assert back["status"] == "sent", json.dumps(back)
    onward = await scene.b_sends("UNOCT", "Cleared material.", derived_from=[cleared])
    assert onward["status"] == "sent", json.dumps(onward)
    await wait_until(lambda: len(scene.envelopes_at_unoct()) == 1, message="arrival at UNOCT")
    # CICA's inbox is another queue, two hops on: it needs its own wait.
    await scene.at_a.wait_for(body_has(derived_from=[original]), what="SCO-RATS's return at CICA")
