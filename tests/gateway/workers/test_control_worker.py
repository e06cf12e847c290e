"""The control worker on in-memory fakes: operator submissions and replays, who may ask, and a
request held or given back while the archive or the counterparty is unavailable."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from contracts import parse_status
from gateway import topology
from gateway.archive.records import Entry
from gateway.core.control_requests import (
    MALFORMED,
    UNAUTHORIZED,
    redeliver_request,
    replay_request,
    review_refuse_request,
    review_release_request,
    submit_request,
)
from gateway.core.replay import NOT_REPLAYABLE, UNKNOWN_RECORD
from gateway.core.review import ALREADY_DECIDED, SAME_OFFICER, ReviewNeed, held_headers, review_key
from gateway.workers.control import MAX_RUN_RECORDS
from tests.gateway.trust_helpers import NOW, assignment_envelope, signed
from tests.gateway.workers.rigs import (
    CICA_KEY,
    RATS_KEY,
    control,
    request,
    sent_by_another_replica,
    stopped_while_unreachable,
)
from tests.support.fakes import FakeArchive, FakeChannel
from tests.support.parties import share


def answers(channel: FakeChannel) -> list[tuple[str, str, str | None]]:
    """(request id, status, reason) of each answer on gw.status."""
    return [
        (str(item.correlation_id), json.loads(item.body)["status"], json.loads(item.body)["reason"])
        for item in channel.to(topology.STATUS)
    ]


def submit(request_id: str, text: str) -> Any:
    return request(submit_request(request_id, share("SCO-RATS", text)))


async def test_an_operator_submission_is_archived_sent_answered_and_acked() -> None:
    worker, rig = control(submit("r-1", "From the operator."))
    await worker.run(burst=True)

    [env] = rig.peer.envelopes()
    assert env["originator"]["system"] == "operator"
    assert env["originator"]["submission_id"] == "r-1"
    assert rig.archive.outcomes() == [("envelope.out", "sent")]
    assert answers(rig.channel) == [("r-1", "sent", None)]
    assert len(rig.channel.acked) == 1
    assert rig.channel.queue_name == topology.CONTROL


async def test_a_redelivered_submission_request_is_answered_duplicate_with_the_same_envelope() -> (
    None
):
    first = submit("r-1", "Once.")
    worker, rig = control(first)
    await worker.run(burst=True)
    await rig.channel.put(first.again())
    await worker.run(burst=True)

    first_env, again = rig.peer.envelopes()
    assert again["id"] == first_env["id"]
    assert rig.archive.outcomes() == [("envelope.out", "sent")]
    assert answers(rig.channel) == [
        ("r-1", "sent", None),
        ("r-1", "duplicate", "submission.duplicate"),
    ]


async def test_foreign_or_malformed_requests_are_rejected_and_the_worker_goes_on() -> None:
    intruder = request(submit_request("r-x", share("SCO-RATS", "Let me in.")), user_id="case-desk")
    malformed = request(b'{"request_id": "r-m", "action": "explode"}')
    worker, rig = control(intruder, malformed, submit("r-2", "Fine."))
    await worker.run(burst=True)

    unauthorized, bad = rig.channel.to(topology.REJECTED)
    assert unauthorized.headers[topology.REASON_HEADER] == UNAUTHORIZED
    assert unauthorized.headers["x-gw-system"] == "case-desk"
    assert bad.headers[topology.REASON_HEADER] == MALFORMED
    # Only a request that names its id gets an answer; the intruder's is not believed.
    assert answers(rig.channel) == [("r-m", "rejected", MALFORMED), ("r-2", "sent", None)]
    assert rig.archive.outcomes() == [
        ("control", "rejected"),
        ("control", "rejected"),
        ("envelope.out", "sent"),
    ]
    assert len(rig.peer.envelopes()) == 1
    assert len(rig.channel.acked) == 3


async def test_a_replay_of_a_record_the_archive_lacks_is_refused() -> None:
    worker, rig = control(request(replay_request("r-1", 99, "deliver")))
    await worker.run(burst=True)

    assert answers(rig.channel) == [("r-1", "rejected", UNKNOWN_RECORD)]
    assert rig.channel.to(topology.DELIVER) == []
    assert len(rig.channel.acked) == 1


async def test_a_replay_to_deliver_verifies_the_archived_envelope_and_publishes_it_again() -> None:
    env = signed(RATS_KEY, recipient="CICA", created_at=datetime.now(UTC))
    archive = FakeArchive()
    [seq] = archived_as_received(archive, [env])
    worker, rig = control(request(replay_request("r-1", seq, "deliver")), archive=archive)
    await worker.run(burst=True)

    [again] = rig.channel.to(topology.DELIVER)
    assert again.message_id == env["id"]
    assert again.headers[topology.REPLAY_OF_HEADER] == str(seq)
    assert answers(rig.channel) == [("r-1", "replayed", None)]
    assert rig.archive.outcomes()[1:] == [("replay", "replayed")]


async def test_a_request_failing_on_the_archive_goes_back_and_succeeds_when_redelivered() -> None:
    message = submit("r-1", "Archive hiccup.")
    worker, rig = control(message, archive=FakeArchive(fail=1))
    await worker.run(burst=True)

    assert rig.channel.given_back == [message]
    assert rig.state_lost
    assert rig.archive.outcomes() == [("envelope.out", "sent")]
    assert answers(rig.channel) == [("r-1", "sent", None)]
    assert len(rig.peer.envelopes()) == 1


async def test_a_stopping_worker_gives_back_a_request_it_could_not_send() -> None:
    message = submit("r-1", "Nobody home.")
    worker, rig = control(message)
    await stopped_while_unreachable(worker, rig.peer)

    assert rig.channel.given_back == [message]
    assert rig.channel.commits == 0
    # Archived before it left: the redelivery sends that envelope, answered as a duplicate.
    assert rig.archive.outcomes() == [("envelope.out", "sent")]


async def test_a_claim_another_replica_took_meanwhile_sends_its_envelope_instead() -> None:
    message = submit("r-1", "Ours.")
    worker, rig = control(message)
    theirs, claim = sent_by_another_replica("operator", "r-1")
    rig.archive.racing = [claim]
    await worker.run(burst=True)

    assert rig.channel.given_back == [message]  # decided again, on the claim's path
    assert rig.state_lost
    assert [env["id"] for env in rig.peer.envelopes()] == [theirs["id"]]
    assert answers(rig.channel) == [("r-1", "duplicate", "submission.duplicate")]
    assert len(rig.channel.acked) == 1


async def test_a_held_submission_is_released_once_by_another_officer() -> None:
    archive = FakeArchive()
    [held] = archive.add(
        [
            Entry(
                kind="submission",
                outcome="held",
                occurred_at=datetime.now(UTC),
                payload=json.dumps(share("SCO-RATS", "Waits for a second pair of eyes.")).encode(),
                message_id="m-held",
                system="case-desk",
                type="information.share",
                recipient="SCO-RATS",
                reason="review.resembles",
                headers=held_headers(
                    ReviewNeed("review.resembles", (), "it resembles a received envelope"),
                    "lo-0001",
                ),
            )
        ]
    )
    seq = held.record.seq
    worker, rig = control(
        request(review_release_request("r-same", seq, "lo-0001")),
        request(review_release_request("r-ok", seq, "lo-0002")),
        request(review_refuse_request("r-late", seq, "lo-0002", "Too late.")),
        archive=archive,
    )
    rig.state.sent(
        assignment_envelope(CICA_KEY, "lo-0002", recipient="SCO-RATS"), "assign-lo-0002", NOW
    )
    await worker.run(burst=True)

    assert answers(rig.channel) == [
        ("r-same", "rejected", SAME_OFFICER),
        ("r-ok", "sent", None),
        ("r-late", "rejected", ALREADY_DECIDED),
    ]
    [env] = rig.peer.envelopes()
    assert env["originator"]["submission_id"] == "m-held"
    assert env["body"]["text"]["en"] == "Waits for a second pair of eyes."
    [sent] = [r for r in rig.archive.records if r.kind == "envelope.out"]
    assert sent.dedup_key == review_key(seq)
    assert len(rig.channel.acked) == 3


def archived_as_received(archive: FakeArchive, envelopes: list[dict[str, Any]]) -> list[int]:
    """``envelopes`` SCO-RATS signed, archived as received by CICA: their seqs."""
    entries = [
        Entry(
            kind="envelope.in",
            outcome="delivered",
            occurred_at=datetime.now(UTC),
            payload=json.dumps(env).encode(),
            envelope_id=env["id"],
            type=env["type"],
            provider="SCO-RATS",
            recipient="CICA",
        )
        for env in envelopes
    ]
    return [appended.record.seq for appended in archive.add(entries)]


def received_shares(archive: FakeArchive, count: int) -> list[int]:
    return archived_as_received(
        archive,
        [
            signed(
                RATS_KEY,
                recipient="CICA",
                body=share("CICA", f"Report {n}.")["body"],
                created_at=datetime.now(UTC),
            )
            for n in range(count)
        ],
    )


async def test_a_run_of_redeliveries_is_archived_and_committed_together_in_order() -> None:
    archive = FakeArchive()
    seqs = received_shares(archive, 3)
    replays = [request(replay_request(f"r-{n}", seq, "deliver")) for n, seq in enumerate(seqs)]
    foreign = request(replay_request("r-foreign", seqs[0], "deliver"), user_id="case-desk")
    missing = request(replay_request("r-missing", 99, "deliver"))
    worker, rig = control(replays[0], replays[1], foreign, replays[2], missing, archive=archive)
    await worker.run(burst=True)

    assert answers(rig.channel) == [
        ("r-0", "replayed", None),
        ("r-1", "replayed", None),
        ("r-2", "replayed", None),
        ("r-missing", "rejected", UNKNOWN_RECORD),
    ]
    redelivered = rig.channel.to(topology.DELIVER)
    assert [d.headers[topology.REPLAY_OF_HEADER] for d in redelivered] == [str(s) for s in seqs]
    # Two runs around the foreign request, which is refused on its own: three commits.
    assert rig.channel.commits == 3
    assert len(rig.channel.acked) == 5
    assert rig.archive.outcomes()[3:] == [
        ("replay", "replayed"),
        ("replay", "replayed"),
        ("control", "rejected"),
        ("replay", "replayed"),
        ("replay", "rejected"),
    ]


async def test_a_run_of_redeliveries_failing_on_the_archive_goes_back_whole() -> None:
    archive = FakeArchive()
    seqs = received_shares(archive, 2)
    replays = [request(replay_request(f"r-{n}", seq, "deliver")) for n, seq in enumerate(seqs)]
    worker, rig = control(*replays, archive=archive)
    archive.fail = 1
    await worker.run(burst=True)

    assert rig.channel.given_back == replays
    assert rig.state_lost
    assert answers(rig.channel) == [("r-0", "replayed", None), ("r-1", "replayed", None)]
    assert len(rig.channel.to(topology.DELIVER)) == 2
    assert rig.archive.outcomes()[2:] == [("replay", "replayed"), ("replay", "replayed")]


async def test_a_request_for_many_records_redelivers_each_once_and_answers_each_seq() -> None:
    archive = FakeArchive()
    first, second = received_shares(archive, 2)
    [submitted] = archive.add(
        [Entry(kind="submission", outcome="rejected", occurred_at=NOW, payload=b"{}")]
    )
    seqs = [first, 99, submitted.record.seq, second]
    worker, rig = control(request(redeliver_request("r-many", seqs)), archive=archive)
    await worker.run(burst=True)

    [event] = rig.channel.to(topology.STATUS)
    answer = parse_status(event.body)
    assert (event.correlation_id, answer.status) == ("r-many", "replayed")
    assert answer.results is not None
    assert [(r.seq, r.status, r.reason) for r in answer.results] == [
        (first, "replayed", None),
        (99, "rejected", UNKNOWN_RECORD),
        (submitted.record.seq, "rejected", NOT_REPLAYABLE),
        (second, "replayed", None),
    ]
    redelivered = rig.channel.to(topology.DELIVER)
    assert [d.headers[topology.REPLAY_OF_HEADER] for d in redelivered] == [str(first), str(second)]
    replays = [r for r in rig.archive.records if r.kind == "replay"]
    assert [(r.refers_to, r.outcome, r.message_id) for r in replays] == [
        (first, "replayed", "r-many"),
        (99, "rejected", "r-many"),
        (submitted.record.seq, "rejected", "r-many"),
        (second, "replayed", "r-many"),
    ]
    # Each record's payload is the request for that record alone.
    assert [json.loads(r.payload)["seq"] for r in replays] == seqs
    assert (rig.channel.commits, len(rig.channel.acked)) == (1, 1)


async def test_requests_for_many_records_are_committed_in_runs_of_bounded_size() -> None:
    big = MAX_RUN_RECORDS // 2 + 1
    requests = [
        request(redeliver_request(f"r-{n}", range(n * big + 1000, (n + 1) * big + 1000)))
        for n in range(3)
    ]
    worker, rig = control(*requests)
    await worker.run(burst=True)

    # No two of them fit in one run: one archive append and one transaction each.
    assert rig.channel.commits == 3
    assert len(rig.channel.acked) == 3
    assert [e.correlation_id for e in rig.channel.to(topology.STATUS)] == ["r-0", "r-1", "r-2"]
    assert len([r for r in rig.archive.records if r.kind == "replay"]) == 3 * big
