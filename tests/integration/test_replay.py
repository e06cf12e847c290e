"""Replay, release and the operator's consent commands on the real broker (issues 5 and 6).

The commands run through ``gateway.cli.main`` in a worker thread (they run their own event
loop), against gateways running in the test's loop.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import aio_pika
import aiormq
import pytest

from gateway import topology
from gateway.archive import ArchiveStore, Record, SearchFilter
from gateway.cli import main
from gateway.control_client import ControlClient
from gateway.core.control_requests import redeliver_request, release_request
from gateway.core.stamping import rfc3339
from gateway.service import Gateway
from gateway.submission_client import user_from_url
from gateway.tls import local_endpoint
from tests.integration.conftest import Network
from tests.support.broker import Collector, Vhost
from tests.support.parties import assignment, share, submission
from tests.support.waiting import wait_until

pytestmark = pytest.mark.broker


async def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    capsys.readouterr()
    code = await asyncio.to_thread(main, list(argv))
    return code, capsys.readouterr().out


def gateway_of(network: Network, party: str) -> Gateway:
    gateway = network.parties[party].gateway
    assert gateway is not None
    return gateway


def config_of(network: Network, party: str) -> str:
    return str(network.parties[party].config_path)


async def accredit(network: Network, party: str, recipient: str, officer: str) -> None:
    desk = await network.desk(party)
    await desk.submit(submission("liaison.assignment", recipient, assignment(officer)))


async def records(archive: ArchiveStore, **criteria: Any) -> list[Record]:
    return await archive.search(SearchFilter(**criteria))


def with_status(statuses: Collector, status: str, submission_id: str) -> list[dict[str, Any]]:
    return [
        s
        for s in statuses.bodies()
        if s["status"] == status and s["submission_id"] == submission_id
    ]


@pytest.fixture(autouse=True)
async def _empty_control_queues(vhosts: dict[str, Vhost]) -> None:
    # gw.control is not one of the queues the shared fixture purges between tests.
    for vhost in vhosts.values():
        await vhost.purge([topology.CONTROL])


async def test_a_replay_of_a_time_window_redelivers_exactly_those_messages(
    network: Network, vhosts: dict[str, Vhost], capsys: pytest.CaptureFixture[str]
) -> None:
    inbox = await vhosts["SCO-RATS"].bind_collector(topology.DELIVER, "CICA.information.share")
    await network.start("CICA")
    await network.start("SCO-RATS")
    await accredit(network, "CICA", "SCO-RATS", "lo-0001")
    desk = await network.desk("CICA")

    async def send(count: int, label: str) -> None:
        expected = len(inbox.messages) + count
        for i in range(count):
            await desk.submit(share("SCO-RATS", f"{label} report {i}."))
        await wait_until(lambda: len(inbox.messages) == expected, message=f"{label} deliveries")

    await send(2, "Before")
    since = datetime.now(UTC)
    await send(3, "Inside")
    until = datetime.now(UTC)
    await send(2, "After")
    window = {m.message_id: m.body for m in inbox.messages[2:5]}

    code, out = await cli(
        capsys,
        "replay",
        "--config",
        config_of(network, "SCO-RATS"),
        "--since",
        rfc3339(since),
        "--until",
        rfc3339(until),
        "--target",
        "deliver",
    )
    assert code == 0, out
    assert "summary: replayed 3" in out
    await wait_until(lambda: len(inbox.messages) == 10, message="three re-deliveries")
    replayed = inbox.messages[7:]
    assert {m.message_id: m.body for m in replayed} == window
    archive = gateway_of(network, "SCO-RATS").archive
    for message in replayed:
        seq = int((message.headers or {})[topology.REPLAY_OF_HEADER])  # type: ignore[arg-type]
        original = await archive.get(seq)
        assert original is not None
        assert (original.kind, original.envelope_id) == ("envelope.in", message.message_id)
    assert all(topology.REPLAY_OF_HEADER not in (m.headers or {}) for m in inbox.messages[:7])
    replays = await records(archive, kinds=["replay"])
    assert sorted(r.outcome for r in replays) == ["replayed"] * 3
    assert {r.envelope_id for r in replays} == set(window)


async def test_a_dry_run_lists_the_plan_and_changes_nothing(
    network: Network, vhosts: dict[str, Vhost], capsys: pytest.CaptureFixture[str]
) -> None:
    inbox = await vhosts["SCO-RATS"].bind_collector(topology.DELIVER, "CICA.information.share")
    await network.start("CICA")
    await network.start("SCO-RATS")
    await accredit(network, "CICA", "SCO-RATS", "lo-0001")
    desk = await network.desk("CICA")
    await desk.submit(share("SCO-RATS", "First."))
    await desk.submit(share("SCO-RATS", "Second."))
    await wait_until(lambda: len(inbox.messages) == 2, message="two deliveries")
    first, second = (m.message_id or "" for m in inbox.messages)
    archive = gateway_of(network, "SCO-RATS").archive
    head = await archive.head()
    config = config_of(network, "SCO-RATS")

    dry_run = ("replay", "--config", config, "--id", first, "--target", "deliver", "--dry-run")
    code, out = await cli(capsys, *dry_run)
    assert code == 0, out
    assert "would replay to deliver: seq" in out
    assert first in out
    assert "dry run: nothing was sent" in out
    code, out = await cli(capsys, *dry_run, "--format", "jsonl")
    [row] = [json.loads(line) for line in out.splitlines()]
    assert (code, row["action"], row["target"], row["id"]) == (0, "replay", "deliver", first)
    assert await archive.head() == head
    code, out = await cli(capsys, "replay", "--config", config, "--target", "deliver")
    assert code == 2
    code, out = await cli(
        capsys, "replay", "--config", config, "--id", "no-such-id", "--target", "deliver"
    )
    assert code == 1
    assert "summary: nothing to do" in out
    assert await archive.head() == head

    # Had the dry run sent anything, it would come first on the same control queue.
    code, out = await cli(
        capsys,
        "replay",
        "--config",
        config,
        "--id",
        second,
        "--target",
        "deliver",
        "--format",
        "json",
    )
    assert code == 0, out
    [row] = json.loads(out)
    assert (row["id"], row["answer"]["status"]) == (second, "replayed")
    await wait_until(lambda: len(inbox.messages) == 3, message="the real replay")
    assert [m.message_id for m in inbox.messages[2:]] == [second]
    assert len(await records(archive, kinds=["replay"])) == 1


async def third_party_network(network: Network, vhosts: dict[str, Vhost]) -> dict[str, Any]:
    """CICA shares an envelope with SCO-RATS, whose officer lo-b is known to CICA and UNOCT."""
    inbox_b = await vhosts["SCO-RATS"].bind_collector(topology.DELIVER, "CICA.#")
    inbox_c = await vhosts["UNOCT"].bind_collector(topology.DELIVER, "SCO-RATS.information.#")
    statuses_b = await vhosts["SCO-RATS"].bind_collector(topology.STATUS)
    for party in ("CICA", "SCO-RATS", "UNOCT"):
        await network.start(party)
    await accredit(network, "CICA", "SCO-RATS", "lo-a")
    await accredit(network, "SCO-RATS", "CICA", "lo-b")
    await accredit(network, "SCO-RATS", "UNOCT", "lo-b")
    desk_a = await network.desk("CICA")
    await desk_a.submit(share("SCO-RATS", "Movements of a listed group.", officer="lo-a"))

    def shared() -> list[dict[str, Any]]:
        return [b for b in inbox_b.bodies() if b["type"] == "information.share"]

    await wait_until(lambda: bool(shared()), message="CICA's envelope at SCO-RATS")
    return {
        "envelope_id": shared()[0]["id"],
        "inbox_b": inbox_b,
        "inbox_c": inbox_c,
        "statuses_b": statuses_b,
        "desk_a": desk_a,
        "desk_b": await network.desk("SCO-RATS"),
    }


async def consent_decision(desk_a: Any, inbox_b: Collector, envelope_id: str) -> str:
    body = {
        "decision": "granted",
        "scope": {"envelope_ids": [envelope_id]},
        "recipients": ["UNOCT"],
    }
    await desk_a.submit(submission("consent.decision", "SCO-RATS", body))

    def decisions() -> list[dict[str, Any]]:
        return [b for b in inbox_b.bodies() if b["type"] == "consent.decision"]

    await wait_until(lambda: bool(decisions()), message="the consent decision at SCO-RATS")
    decision_id: str = decisions()[0]["id"]
    return decision_id


async def test_a_quarantined_submission_released_after_a_consent_grant_goes_through(
    network: Network, vhosts: dict[str, Vhost], capsys: pytest.CaptureFixture[str]
) -> None:
    net = await third_party_network(network, vhosts)
    envelope_id: str = net["envelope_id"]
    inbox_a = await vhosts["CICA"].bind_collector(topology.DELIVER, "SCO-RATS.consent.request")
    config = config_of(network, "SCO-RATS")
    onward = share("UNOCT", "Briefing built on CICA's report.", officer="lo-b")
    onward["derived_from"] = [envelope_id]
    message_id = await net["desk_b"].submit(onward)
    await wait_until(lambda: bool(with_status(net["statuses_b"], "blocked", message_id)))

    code, out = await cli(capsys, "quarantine", "list", "--config", config)
    assert code == 0
    assert message_id in out
    assert "consent.missing" in out

    code, out = await cli(capsys, "quarantine", "release", message_id, "--config", config)
    assert code == 1
    assert "still quarantined: consent.missing" in out

    code, out = await cli(
        capsys,
        "consent",
        "request",
        "--config",
        config,
        "--provider",
        "CICA",
        "--recipient",
        "UNOCT",
        "--envelope",
        envelope_id,
        "--purpose",
        "Joint briefing to UNOCT.",
        "--officer",
        "lo-b",
    )
    assert code == 0, out
    await wait_until(lambda: len(inbox_a.messages) == 1, message="the consent request at CICA")
    request = inbox_a.bodies()[0]
    assert request["originator"]["system"] == "operator"
    assert request["body"]["scope"] == {"envelope_ids": [envelope_id]}

    decision_id = await consent_decision(net["desk_a"], net["inbox_b"], envelope_id)
    code, out = await cli(capsys, "consent", "list", "--config", config)
    assert code == 0
    [line] = [line for line in out.splitlines() if decision_id in line]
    assert line.split()[1:4] == ["CICA", "received", "live"]

    code, out = await cli(capsys, "quarantine", "release", message_id, "--config", config)
    assert code == 0, out
    assert out.startswith("released:")
    inbox_c: Collector = net["inbox_c"]
    await wait_until(lambda: len(inbox_c.messages) == 1, message="the release at UNOCT")
    forwarded = inbox_c.bodies()[0]
    assert forwarded["derived_from"] == [envelope_id]
    # Toward a third party the submission_id is the gateway's, never the desk's message_id.
    assert forwarded["originator"]["submission_id"] == forwarded["id"]
    assert forwarded["id"] in out

    code, out = await cli(capsys, "quarantine", "list", "--config", config)
    assert message_id not in out
    code, out = await cli(capsys, "quarantine", "show", message_id, "--config", config)
    assert code == 0
    assert "release attempts: 2" in out
    assert forwarded["id"] in out
    code, out = await cli(capsys, "archive", "verify", "--config", config)
    assert code == 0, out


async def test_a_replay_to_the_peer_after_consent_was_revoked_is_quarantined(
    network: Network, vhosts: dict[str, Vhost], capsys: pytest.CaptureFixture[str]
) -> None:
    net = await third_party_network(network, vhosts)
    envelope_id: str = net["envelope_id"]
    quarantine = await vhosts["SCO-RATS"].collect(topology.QUARANTINE)
    decision_id = await consent_decision(net["desk_a"], net["inbox_b"], envelope_id)
    onward = share("UNOCT", "Briefing built on CICA's report.", officer="lo-b")
    onward["derived_from"] = [envelope_id]
    await net["desk_b"].submit(onward)
    inbox_c: Collector = net["inbox_c"]
    await wait_until(lambda: len(inbox_c.messages) == 1, message="the consented send")
    sent_id: str = inbox_c.bodies()[0]["id"]

    await net["desk_a"].submit(
        submission("consent.revocation", "SCO-RATS", {"decision_id": decision_id})
    )
    await wait_until(
        lambda: any(b["type"] == "consent.revocation" for b in net["inbox_b"].bodies()),
        message="the revocation at SCO-RATS",
    )
    config = config_of(network, "SCO-RATS")
    code, out = await cli(capsys, "consent", "show", decision_id, "--config", config)
    assert code == 0
    assert "status:      revoked" in out

    code, out = await cli(capsys, "replay", "--config", config, "--id", sent_id, "--target", "peer")
    assert code == 0, out
    assert "blocked" in out
    assert "summary: blocked 1" in out
    await wait_until(lambda: len(quarantine.messages) == 1, message="the quarantine copy")
    held = quarantine.messages[0]
    headers = held.headers or {}
    assert headers[topology.REASON_HEADER] == "consent.missing"
    assert envelope_id in str(headers[topology.DETAIL_HEADER])
    assert json.loads(held.body)["id"] == sent_id
    [replay] = await records(gateway_of(network, "SCO-RATS").archive, kinds=["replay"])
    assert (replay.outcome, replay.reason, replay.envelope_id) == (
        "quarantined",
        "consent.missing",
        sent_id,
    )
    # The archived quarantine outcome of the replay proves nothing more went to UNOCT.
    assert len(inbox_c.messages) == 1


async def test_an_envelope_resent_to_the_peer_is_delivered_once_and_the_receipt_resent(
    network: Network, vhosts: dict[str, Vhost], capsys: pytest.CaptureFixture[str]
) -> None:
    inbox = await vhosts["SCO-RATS"].bind_collector(topology.DELIVER, "CICA.information.share")
    statuses = await vhosts["CICA"].bind_collector(topology.STATUS)
    await network.start("CICA")
    await network.start("SCO-RATS")
    await accredit(network, "CICA", "SCO-RATS", "lo-0001")
    desk = await network.desk("CICA")
    message_id = await desk.submit(share("SCO-RATS", "Sent once, replayed once."))
    await wait_until(lambda: bool(with_status(statuses, "delivered", message_id)))
    envelope_id = inbox.bodies()[0]["id"]
    cica = gateway_of(network, "CICA").archive
    sco = gateway_of(network, "SCO-RATS").archive

    code, out = await cli(
        capsys,
        "replay",
        "--config",
        config_of(network, "CICA"),
        "--id",
        envelope_id,
        "--target",
        "peer",
    )
    assert code == 0, out
    assert "summary: replayed 1" in out

    async def receipts_for_envelope() -> list[dict[str, Any]]:
        found = [json.loads(r.payload) for r in await records(cica, kinds=["receipt.in"])]
        return [r for r in found if r["body"]["envelope_id"] == envelope_id]

    async def receipt_twice() -> bool:
        return len(await receipts_for_envelope()) == 2

    await wait_until(receipt_twice, message="the receipt sent again")
    first, again = await receipts_for_envelope()
    assert first == again
    duplicates = await records(sco, kinds=["envelope.in"], outcomes=["duplicate"])
    assert [r.envelope_id for r in duplicates] == [envelope_id]
    assert len(inbox.messages) == 1


async def test_a_rejected_submission_reprocessed_after_the_fix_is_forwarded_once(
    network: Network, vhosts: dict[str, Vhost], capsys: pytest.CaptureFixture[str]
) -> None:
    inbox = await vhosts["SCO-RATS"].bind_collector(topology.DELIVER, "CICA.information.share")
    statuses = await vhosts["CICA"].bind_collector(topology.STATUS)
    await network.start("CICA")
    await network.start("SCO-RATS")
    desk = await network.desk("CICA")
    message_id = await desk.submit(share("SCO-RATS", "Before accreditation.", officer="lo-late"))
    await wait_until(lambda: bool(with_status(statuses, "rejected", message_id)))
    await accredit(network, "CICA", "SCO-RATS", "lo-late")
    config = config_of(network, "CICA")

    code, out = await cli(
        capsys, "replay", "--config", config, "--id", message_id, "--target", "reprocess"
    )
    assert code == 0, out
    await wait_until(lambda: len(inbox.messages) == 1, message="the re-processed submission")
    envelope = inbox.bodies()[0]
    assert envelope["originator"]["submission_id"] == message_id

    # Released twice more (the CLI itself would skip it): the same envelope, not a new one.
    archive = gateway_of(network, "CICA").archive
    [rejected] = await records(archive, kinds=["submission"], message_ids=[message_id])
    async with ControlClient(local_endpoint(gateway_of(network, "CICA").config)) as client:
        requests = [release_request(str(uuid.uuid4()), rejected.seq) for _ in range(2)]
        for request in requests:
            await client.send(request)
        answers = await client.wait([r.request_id for r in requests], timeout=20)
    assert [a["envelope_id"] for a in answers.values() if a] == [envelope["id"]] * 2
    sent = await records(archive, kinds=["envelope.out"], message_ids=[message_id])
    assert [r.envelope_id for r in sent] == [envelope["id"]]
    code, out = await cli(
        capsys,
        "replay",
        "--config",
        config,
        "--id",
        message_id,
        "--target",
        "reprocess",
        "--dry-run",
    )
    assert "already released" in out
    assert len(inbox.messages) == 1


async def test_the_rate_limit_spaces_the_requests(
    network: Network, vhosts: dict[str, Vhost], capsys: pytest.CaptureFixture[str]
) -> None:
    inbox = await vhosts["SCO-RATS"].bind_collector(topology.DELIVER, "CICA.information.share")
    await network.start("CICA")
    await network.start("SCO-RATS")
    await accredit(network, "CICA", "SCO-RATS", "lo-0001")
    desk = await network.desk("CICA")
    for i in range(6):
        await desk.submit(share("SCO-RATS", f"Paced report {i}."))
    await wait_until(lambda: len(inbox.messages) == 6, message="six deliveries")
    ids = [arg for m in inbox.messages for arg in ("--id", m.message_id or "")]
    rate = 10.0

    started = time.monotonic()
    code, out = await cli(
        capsys,
        "replay",
        "--config",
        config_of(network, "SCO-RATS"),
        *ids,
        "--target",
        "deliver",
        "--rate",
        str(rate),
    )
    elapsed = time.monotonic() - started
    assert code == 0, out
    assert "summary: replayed 6" in out
    assert elapsed >= (6 - 1) / rate
    await wait_until(lambda: len(inbox.messages) == 12, message="six re-deliveries")


async def test_only_the_gateway_user_can_give_control_requests(
    network: Network, vhosts: dict[str, Vhost]
) -> None:
    rejected = await vhosts["SCO-RATS"].collect(topology.REJECTED)
    await network.start("SCO-RATS")
    desk = await network.desk("SCO-RATS")
    assert desk.connection is not None
    channel = await desk.connection.channel(publisher_confirms=True)
    control = await channel.get_exchange(topology.CONTROL, ensure=False)
    request = release_request(str(uuid.uuid4()), 1)
    with pytest.raises(aiormq.exceptions.ChannelAccessRefused):
        await control.publish(
            aio_pika.Message(request.to_json(), message_id=request.request_id, user_id=desk.user),
            routing_key="release",
        )

    # The broker operator (guest) may write gw.control, but the gateway answers only its own user.
    admin = vhosts["SCO-RATS"].channel
    assert admin is not None
    exchange = await admin.get_exchange(topology.CONTROL, ensure=False)
    await exchange.publish(
        aio_pika.Message(request.to_json(), message_id=request.request_id, user_id="guest"),
        routing_key="release",
    )
    await rejected.wait_for(lambda m: True, what="the refused request")
    assert rejected.reasons() == ["control.unauthorized"]
    archive = gateway_of(network, "SCO-RATS").archive
    [refused] = await records(archive, kinds=["control"])
    assert (refused.outcome, refused.system) == ("rejected", "guest")


async def test_a_malformed_request_is_answered_and_archived(
    network: Network, vhosts: dict[str, Vhost]
) -> None:
    statuses = await vhosts["SCO-RATS"].bind_collector(topology.STATUS, "*.rejected.#")
    rejected = await vhosts["SCO-RATS"].collect(topology.REJECTED)
    sco = await network.start("SCO-RATS")
    local = local_endpoint(sco.config)
    connection = await aio_pika.connect(local.url, ssl_context=local.ssl_context)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange(topology.CONTROL, ensure=False)
        user = user_from_url(local.url)
        for body in (
            b'{"request_id": "r-bad", "action": "explode"}',
            b'{"request_id": "r-none", "action": "replay", "seq": 999999, "target": "deliver"}',
        ):
            await exchange.publish(aio_pika.Message(body, user_id=user), routing_key="replay")
        await wait_until(lambda: len(statuses.messages) == 2, message="two answers")
    answers = {m.correlation_id: json.loads(m.body) for m in statuses.messages}
    assert answers["r-bad"]["reason"] == "control.malformed"
    assert answers["r-none"]["reason"] == "replay.unknown_record"
    await rejected.wait_for(lambda m: True, what="the malformed request's rejection")
    assert rejected.reasons() == ["control.malformed"]
    archive = gateway_of(network, "SCO-RATS").archive
    assert [r.reason for r in await records(archive, kinds=["control"])] == ["control.malformed"]
    [replay] = await records(archive, kinds=["replay"])
    assert (replay.outcome, replay.refers_to) == ("rejected", 999999)


async def test_a_request_for_many_records_redelivers_each_once_and_answers_each_seq(
    network: Network, vhosts: dict[str, Vhost]
) -> None:
    inbox = await vhosts["SCO-RATS"].bind_collector(topology.DELIVER, "CICA.information.share")
    await network.start("CICA")
    sco = await network.start("SCO-RATS")
    await accredit(network, "CICA", "SCO-RATS", "lo-0001")
    desk = await network.desk("CICA")
    for i in range(2):
        await desk.submit(share("SCO-RATS", f"Batched report {i}."))
    await wait_until(lambda: len(inbox.messages) == 2, message="two deliveries")
    archive = gateway_of(network, "SCO-RATS").archive
    first, second = await records(
        archive, kinds=["envelope.in"], types=["information.share"], outcomes=["delivered"]
    )
    not_inbound = next(r for r in await records(archive) if r.kind != "envelope.in")
    seqs = [first.seq, 999_999, not_inbound.seq, second.seq]

    async with ControlClient(local_endpoint(sco.config)) as client:
        request = redeliver_request(str(uuid.uuid4()), seqs)
        await client.send(request)
        answer = (await client.wait([request.request_id], timeout=20))[request.request_id]

    assert answer is not None
    assert answer["status"] == "replayed"
    assert [(r["seq"], r["status"], r["reason"]) for r in answer["results"]] == [
        (first.seq, "replayed", None),
        (999_999, "rejected", "replay.unknown_record"),
        (not_inbound.seq, "rejected", "replay.not_replayable"),
        (second.seq, "replayed", None),
    ]
    # The re-deliveries were committed with the answer, so they stand in the queue before a
    # share submitted now: once that sentinel is in, nothing more of the request can come.
    await desk.submit(share("SCO-RATS", "Sentinel report."))

    def sentinel_at() -> int | None:
        found = [i for i, m in enumerate(inbox.messages) if b"Sentinel report." in m.body]
        return found[0] if found else None

    await wait_until(lambda: sentinel_at() is not None, message="the sentinel share")
    again = inbox.messages[2 : sentinel_at()]
    assert [m.message_id for m in again] == [first.envelope_id, second.envelope_id]
    assert [(m.headers or {})[topology.REPLAY_OF_HEADER] for m in again] == [
        str(first.seq),
        str(second.seq),
    ]
    replays = await records(archive, kinds=["replay"])
    assert [(r.refers_to, r.outcome) for r in replays] == [
        (first.seq, "replayed"),
        (999_999, "rejected"),
        (not_inbound.seq, "rejected"),
        (second.seq, "replayed"),
    ]
    assert {r.message_id for r in replays} == {request.request_id}
