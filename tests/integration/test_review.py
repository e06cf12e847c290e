"""The release review on the real broker across three vhosts: SCO-RATS (party-b) holds what it
sends UNOCT (party-c) until another of its officers releases or refuses it from the CLI.

The commands run through ``gateway.cli.main`` in a worker thread (they run their own event
loop), against gateways running in the test's loop.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gateway.archive import SearchFilter
from tests.gateway.core.test_review import PROVIDED, WEAK
from tests.integration.conftest import Network
from tests.integration.test_replay import cli, config_of, gateway_of
from tests.integration.test_third_party_rule import Scene
from tests.support.broker import Vhost
from tests.support.parties import assignment, share, submission
from tests.support.waiting import wait_until

pytestmark = pytest.mark.broker

FRESH = "Our own schedule of the spring workshops."


async def review_scene(network: Network, vhosts: dict[str, Vhost]) -> Scene:
    """Scene's set-up and a second SCO-RATS officer, lo-b2."""
    scene = Scene(network, vhosts)
    await scene.set_up()
    await scene.b.submit(submission("liaison.assignment", "CICA", assignment("lo-b2")))
    await wait_until(lambda: len(scene.at_a.messages) == 2, message="lo-b2 at CICA")
    return scene


async def cica_provides(scene: Scene) -> str:
    await scene.a.submit(share("SCO-RATS", PROVIDED, officer="lo-a"))
    return str((await scene.arrival_at_b("information.share"))["id"])


async def held(scene: Scene, text: str) -> tuple[str, dict[str, Any]]:
    message_id = await scene.b.submit(share("UNOCT", text, officer="lo-b"))

    def found() -> list[dict[str, Any]]:
        return [
            s
            for s in scene.status_b.bodies()
            if s["submission_id"] == message_id and s["status"] in ("held", "sent", "blocked")
        ]

    await wait_until(lambda: bool(found()), message=f"status of {message_id}")
    return message_id, found()[0]


def sent_for(scene: Scene, message_id: str) -> list[dict[str, Any]]:
    return [
        s
        for s in scene.status_b.bodies()
        if s["submission_id"] == message_id and s["status"] == "sent"
    ]


@pytest.fixture
async def on_match(network: Network, vhosts: dict[str, Vhost]) -> Scene:
    return await review_scene(network, vhosts)


async def test_on_match_holds_and_another_officer_releases(
    on_match: Scene, network: Network, capsys: pytest.CaptureFixture[str]
) -> None:
    scene, config = on_match, config_of(network, "SCO-RATS")
    provided = await cica_provides(scene)
    message_id, status = await held(scene, WEAK)
    assert (status["status"], status["reason"]) == ("held", "review.resemblance"), status
    assert provided in status["detail"]

    code, out = await cli(capsys, "review", "list", "--config", config, "--format", "json")
    [item] = json.loads(out)
    assert code == 0
    assert (item["message_id"], item["officer"]) == (message_id, "lo-b")
    assert [r["envelope_id"] for r in item["resembles"]] == [provided]
    assert 0 < item["resembles"][0]["score"] < 0.4
    code, out = await cli(capsys, "review", "show", message_id, "--config", config)
    assert code == 0
    assert PROVIDED in out  # the provided envelope beside the submission
    assert WEAK in out

    code, out = await cli(
        capsys, "review", "release", message_id, "--config", config, "--officer", "lo-b"
    )
    assert code == 1
    assert "review.same_officer" in out
    assert sent_for(scene, message_id) == []

    code, out = await cli(
        capsys, "review", "release", message_id, "--config", config, "--officer", "lo-b2"
    )
    assert code == 0, out
    await wait_until(lambda: len(scene.envelopes_at_unoct()) == 1, message="arrival at UNOCT")
    [arrived] = scene.envelopes_at_unoct()
    assert arrived["body"]["text"]["en"] == WEAK
    assert arrived["originator"]["submission_id"] == arrived["id"]  # not the desk's message_id
    await wait_until(lambda: bool(sent_for(scene, message_id)), message="sent status")
    [sent] = sent_for(scene, message_id)
    assert sent["envelope_id"] == arrived["id"]
    # The refused release request did not tell the desk its submission was over.
    statuses = [s["status"] for s in scene.status_b.bodies() if s["submission_id"] == message_id]
    assert statuses == ["held", "sent"]

    code, out = await cli(capsys, "review", "list", "--config", config, "--format", "json")
    assert json.loads(out) == []
    archive = gateway_of(network, "SCO-RATS").archive
    steps = await archive.search(SearchFilter(kinds=["review"]))
    assert [(r.outcome, r.reason) for r in steps] == [
        ("rejected", "review.same_officer"),
        ("released", None),
    ]
    assert "released by lo-b2" in str(steps[1].detail)


async def test_a_refused_submission_never_leaves(
    on_match: Scene, network: Network, capsys: pytest.CaptureFixture[str]
) -> None:
    scene, config = on_match, config_of(network, "SCO-RATS")
    await cica_provides(scene)
    message_id, status = await held(scene, WEAK)
    assert status["status"] == "held"
    code, out = await cli(
        capsys,
        "review",
        "refuse",
        message_id,
        "--config",
        config,
        "--officer",
        "lo-b2",
        "--reason",
        "CICA's information; ask for consent first.",
    )
    assert code == 0, out
    code, out = await cli(
        capsys, "review", "release", message_id, "--config", config, "--officer", "lo-b2"
    )
    assert code == 1  # refused for good: it is no longer held
    # Sentinel: SCO-RATS's own fresh information is not held and arrives.
    fresh = await scene.b_sends("UNOCT", FRESH)
    assert fresh["status"] == "sent", json.dumps(fresh)
    await wait_until(lambda: len(scene.envelopes_at_unoct()) == 1, message="sentinel")
    assert [e["id"] for e in scene.envelopes_at_unoct()] == [fresh["envelope_id"]]
    refusals = [
        s
        for s in scene.status_b.bodies()
        if s["submission_id"] == message_id and s["status"] == "rejected"
    ]
    assert refusals[0]["reason"] == "review.refused"
    assert "ask for consent first" in refusals[0]["detail"]


async def test_consented_content_is_not_held(on_match: Scene, network: Network) -> None:
    scene = on_match
    provided = await cica_provides(scene)
    await scene.a_decides(
        {
            "decision": "granted",
            "scope": {"envelope_ids": [provided]},
            "recipients": ["UNOCT"],
            "expires_at": (datetime.now(UTC) + timedelta(days=1)).isoformat(),
        }
    )
    await scene.arrival_at_b("consent.decision")
    _, status = await held(scene, WEAK)
    assert status["status"] == "sent", status
    await wait_until(lambda: len(scene.envelopes_at_unoct()) == 1, message="arrival at UNOCT")


async def test_always_holds_everything_to_the_third_party(
    network: Network, vhosts: dict[str, Vhost], capsys: pytest.CaptureFixture[str]
) -> None:
    scene = await review_scene(network, vhosts)
    # Restarted with review "always" once its officers are announced (their assignments to
    # UNOCT would wait for review too).
    await network.parties["SCO-RATS"].stop()
    config = str(network.configure("SCO-RATS", review={"UNOCT": "always"}))
    await network.parties["SCO-RATS"].start()
    held_id, status = await held(scene, FRESH)
    assert (status["status"], status["reason"]) == ("held", "review.always"), status
    # Sentinel: the same kind of message to the partner is not held and arrives there.
    to_partner = await scene.b_sends("CICA", FRESH)
    assert to_partner["status"] == "sent"
    await wait_until(
        lambda: any(e["id"] == to_partner["envelope_id"] for e in scene.at_a.bodies()),
        message="sentinel at CICA",
    )
    assert scene.envelopes_at_unoct() == []
    code, out = await cli(capsys, "review", "list", "--config", config)
    assert code == 0
    assert "review.always" in out
    assert "(1 held)" in out

    # Held submissions live in the archive: they survive a restart and are released after it.
    await network.parties["SCO-RATS"].stop()
    await network.parties["SCO-RATS"].start()
    code, out = await cli(
        capsys, "review", "release", "--config", config, "--officer", "lo-b2", held_id
    )
    assert code == 0, out
    await wait_until(lambda: len(scene.envelopes_at_unoct()) == 1, message="arrival at UNOCT")
    assert scene.envelopes_at_unoct()[0]["body"]["text"]["en"] == FRESH
