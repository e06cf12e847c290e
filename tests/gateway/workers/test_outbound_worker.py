"""The outbound worker on in-memory fakes: decide, archive, forward, commit, and every way a
batch is held, given back or partly rejected."""

from __future__ import annotations

import asyncio
from dataclasses import replace

from gateway import topology
from gateway.core.outbound_decision import (
    Delivery,
    OutboundContext,
    OutboundDecision,
    decide_submission,
)
from gateway.core.provenance import known_from_envelope
from gateway.core.signing import envelope_digest
from gateway.workers.copies import CopyKeeper
from gateway.workers.ports import Decisions
from tests.gateway.workers.rigs import (
    CICA_KEY,
    MAX_ATTEMPTS,
    NO_WAIT,
    metrics,
    outbound,
    sent_by_another_replica,
    stopped_while_unreachable,
    submitted,
)
from tests.support.fakes import FakeArchive, FakeChannel, FakeMessage, FakePublisher
from tests.support.waiting import wait_until


def statuses(channel: FakeChannel) -> list[tuple[str | None, str]]:
    return [(s["submission_id"], s["status"]) for s in channel.statuses()]


async def test_submissions_are_archived_forwarded_and_acked_with_their_statuses() -> None:
    worker, rig = outbound(submitted("One.", "m-1"), submitted("Two.", "m-2"))
    await worker.run(burst=True)

    sent = rig.peer.envelopes()
    assert [env["originator"]["submission_id"] for env in sent] == ["m-1", "m-2"]
    assert all(env["signature"]["key_id"] == CICA_KEY.key_id for env in sent)
    assert rig.peer.published[0].exchange == topology.inbound_from("CICA")
    assert rig.archive.outcomes() == [("envelope.out", "sent")] * 2
    assert [r.envelope_id for r in rig.archive.records] == [env["id"] for env in sent]
    assert statuses(rig.channel) == [("m-1", "sent"), ("m-2", "sent")]
    assert len(rig.channel.acked) == 2
    assert rig.channel.given_back == []
    assert rig.channel.queue_name == topology.SUBMIT


async def test_the_state_learns_each_sent_envelope_as_a_rebuild_from_the_archive_would() -> None:
    # The worker hands the state the digest and provenance it computed while signing; they
    # must be what the state computes from the envelope itself when it replays the archive.
    worker, rig = outbound(submitted("One.", "m-1"), submitted("Two.", "m-2"))
    await worker.run(burst=True)

    for env in rig.peer.envelopes():
        held = rig.state.provenance.get(env["id"])
        rebuilt = known_from_envelope(env, received=False)
        assert held == replace(rebuilt, content=None)
        # A receipt naming another digest would be refused.
        settled = rig.state.receipts.settle(env["id"], envelope_digest(env), "SCO-RATS")
        assert settled is not None
        assert settled.submission_id == env["originator"]["submission_id"]


async def test_a_redelivered_submission_sends_its_archived_envelope_again() -> None:
    first = submitted("Once.", "m-1")
    worker, rig = outbound(first)
    await worker.run(burst=True)
    # The ack was lost with the channel: the same submission comes again, redelivered.
    await rig.channel.put(first.again())
    await worker.run(burst=True)

    sent = rig.peer.envelopes()
    assert len(sent) == 2
    assert sent[0]["id"] == sent[1]["id"]  # the receiver's de-duplication drops the second
    assert rig.archive.outcomes() == [("envelope.out", "sent"), ("submission", "duplicate")]
    assert rig.archive.records[1].refers_to == rig.archive.records[0].seq
    assert statuses(rig.channel) == [("m-1", "sent"), ("m-1", "duplicate")]
    assert len(rig.channel.acked) == 2


async def test_the_same_id_twice_in_one_batch_becomes_one_envelope() -> None:
    worker, rig = outbound(submitted("Once.", "m-1"), submitted("Once again.", "m-1"))
    await worker.run(burst=True)

    # The second is the first's envelope again, as for a redelivery: harmless at the receiver.
    [first, again] = rig.peer.envelopes()
    assert again == first
    assert first["body"]["text"]["en"] == "Once."
    assert rig.archive.outcomes() == [("envelope.out", "sent"), ("submission", "duplicate")]
    assert statuses(rig.channel) == [("m-1", "sent"), ("m-1", "duplicate")]


async def test_an_unavailable_archive_holds_the_batch_and_it_is_tried_again() -> None:
    worker, rig = outbound(submitted("Held a while.", "m-1"), archive=FakeArchive(fail=2))
    await worker.run(burst=True)

    assert rig.archive.append_calls == 3
    assert rig.archive.outcomes() == [("envelope.out", "sent")]
    assert len(rig.peer.envelopes()) == 1
    assert rig.channel.given_back == []  # held, not given back: no delivery counted
    assert len(rig.channel.acked) == 1
    assert rig.state_lost  # the state is rebuilt from what the archive really holds


async def test_a_batch_failing_while_the_archive_answers_is_given_back() -> None:
    message = submitted("Unlucky.", "m-1")
    worker, rig = outbound(message, archive=FakeArchive(fail=MAX_ATTEMPTS + 1))
    await worker.run(burst=True)

    assert rig.channel.given_back == [message]  # once, after MAX_ATTEMPTS failures
    assert rig.archive.outcomes() == [("envelope.out", "sent")]  # its redelivery went through
    assert len(rig.peer.envelopes()) == 1


async def test_an_unreachable_counterparty_is_retried_until_it_confirms() -> None:
    worker, rig = outbound(submitted("Patience.", "m-1"), peer=FakePublisher(fail=3))
    await worker.run(burst=True)

    assert rig.peer.attempts == 4
    assert len(rig.peer.envelopes()) == 1
    assert statuses(rig.channel) == [("m-1", "sent")]
    assert len(rig.channel.acked) == 1


async def test_a_stopping_worker_gives_back_what_it_could_not_forward() -> None:
    message = submitted("Nobody home.", "m-1")
    worker, rig = outbound(message)
    await stopped_while_unreachable(worker, rig.peer)

    assert rig.channel.given_back == [message]
    assert rig.channel.acked == []
    assert rig.channel.commits == 0  # no status says "sent"
    # Archived before it left: the redelivery re-sends the same envelope.
    assert rig.archive.outcomes() == [("envelope.out", "sent")]


async def test_bad_input_is_rejected_with_its_reason_and_the_rest_goes_on() -> None:
    bad = FakeMessage(b"{not json", message_id="m-bad", user_id="case-desk")
    worker, rig = outbound(bad, submitted("Fine.", "m-2"))
    await worker.run(burst=True)

    [copy] = rig.channel.to(topology.REJECTED)
    assert copy.body == b"{not json"
    assert copy.headers[topology.REASON_HEADER] == copy.routing_key
    assert copy.headers[topology.REASON_HEADER].startswith("schema.")
    assert statuses(rig.channel) == [("m-bad", "rejected"), ("m-2", "sent")]
    assert rig.archive.outcomes() == [("submission", "rejected"), ("envelope.out", "sent")]
    assert len(rig.peer.envelopes()) == 1
    assert len(rig.channel.acked) == 2


async def test_a_refused_copy_holds_the_batch_until_the_queue_takes_it() -> None:
    holding = FakePublisher(refuse=10**9)  # gw.rejected is full
    copies = CopyKeeper(holding, metrics("CICA", "SCO-RATS"), NO_WAIT)
    bad = FakeMessage(b"[]", message_id="m-bad", user_id="case-desk")
    worker, rig = outbound(bad, channel=FakeChannel(guard=copies))
    running = asyncio.ensure_future(worker.run(burst=True))
    await wait_until(lambda: holding.attempts >= 3, timeout=5, interval=0.001)
    assert rig.channel.acked == []
    assert rig.channel.commits == 0

    holding.refuse = 0  # operators drained the queue
    await asyncio.wait_for(running, 5)
    assert [c.message_id for c in holding.published] == ["m-bad"]
    assert rig.channel.to(topology.REJECTED) == []  # confirmed apart, not in the transaction
    assert statuses(rig.channel) == [("m-bad", "rejected")]
    assert rig.channel.acked == [bad]


async def test_a_submission_whose_decision_keeps_failing_is_rejected_after_max_attempts() -> None:
    attempts: list[bool] = []

    def failing(delivery: Delivery, ctx: OutboundContext) -> OutboundDecision:
        if delivery.message_id == "poison":
            attempts.append(delivery.redelivered)
            raise RuntimeError("deciding this fails")
        return decide_submission(delivery, ctx)

    worker, rig = outbound(
        submitted("Before.", "m-1"),
        submitted("Poison.", "poison"),
        submitted("After.", "m-3"),
        decisions=Decisions(submission=failing),
    )
    await worker.run(burst=True)

    assert attempts == [False] + [True] * (MAX_ATTEMPTS - 1)
    [copy] = rig.channel.to(topology.REJECTED)
    assert copy.message_id == "poison"
    assert copy.headers[topology.REASON_HEADER] == "processing.failed"
    assert "RuntimeError" in copy.headers[topology.DETAIL_HEADER]
    sent = sorted(env["originator"]["submission_id"] for env in rig.peer.envelopes())
    assert sent == ["m-1", "m-3"]
    assert sorted(statuses(rig.channel)) == [
        ("m-1", "sent"),
        ("m-3", "sent"),
        ("poison", "rejected"),
    ]
    assert len(rig.channel.given_back) == MAX_ATTEMPTS - 1


async def test_a_key_claimed_by_another_replica_meanwhile_sends_that_replicas_envelope() -> None:
    worker, rig = outbound(submitted("Ours.", "m-1"))
    theirs, claim = sent_by_another_replica("case-desk", "m-1")
    rig.archive.racing = [claim]
    await worker.run(burst=True)

    assert [env["id"] for env in rig.peer.envelopes()] == [theirs["id"]]
    assert rig.archive.outcomes() == [("envelope.out", "sent"), ("envelope.out", "duplicate")]
    assert statuses(rig.channel) == [("m-1", "duplicate")]
    assert rig.state_lost  # our decision was applied to the state: rebuilt
    assert len(rig.channel.acked) == 1
