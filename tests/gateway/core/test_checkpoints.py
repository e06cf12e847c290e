"""Checkpoints, pure: the signed envelope, the receiver's checks and the echo check."""

from __future__ import annotations

import json

import pytest

from contracts import CheckpointV1, parse_envelope
from gateway.core.checkpoints import (
    BROKEN_LINK,
    FORKED,
    NOT_IN_ARCHIVE,
    REGRESSED,
    ChainPoint,
    Checkpoint,
    CheckpointBook,
    acknowledgement_problem,
    checkpoint_envelope,
)
from gateway.core.keys import Keyring
from gateway.core.signing import verify_envelope
from gateway.core.state import PartyState
from tests.gateway.trust_helpers import NOW, new_key, next_id


def point(seq: int, tag: str = "a") -> ChainPoint:
    return ChainPoint(seq, (tag * 64)[:64] if tag != "a" else f"{seq:064x}")


def checkpoint(
    seq: int, previous: ChainPoint | None = None, acknowledged: ChainPoint | None = None
) -> Checkpoint:
    return Checkpoint(point(seq), previous, acknowledged)


def test_checkpoint_envelope_is_signed_and_follows_the_contract() -> None:
    key = new_key("CICA", "CICA-1")
    body = Checkpoint(point(42), point(17), ChainPoint(9, "f" * 64))
    envelope = checkpoint_envelope(
        body, party="CICA", recipient="SCO-RATS", now=NOW, new_id=next_id, key=key
    )
    assert verify_envelope(envelope, Keyring([key.public()]), NOW).key_id == "CICA-1"
    parsed = parse_envelope(envelope)
    assert parsed.type == "checkpoint"
    assert parsed.originator.party == "CICA"
    typed = parsed.typed_body()
    assert isinstance(typed, CheckpointV1)
    assert (typed.seq, typed.head_hash) == (42, point(42).head_hash)
    assert Checkpoint.from_body(envelope["body"]) == body


def test_first_checkpoint_from_a_peer_is_taken_as_it_comes() -> None:
    book = CheckpointBook()
    assert book.check("CICA", checkpoint(10)) is None
    book.received("CICA", checkpoint(10))
    assert book.held("CICA") == point(10)


def test_a_checkpoint_linking_to_the_one_held_passes() -> None:
    book = CheckpointBook()
    book.received("CICA", checkpoint(10))
    assert book.check("CICA", checkpoint(25, previous=point(10))) is None
    book.received("CICA", checkpoint(25, previous=point(10)))
    assert book.held("CICA") == point(25)


def test_a_head_below_the_held_checkpoint_is_a_regression_and_stays_reported() -> None:
    book = CheckpointBook()
    book.received("CICA", checkpoint(25))
    shortened = checkpoint(20, previous=point(25))
    problem = book.check("CICA", shortened)
    assert problem is not None
    assert problem.code == REGRESSED
    assert "seq 20" in problem.detail
    book.received("CICA", shortened)
    # The highest stays held: it is what the next echo names, so the sender hears of it again.
    assert book.held("CICA") == point(25)


def test_the_same_seq_with_another_hash_is_a_fork() -> None:
    book = CheckpointBook()
    book.received("CICA", checkpoint(25))
    rewritten = Checkpoint(point(25, "b"), point(25, "b"), None)
    problem = book.check("CICA", rewritten)
    assert problem is not None
    assert problem.code == FORKED


@pytest.mark.parametrize(
    "previous",
    [None, point(5), point(10, "c")],
    ids=["no previous", "an older one than held", "the held seq with another hash"],
)
def test_a_previous_checkpoint_that_does_not_link_is_reported(
    previous: ChainPoint | None,
) -> None:
    book = CheckpointBook()
    book.received("CICA", checkpoint(3))
    book.received("CICA", checkpoint(10, previous=point(3)))
    problem = book.check("CICA", checkpoint(40, previous=previous))
    assert problem is not None
    assert problem.code == BROKEN_LINK


def test_a_previous_checkpoint_we_never_received_passes() -> None:
    book = CheckpointBook()
    book.received("CICA", checkpoint(10))
    assert book.check("CICA", checkpoint(40, previous=point(30))) is None


def test_a_previous_checkpoint_held_below_the_latest_passes() -> None:
    """Two replicas sharing one archive may send checkpoints naming the same previous one."""
    book = CheckpointBook()
    book.received("CICA", checkpoint(10))
    book.received("CICA", checkpoint(20, previous=point(10)))
    assert book.check("CICA", checkpoint(21, previous=point(10))) is None


def test_books_of_different_peers_are_separate() -> None:
    book = CheckpointBook()
    book.received("CICA", checkpoint(25))
    assert book.check("UNOCT", checkpoint(3)) is None
    assert book.held("UNOCT") is None


def test_acknowledgement_of_a_record_we_still_hold_passes() -> None:
    assert acknowledgement_problem(point(7), 9, point(7).head_hash) is None


@pytest.mark.parametrize(
    ("head_seq", "found", "words"),
    [
        (5, None, "removed from its end"),
        (9, None, "removed from its end"),
        (9, "e" * 64, "rewritten"),
    ],
)
def test_acknowledgement_our_archive_no_longer_holds_is_reported(
    head_seq: int, found: str | None, words: str
) -> None:
    problem = acknowledgement_problem(point(7), head_seq, found)
    assert problem is not None
    assert problem.code == NOT_IN_ARCHIVE
    assert words in problem.detail


def test_state_rebuilds_the_book_from_archived_checkpoints() -> None:
    cica, sco = new_key("CICA", "CICA-1"), new_key("SCO-RATS", "SCO-1")
    ours = checkpoint_envelope(
        checkpoint(12), party="SCO-RATS", recipient="CICA", now=NOW, new_id=next_id, key=sco
    )
    theirs = checkpoint_envelope(
        checkpoint(30), party="CICA", recipient="SCO-RATS", now=NOW, new_id=next_id, key=cica
    )
    state = PartyState("SCO-RATS")
    state.replay_record("checkpoint.out", "sent", json.dumps(ours).encode(), NOW)
    state.replay_record("checkpoint.in", "archived", json.dumps(theirs).encode(), NOW)
    assert state.checkpoints.last_sent("CICA") == point(12)
    assert state.checkpoints.held("CICA") == point(30)


def test_an_unreadable_archived_checkpoint_does_not_stop_a_rebuild() -> None:
    state = PartyState("SCO-RATS")
    state.replay_record("checkpoint.in", "archived", b'{"id": "x", "body": {"seq": "7"}}', NOW)
    state.replay_record("checkpoint.out", "sent", b'{"id": "y", "body": {}}', NOW)
    assert state.checkpoints.held("CICA") is None
    assert state.checkpoints.last_sent("CICA") is None
