"""Trust between the Parties on the real RabbitMQ (issue 4): signatures, keys, replay, roster,
receipts.

Hand-crafted frames reach SCO-RATS's gw.inbound the way CICA's gateway sends them: as the
write-only peer user ``cica-peer``; receipts reach CICA as ``sco-rats-peer``.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aio_pika
import pytest

from contracts import encode_frame
from gateway import topology
from gateway.archive import Record, SearchFilter
from gateway.core.keys import SigningKey, generate_key_pair, load_signing_key
from gateway.core.signing import envelope_digest, sign_envelope
from gateway.core.stamping import new_envelope_id, rfc3339
from gateway.service import Gateway
from tests.integration.conftest import Network
from tests.support.broker import Collector, Vhost, body_has
from tests.support.parties import (
    HOST,
    PARTIES,
    RunningParty,
    assignment,
    share,
    submission,
    write_config,
)
from tests.support.waiting import wait_until

pytestmark = pytest.mark.broker

Send = Callable[..., Awaitable[None]]


def configure(network: Network, party: str, **options: Any) -> None:
    """Like ``network.configure``, with the extra key options of ``write_config``."""
    path = write_config(network.directory, party, network.keys, **options)
    network.parties[party] = RunningParty(party, path)


def signing_key(keys: Path, party: str) -> SigningKey:
    return load_signing_key(keys / f"{party}-test-1.key")


def running(network: Network, party: str) -> Gateway:
    gateway = network.parties[party].gateway
    assert gateway is not None
    return gateway


@asynccontextmanager
async def peer(user: str, at_party: str) -> AsyncIterator[Send]:
    """Publish frames into ``at_party``'s gw.inbound.<party> as the peer user ``user``."""
    connection = await aio_pika.connect(f"amqp://{user}:{user}@{HOST}/{PARTIES[at_party][0]}")
    sender = next(party for party, (_, slug, _) in PARTIES.items() if user == f"{slug}-peer")
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        inbound = await channel.get_exchange(topology.inbound_from(sender), ensure=False)

        async def send(
            *envelopes: Mapping[str, Any],
            raw: bytes | None = None,
            content_type: str = topology.FRAME_CONTENT_TYPE,
        ) -> None:
            body = raw if raw is not None else encode_frame(envelopes)
            await inbound.publish(
                aio_pika.Message(
                    body,
                    message_id=new_envelope_id(),
                    content_type=content_type,
                    delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                ),
                routing_key="",
            )

        yield send


def envelope(
    type_: str = "information.share",
    body: dict[str, Any] | None = None,
    *,
    officer: str | None = "lo-0001",
    party: str = "CICA",
    recipient: str = "SCO-RATS",
    created_at: datetime | None = None,
) -> dict[str, Any]:
    """An unsigned envelope as CICA's gateway would stamp it."""
    return {
        "id": new_envelope_id(),
        "type": type_,
        "version": 1,
        "originator": {
            "party": party,
            "system": "case-desk",
            "officer": officer,
            "submission_id": uuid.uuid4().hex,
        },
        "recipient": recipient,
        "created_at": rfc3339(created_at or datetime.now(UTC)),
        "correlation_id": None,
        "in_reply_to": None,
        "derived_from": [],
        "handling": {"onward": "consent-required", "pre_approved": []},
        "body": body if body is not None else share(recipient, "A crafted report.")["body"],
    }


def accreditation(officer: str, party: str = "CICA", recipient: str = "SCO-RATS") -> dict[str, Any]:
    return envelope(
        "liaison.assignment", assignment(officer), officer=None, party=party, recipient=recipient
    )


def receipt_for(
    sent: Mapping[str, Any], *, digest: str | None = None, party: str = "SCO-RATS"
) -> dict[str, Any]:
    body = {
        "envelope_id": sent["id"],
        "envelope_sha256": digest or envelope_digest(sent),
        "status": "delivered",
        "received_at": rfc3339(datetime.now(UTC)),
    }
    receipt = envelope("receipt", body, officer=None, party=party, recipient="CICA")
    receipt["originator"]["system"] = "gateway"
    return receipt


async def records(
    gateway: Gateway, kind: str, *, envelope_id: str | None = None, outcome: str | None = None
) -> list[Record]:
    return await gateway.archive.search(
        SearchFilter(
            kinds=(kind,),
            envelope_ids=(envelope_id,) if envelope_id else (),
            outcomes=(outcome,) if outcome else (),
        )
    )


def statuses_of(statuses: Collector, status: str) -> list[dict[str, Any]]:
    return [s for s in statuses.bodies() if s["status"] == status]


def reason_of(case: str) -> str:
    return case.split("/")[0]


async def accredit(network: Network, party: str, recipient: str, officer: str) -> None:
    desk = await network.desk(party)
    await desk.submit(submission("liaison.assignment", recipient, assignment(officer)))


async def test_every_unprovable_envelope_is_rejected_with_its_own_reason(
    network: Network, vhosts: dict[str, Vhost], tmp_path: Path
) -> None:
    keys = network.keys
    cica, unoct = signing_key(keys, "CICA"), signing_key(keys, "UNOCT")
    rogue_dir = tmp_path / "rogue"
    generate_key_pair("CICA", rogue_dir, key_id="CICA-test-1")
    generate_key_pair("CICA", rogue_dir, key_id="CICA-rogue-1")
    expired_at = datetime.now(UTC) - timedelta(days=10)
    _, expired_pub = generate_key_pair(
        "CICA", rogue_dir, key_id="CICA-expired-1", valid_from=expired_at, valid_days=1
    )
    rogue = load_signing_key(rogue_dir / "CICA-test-1.key")
    unknown = load_signing_key(rogue_dir / "CICA-rogue-1.key")
    expired = load_signing_key(rogue_dir / "CICA-expired-1.key")
    configure(
        network, "SCO-RATS", extra_public_keys={"CICA": [expired_pub]}, max_envelope_age_s=600
    )
    rejected = await vhosts["SCO-RATS"].collect(topology.REJECTED)
    inbox = await vhosts["SCO-RATS"].bind_collector(topology.DELIVER)
    await network.start("SCO-RATS")

    tampered = sign_envelope(envelope(), cica)
    tampered["body"]["text"] = {"en": "Something CICA never said."}
    forged = sign_envelope(envelope(), cica)
    forged["signature"]["value"] = base64.b64encode(bytes(64)).decode()
    swapped = sign_envelope(envelope(), cica)
    swapped["signature"]["key_id"] = "UNOCT-test-1"
    unsigned = envelope()
    now = datetime.now(UTC)
    # Several cases share a reason; the part after "/" only names the case.
    cases: dict[str, dict[str, Any]] = {
        "signature.bad/forged": forged,
        "signature.bad/tampered": tampered,
        "signature.bad/swapped key id": swapped,
        "signature.bad/rogue key under a pinned id": sign_envelope(envelope(), rogue),
        "signature.unknown_key": sign_envelope(envelope(), unknown),
        "signature.key_not_valid": sign_envelope(envelope(), expired),
        "signature.party_mismatch": sign_envelope(envelope(), unoct),
        "signature.missing": unsigned,
        "replay.too_old": sign_envelope(envelope(created_at=now - timedelta(hours=1)), cica),
        "replay.future": sign_envelope(envelope(created_at=now + timedelta(hours=1)), cica),
        "route.wrong_recipient": sign_envelope(envelope(recipient="UNOCT"), cica),
        "schema.missing_field": sign_envelope(envelope(body={"topics": []}), cica),
        "roster.officer_not_accredited": sign_envelope(envelope(officer="lo-ghost"), cica),
    }
    accredited = sign_envelope(accreditation("lo-0001"), cica)
    control = sign_envelope(envelope(), cica)
    async with peer("cica-peer", "SCO-RATS") as send:
        await send(accredited)
        for forged_envelope in cases.values():
            await send(forged_envelope)
        await send(raw=b'{"frame": 1, "envelopes": "not a list"}')
        await send(control)

    await wait_until(lambda: len(rejected.messages) == len(cases) + 1, message="rejections")
    await wait_until(lambda: len(inbox.messages) == 2, message="the two good envelopes")
    assert inbox.ids() == [accredited["id"], control["id"]]
    reasons = dict(zip(rejected.ids(), rejected.reasons(), strict=True))
    expected = {crafted["id"]: reason_of(case) for case, crafted in cases.items()}
    assert {i: r for i, r in reasons.items() if i in expected} == expected
    assert sorted(reasons.values()) == sorted([*expected.values(), "frame.invalid"])
    archived = await records(running(network, "SCO-RATS"), "envelope.in", outcome="rejected")
    assert {str(r.envelope_id): r.reason for r in archived} == expected


async def test_the_receiving_side_accepts_an_officer_once_its_roster_copy_has_them(
    network: Network, vhosts: dict[str, Vhost]
) -> None:
    cica = signing_key(network.keys, "CICA")
    rejected = await vhosts["SCO-RATS"].collect(topology.REJECTED)
    inbox = await vhosts["SCO-RATS"].bind_collector(topology.DELIVER)
    await network.start("SCO-RATS")
    early = sign_envelope(envelope(officer="lo-0042"), cica)
    assign = sign_envelope(accreditation("lo-0042"), cica)
    later = sign_envelope(envelope(officer="lo-0042"), cica)
    async with peer("cica-peer", "SCO-RATS") as send:
        await send(early)
        await send(assign, later)
    await inbox.wait_for_ids([assign["id"], later["id"]])
    assert inbox.ids() == [assign["id"], later["id"]]
    await rejected.wait_for_ids([early["id"]])
    assert rejected.ids() == [early["id"]]
    assert rejected.reasons() == ["roster.officer_not_accredited"]


async def test_a_signed_frame_with_the_wrong_content_type_is_refused_whole(
    network: Network, vhosts: dict[str, Vhost]
) -> None:
    cica = signing_key(network.keys, "CICA")
    rejected = await vhosts["SCO-RATS"].collect(topology.REJECTED)
    inbox = await vhosts["SCO-RATS"].bind_collector(topology.DELIVER)
    await network.start("SCO-RATS")
    assign = sign_envelope(accreditation("lo-0042"), cica)
    async with peer("cica-peer", "SCO-RATS") as send:
        await send(assign, content_type="application/json")
        await send(assign)
    await wait_until(lambda: len(rejected.messages) == 1 and len(inbox.messages) == 1)
    assert rejected.reasons() == ["frame.invalid"]
    assert inbox.ids() == [assign["id"]]


async def test_a_resent_envelope_is_not_delivered_again_and_its_receipt_is_sent_again(
    network: Network, vhosts: dict[str, Vhost]
) -> None:
    inbox = await vhosts["SCO-RATS"].bind_collector(topology.DELIVER, "CICA.information.share")
    statuses = await vhosts["CICA"].bind_collector(topology.STATUS, "*.delivered.#")
    await network.start("CICA")
    await network.start("SCO-RATS")
    await accredit(network, "CICA", "SCO-RATS", "lo-0001")
    desk = await network.desk("CICA")
    first = await desk.submit(share("SCO-RATS", "Sent once, arrives once."))
    await wait_until(
        lambda: any(s["submission_id"] == first for s in statuses.bodies()),
        message="the first delivered status",
    )
    original = inbox.bodies()[0]

    async with peer("cica-peer", "SCO-RATS") as send:
        await send(original)
    cica, rats = running(network, "CICA"), running(network, "SCO-RATS")

    async def duplicate_archived() -> bool:
        found = await records(rats, "envelope.in", envelope_id=original["id"])
        return sorted(r.outcome for r in found) == ["delivered", "duplicate"]

    await wait_until(duplicate_archived, message="the duplicate in SCO-RATS's archive")
    receipts: list[dict[str, Any]] = []

    async def receipt_twice() -> bool:
        found = await records(cica, "receipt.in")
        receipts[:] = [
            json.loads(r.payload)
            for r in found
            if json.loads(r.payload)["body"]["envelope_id"] == original["id"]
        ]
        return len(receipts) == 2

    await wait_until(receipt_twice, message="the original receipt, sent again")
    assert receipts[0] == receipts[1]
    # A later submission's status comes after anything the re-sent receipt could have caused.
    sentinel = await desk.submit(share("SCO-RATS", "After the resend."))
    await wait_until(
        lambda: any(s["submission_id"] == sentinel for s in statuses.bodies()),
        message="the sentinel's delivered status",
    )
    assert [s["submission_id"] for s in statuses.bodies()].count(first) == 1
    assert [m.message_id for m in inbox.messages].count(original["id"]) == 1


async def test_an_officer_not_on_the_roster_is_refused_then_accepted_after_assignment(
    network: Network, vhosts: dict[str, Vhost]
) -> None:
    rejected = await vhosts["CICA"].collect(topology.REJECTED)
    inbox = await vhosts["SCO-RATS"].bind_collector(topology.DELIVER, "CICA.information.share")
    statuses = await vhosts["CICA"].bind_collector(topology.STATUS)
    await network.start("CICA")
    await network.start("SCO-RATS")
    desk = await network.desk("CICA")
    refused = await desk.submit(share("SCO-RATS", "Too early.", officer="lo-0777"))
    await wait_until(lambda: len(rejected.messages) == 1, message="the refusal")
    assert rejected.ids() == [refused]
    assert rejected.reasons() == ["roster.officer_not_accredited"]
    await accredit(network, "CICA", "SCO-RATS", "lo-0777")
    accepted = await desk.submit(share("SCO-RATS", "Now accredited.", officer="lo-0777"))
    await wait_until(lambda: len(inbox.messages) == 1, message="the accepted share")
    assert inbox.bodies()[0]["originator"]["submission_id"] == accepted
    assert inbox.bodies()[0]["originator"]["officer"] == "lo-0777"
    await statuses.wait_for(body_has(submission_id=refused), what="the refusal's status")
    rejected_status = [s for s in statuses_of(statuses, "rejected") if s["submission_id"]]
    assert [(s["submission_id"], s["reason"]) for s in rejected_status] == [
        (refused, "roster.officer_not_accredited")
    ]


async def test_a_key_rotation_with_overlap_loses_no_message(
    network: Network, vhosts: dict[str, Vhost], tmp_path: Path
) -> None:
    new_dir = tmp_path / "rotated"
    new_key, new_pub = generate_key_pair(
        "CICA", new_dir, key_id="CICA-test-2", valid_from=datetime.now(UTC) - timedelta(hours=1)
    )
    configure(network, "SCO-RATS", extra_public_keys={"CICA": [new_pub]})
    inbox = await vhosts["SCO-RATS"].bind_collector(topology.DELIVER, "CICA.information.share")
    statuses = await vhosts["CICA"].bind_collector(topology.STATUS, "*.delivered.#")
    cica = await network.start("CICA")
    await network.start("SCO-RATS")
    await accredit(network, "CICA", "SCO-RATS", "lo-0001")
    desk = await network.desk("CICA")
    sent = [await desk.submit(share("SCO-RATS", f"Before rotation {i}.")) for i in range(300)]
    await wait_until(lambda: len(inbox.messages) >= 50, message="the stream to start")
    await cica.stop()
    configure(network, "CICA", signing_key=new_key)
    sent += [await desk.submit(share("SCO-RATS", f"After rotation {i}.")) for i in range(300)]
    await network.parties["CICA"].start()

    await wait_until(lambda: len(inbox.messages) >= 600, timeout=60, message="all 600")
    delivered = [body["originator"]["submission_id"] for body in inbox.bodies()]
    assert sorted(delivered) == sorted(sent)
    key_ids = {
        text: {b["signature"]["key_id"] for b in inbox.bodies() if text in b["body"]["text"]["en"]}
        for text in ("Before rotation", "After rotation")
    }
    # The first 50 were signed before the restart; nothing after it used the old key.
    assert "CICA-test-1" in key_ids["Before rotation"]
    assert key_ids["After rotation"] == {"CICA-test-2"}
    # Receipts of envelopes signed before the restart still settle them afterwards.
    await wait_until(
        lambda: {s["submission_id"] for s in statuses.bodies()} >= set(sent),
        timeout=30,
        message="a delivered status for every submission",
    )


@pytest.mark.slow
async def test_receipts_arrive_for_a_thousand_messages(
    network: Network, vhosts: dict[str, Vhost]
) -> None:
    statuses = await vhosts["CICA"].bind_collector(topology.STATUS, "*.delivered.#")
    await network.start("CICA")
    await network.start("SCO-RATS")
    await accredit(network, "CICA", "SCO-RATS", "lo-0001")
    desk = await network.desk("CICA")
    sent = [await desk.submit(share("SCO-RATS", f"Report number {i}.")) for i in range(1000)]
    await wait_until(
        lambda: {s["submission_id"] for s in statuses.bodies()} >= set(sent),
        timeout=60,
        message="1000 delivered statuses",
    )
    delivered = [s["submission_id"] for s in statuses.bodies() if s["type"] != "liaison.assignment"]
    assert sorted(delivered) == sorted(sent)
    metrics = running(network, "CICA").metrics.registry

    def pending() -> float | None:
        return metrics.get_sample_value("gateway_receipts_pending", {"counterparty": "SCO-RATS"})

    await wait_until(lambda: pending() == 0, message="no receipt pending")
    rats = running(network, "SCO-RATS")
    assert len(await records(rats, "receipt.out", outcome="sent")) == 1001


async def test_a_receipt_that_matches_no_sent_envelope_is_rejected(
    network: Network, vhosts: dict[str, Vhost]
) -> None:
    rejected = await vhosts["CICA"].collect(topology.REJECTED)
    await network.start("CICA")
    await accredit(network, "CICA", "SCO-RATS", "lo-0001")
    cica = running(network, "CICA")

    async def sent_envelope() -> bool:
        return bool(await records(cica, "envelope.out"))

    await wait_until(sent_envelope, message="the assignment forwarded")
    sent = json.loads((await records(cica, "envelope.out"))[0].payload)
    rats, unoct = signing_key(network.keys, "SCO-RATS"), signing_key(network.keys, "UNOCT")
    unknown = sign_envelope(receipt_for(envelope()), rats)
    mismatched = sign_envelope(receipt_for(sent, digest="0" * 64), rats)
    wrong_sender = sign_envelope(receipt_for(sent, party="UNOCT"), unoct)
    async with peer("sco-rats-peer", "CICA") as send:
        await send(unknown, mismatched)
    async with peer("unoct-peer", "CICA") as send:
        await send(wrong_sender)
    await wait_until(lambda: len(rejected.messages) == 3, message="three refused receipts")
    assert dict(zip(rejected.ids(), rejected.reasons(), strict=True)) == {
        unknown["id"]: "receipt.unknown_envelope",
        mismatched["id"]: "receipt.digest_mismatch",
        wrong_sender["id"]: "receipt.wrong_sender",
    }
    # The gateway's own state, not the status feed, proves no refused receipt settled anything.
    assert cica.state.receipts.pending_count("SCO-RATS") == 1
    assert not await records(cica, "receipt.in", outcome="delivered")


async def test_a_missing_receipt_becomes_overdue_and_the_gauges_show_it(
    network: Network, vhosts: dict[str, Vhost]
) -> None:
    statuses = await vhosts["CICA"].bind_collector(topology.STATUS)
    await network.start("CICA", receipt_overdue_s=1)
    await accredit(network, "CICA", "SCO-RATS", "lo-0001")
    desk = await network.desk("CICA")
    waiting = await desk.submit(share("SCO-RATS", "Nobody is reading yet."))
    metrics = running(network, "CICA").metrics.registry

    def gauge(name: str) -> float | None:
        return metrics.get_sample_value(name, {"counterparty": "SCO-RATS"})

    await wait_until(
        lambda: any(s["submission_id"] == waiting for s in statuses_of(statuses, "overdue")),
        timeout=10,
        message="an overdue status",
    )
    overdue = [s for s in statuses_of(statuses, "overdue") if s["submission_id"] == waiting]
    assert overdue[0]["reason"] == "receipt.overdue"
    await wait_until(lambda: gauge("gateway_receipts_pending") == 2, message="2 pending")
    await wait_until(lambda: gauge("gateway_receipts_pending_overdue") == 2, message="2 overdue")
    assert gauge("gateway_receipts_overdue_total") == 2

    await network.start("SCO-RATS")
    await wait_until(
        lambda: any(s["submission_id"] == waiting for s in statuses_of(statuses, "delivered")),
        message="the late receipt",
    )
    await wait_until(lambda: gauge("gateway_receipts_pending") == 0, message="none pending")
    await wait_until(lambda: gauge("gateway_receipts_pending_overdue") == 0, message="none overdue")


async def test_an_officer_announced_only_to_a_third_party_is_refused_toward_the_partner(
    network: Network, vhosts: dict[str, Vhost]
) -> None:
    rejected = await vhosts["CICA"].collect(topology.REJECTED)
    at_unoct = await vhosts["UNOCT"].bind_collector(topology.DELIVER, "CICA.#")
    at_rats = await vhosts["SCO-RATS"].bind_collector(topology.DELIVER, "CICA.#")
    for party in ("CICA", "SCO-RATS", "UNOCT"):
        await network.start(party)
    await accredit(network, "CICA", "UNOCT", "lo-0300")
    await wait_until(lambda: len(at_unoct.messages) == 1, message="the assignment at UNOCT")
    desk = await network.desk("CICA")
    refused = await desk.submit(
        share("SCO-RATS", "SCO-RATS never heard of lo-0300.", officer="lo-0300")
    )
    await wait_until(lambda: len(rejected.messages) == 1, message="the refusal at CICA")
    assert rejected.ids() == [refused]
    assert rejected.reasons() == ["roster.officer_not_accredited"]
    await accredit(network, "CICA", "SCO-RATS", "lo-0300")
    await desk.submit(share("SCO-RATS", "Now SCO-RATS knows lo-0300.", officer="lo-0300"))
    await wait_until(lambda: len(at_rats.messages) == 2, message="assignment and share")


async def test_a_back_office_cannot_make_its_gateway_sign_a_receipt(
    network: Network, vhosts: dict[str, Vhost]
) -> None:
    rejected = await vhosts["CICA"].collect(topology.REJECTED)
    await network.start("CICA")
    desk = await network.desk("CICA")
    fake = receipt_for(envelope(party="SCO-RATS", recipient="CICA"))
    forged = await desk.submit(submission("receipt", "SCO-RATS", fake["body"]))
    await rejected.wait_for_ids([forged])
    assert rejected.ids() == [forged]
    assert rejected.reasons() == ["submission.reserved_type"]
    # The archive holds the refused submission's outcome; nothing was signed for the peer.
    cica = running(network, "CICA")
    refusals = await records(cica, "submission", outcome="rejected")
    assert [r.message_id for r in refusals] == [forged]
    assert not await records(cica, "envelope.out")
