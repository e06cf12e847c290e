"""``gateway consent pending|grant|deny|revoke`` and ``gateway quarantine discard`` against
CICA's and SCO-RATS's running gateways on the real broker, UNOCT being the third party."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gateway import topology
from gateway.cli import main
from gateway.core.stamping import rfc3339
from tests.integration.conftest import Network
from tests.integration.consent_scene import ConsentScene, cica_shares
from tests.support.broker import Vhost
from tests.support.waiting import wait_until

pytestmark = pytest.mark.broker


@pytest.fixture
async def scene(network: Network, vhosts: dict[str, Vhost]) -> ConsentScene:
    s = ConsentScene(network, vhosts)
    await s.set_up()
    return s


async def cli(
    capsys: pytest.CaptureFixture[str], scene: ConsentScene, party: str, *argv: str
) -> tuple[int, Any]:
    """Run one verb with --format json; its exit code and its parsed output."""
    config = str(scene.network.parties[party].config_path)
    capsys.readouterr()
    code = await asyncio.to_thread(main, [*argv, "--config", config, "--format", "json"])
    return code, json.loads(capsys.readouterr().out)


async def test_the_cli_answers_requests_and_clears_the_quarantine(
    scene: ConsentScene, capsys: pytest.CaptureFixture[str]
) -> None:
    original = await cica_shares(scene)
    held_id, status = await scene.b_sends_onward(original)
    assert status["status"] == "blocked"
    request_id = await scene.request_consent(original)

    code, pending = await cli(capsys, scene, "CICA", "consent", "pending")
    assert code == 0
    [request] = pending
    assert request["request_id"] == request_id
    assert (request["requester"], request["officer"]) == ("SCO-RATS", "lo-b")
    assert request["purpose"] == {"en": "Joint briefing to UNOCT."}
    assert request["envelopes"] == [
        {
            "id": original,
            "type": "information.share",
            "subject": {"en": "Courier routes", "ru": "Маршруты курьеров"},
        }
    ]

    widened = ["consent", "grant", request_id, "--recipient", "UNODC", "--officer", "lo-a"]
    code, [refused] = await cli(capsys, scene, "CICA", *widened)
    assert code == 3
    assert "UNODC" in refused["detail"]

    expires = rfc3339(datetime.now(UTC) + timedelta(days=7))
    grant = ["consent", "grant", request_id, "--expires", expires, "--officer", "lo-a"]
    code, [granted] = await cli(capsys, scene, "CICA", *grant)
    assert code == 0, granted
    decision = await scene.arrival_at_b("consent.decision")
    assert decision["id"] == granted["envelope_id"]
    assert decision["body"]["expires_at"] == expires
    assert decision["originator"]["officer"] == "lo-a"
    code, pending = await cli(capsys, scene, "CICA", "consent", "pending")
    assert pending == []
    code, shown = await cli(capsys, scene, "CICA", "consent", "show", decision["id"])
    assert (shown["status"], shown["request_id"]) == ("live", request_id)
    assert shown["expires_at"] == expires

    code, out = await cli(capsys, scene, "SCO-RATS", "quarantine", "list")
    assert [row["message_id"] for row in out] == [held_id]
    code, released = await cli(capsys, scene, "SCO-RATS", "quarantine", "release", held_id)
    assert (code, released["status"]) == (0, "released")
    code, shown = await cli(capsys, scene, "SCO-RATS", "quarantine", "show", held_id)
    assert shown["submission"]["derived_from"] == [original]
    assert shown["release_attempts"][-1]["envelope_id"] == released["envelope_id"]
    await wait_until(lambda: len(scene.information_at_unoct()) == 1, message="release at UNOCT")

    revoke = ["consent", "revoke", decision["id"], "--reason", "Cancelled.", "--officer", "lo-a"]
    code, [revoked] = await cli(capsys, scene, "CICA", *revoke)
    assert code == 0, revoked
    await scene.arrival_at_b("consent.revocation")
    code, decisions = await cli(capsys, scene, "CICA", "consent", "list")
    assert [(d["decision"], d["status"]) for d in decisions] == [(decision["id"], "revoked")]

    blocked_id, status = await scene.b_sends_onward(original)
    assert status["status"] == "blocked", status
    discard = ["quarantine", "discard", blocked_id, "--reason", "Superseded."]
    code, [discarded] = await cli(capsys, scene, "SCO-RATS", *discard)
    assert (code, discarded["status"]) == (0, "discarded")
    code, out = await cli(capsys, scene, "SCO-RATS", "quarantine", "list")
    assert out == []
    assert await scene.vhosts["SCO-RATS"].depth(topology.QUARANTINE) == 0
    code, [again] = await cli(capsys, scene, "SCO-RATS", *discard)
    assert (code, again["status"]) == (3, "refused")

    actions = await scene.desk("CICA").audit()
    assert [(a.outcome, a.reason) for a in reversed(actions)] == [
        ("consent.grant", "refused"),
        ("consent.grant", "sent"),
        ("consent.revoke", "sent"),
    ]
    assert all(a.system and a.system.startswith("cli:") for a in actions)
    at_b = [(a.outcome, a.reason) for a in reversed(await scene.desk("SCO-RATS").audit())]
    assert at_b == [
        ("consent.request", "sent"),
        ("quarantine.release", "released"),
        ("quarantine.discard", "discarded"),
        ("quarantine.discard", "refused"),
    ]


async def test_a_denial_answers_the_request_and_grants_nothing(
    scene: ConsentScene, capsys: pytest.CaptureFixture[str]
) -> None:
    original = await cica_shares(scene)
    request_id = await scene.request_consent(original)
    deny = ["consent", "deny", request_id, "--reason", "Not yet.", "--officer", "lo-a"]
    code, [denied] = await cli(capsys, scene, "CICA", *deny)
    assert code == 0, denied
    decision = await scene.arrival_at_b("consent.decision")
    assert decision["body"]["decision"] == "denied"
    assert decision["body"]["request_id"] == request_id
    code, pending = await cli(capsys, scene, "CICA", "consent", "pending")
    assert pending == []
    _, status = await scene.b_sends_onward(original)
    assert status["status"] == "blocked"
