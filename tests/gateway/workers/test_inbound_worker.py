"""The inbound worker on in-memory fakes: verify, archive, deliver with the ack, send receipts;
duplicates, an unavailable archive, bad frames and envelopes, a poison envelope."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from gateway import topology
from gateway.archive.records import Entry
from gateway.core.inbound_decision import InboundContext, InboundDecision, decide_envelope
from gateway.workers.inbound import envelope_key
from gateway.workers.ports import Decisions
from tests.gateway.trust_helpers import signed
from tests.gateway.workers.rigs import MAX_ATTEMPTS, RATS_KEY, frame, from_cica, inbound
from tests.support.fakes import FakeArchive, FakeChannel, FakeMessage


def delivered(channel: FakeChannel) -> list[str]:
    return [str(item.message_id) for item in channel.to(topology.DELIVER)]


def receipted(envelopes: list[dict[str, Any]]) -> list[str]:
    assert all(env["type"] == "receipt" for env in envelopes)
    return [env["body"]["envelope_id"] for env in envelopes]


async def test_a_frame_is_verified_archived_delivered_acked_and_receipted() -> None:
    one, two = from_cica("One."), from_cica("Two.")
    worker, rig = inbound(frame(one, two))
    await worker.run(burst=True)

    assert delivered(rig.channel) == [one["id"], two["id"]]
    assert rig.channel.to(topology.DELIVER)[0].routing_key == "CICA.information.share"
    assert rig.archive.outcomes() == [("envelope.in", "delivered"), ("receipt.out", "sent")] * 2
    assert receipted(rig.peer.envelopes()) == [one["id"], two["id"]]
    assert rig.peer.published[0].exchange == topology.inbound_from("SCO-RATS")
    assert len(rig.channel.acked) == 1
    assert rig.channel.queue_name == topology.inbound_from("CICA")


async def test_an_envelope_received_again_is_not_delivered_again_and_its_receipt_is_resent() -> (
    None
):
    env = from_cica("Once.")
    worker, rig = inbound(frame(env))
    await worker.run(burst=True)
    await rig.channel.put(frame(env))  # the sender re-sent it: its receipt went astray
    await worker.run(burst=True)

    assert delivered(rig.channel) == [env["id"]]
    assert rig.archive.outcomes() == [
        ("envelope.in", "delivered"),
        ("receipt.out", "sent"),
        ("envelope.in", "duplicate"),
    ]
    first, again = rig.peer.envelopes()
    assert again == first  # the archived receipt, not a new one
    assert len(rig.channel.acked) == 2


async def test_a_redelivered_frame_archived_by_our_own_attempt_is_delivered_now() -> None:
    """Our earlier attempt archived the frame and died before its broker transaction."""
    env = from_cica("Archived, never delivered.")
    message = frame(env)
    archive = FakeArchive()
    archive.add(
        [
            Entry(
                kind="envelope.in",
                outcome="delivered",
                occurred_at=datetime.now(UTC),
                payload=json.dumps(env).encode(),
                message_id=message.message_id,
                envelope_id=env["id"],
                dedup_key=envelope_key("CICA", env["id"]),
            )
        ]
    )
    worker, rig = inbound(message.again(), archive=archive)
    await worker.run(burst=True)

    assert delivered(rig.channel) == [env["id"]]
    # Under the claim already archived: no second claim, no second receipt.
    assert rig.archive.outcomes()[1:] == [("envelope.in", "delivered")]
    assert rig.archive.records[1].dedup_key is None
    assert rig.peer.published == []
    assert len(rig.channel.acked) == 1


async def test_an_unavailable_archive_holds_the_batch_and_it_is_tried_again() -> None:
    env = from_cica("Held a while.")
    worker, rig = inbound(frame(env), archive=FakeArchive(fail=2))
    await worker.run(burst=True)

    assert rig.archive.append_calls == 3
    assert delivered(rig.channel) == [env["id"]]
    assert rig.channel.given_back == []
    assert rig.state_lost


async def test_bad_frames_and_envelopes_are_rejected_with_their_reasons_and_the_rest_goes_on() -> (
    None
):
    forged = signed(RATS_KEY, party="CICA", created_at=datetime.now(UTC))
    good = from_cica("Fine.")
    junk = FakeMessage(b"\x00junk", message_id="f-junk", content_type=topology.FRAME_CONTENT_TYPE)
    worker, rig = inbound(junk, frame(forged, good))
    await worker.run(burst=True)

    frame_copy, envelope_copy = rig.channel.to(topology.REJECTED)
    assert frame_copy.message_id == "f-junk"
    assert frame_copy.headers[topology.REASON_HEADER] == frame_copy.routing_key
    assert frame_copy.headers["x-gw-stage"] == "inbound"
    assert envelope_copy.message_id == forged["id"]
    assert envelope_copy.headers[topology.REASON_HEADER].startswith("signature.")
    assert delivered(rig.channel) == [good["id"]]
    assert rig.archive.outcomes()[:2] == [("frame", "rejected"), ("envelope.in", "rejected")]
    assert receipted(rig.peer.envelopes()) == [good["id"]]
    assert len(rig.channel.acked) == 2


async def test_an_unreachable_sender_gets_no_receipts_and_the_deliveries_stand() -> None:
    env = from_cica("Delivered anyway.")
    worker, rig = inbound(frame(env))
    rig.peer.unreachable = True
    await worker.run(burst=True)

    assert delivered(rig.channel) == [env["id"]]
    assert rig.peer.published == []
    assert rig.peer.attempts == 1  # the sender re-sends what it sees overdue
    assert ("receipt.out", "sent") in rig.archive.outcomes()
    assert len(rig.channel.acked) == 1


async def test_an_envelope_whose_processing_keeps_failing_is_rejected_after_max_attempts() -> None:
    good, poison, after = from_cica("Good."), from_cica("Poison."), from_cica("After.")
    attempts: list[str] = []

    def failing(raw: Mapping[str, Any], ctx: InboundContext) -> InboundDecision:
        if raw.get("id") == poison["id"]:
            attempts.append(str(raw["id"]))
            raise RuntimeError("verifying this fails")
        return decide_envelope(raw, ctx)

    worker, rig = inbound(frame(good, poison), frame(after), decisions=Decisions(envelope=failing))
    await worker.run(burst=True)

    assert len(attempts) == MAX_ATTEMPTS
    [copy] = rig.channel.to(topology.REJECTED)
    assert copy.message_id == poison["id"]
    assert copy.headers[topology.REASON_HEADER] == "processing.failed"
    # The poison's frame went back whole, and its good envelope was delivered once, at the end.
    assert sorted(delivered(rig.channel)) == sorted([good["id"], after["id"]])
    assert len(rig.channel.given_back) == MAX_ATTEMPTS - 1
    assert sorted(receipted(rig.peer.envelopes())) == sorted([good["id"], after["id"]])
