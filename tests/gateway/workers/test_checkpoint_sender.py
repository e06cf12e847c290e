"""The checkpoint sender on the fakes: archived before it leaves, never signed over a chain that
lost our previous checkpoint, and a counterparty that is down does not stop the others."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime

from gateway.archive.records import Entry
from gateway.core.keys import Keyring
from gateway.core.signing import verify_envelope
from gateway.core.state import PartyState
from gateway.workers.checkpoints import CheckpointSender
from tests.gateway.workers.rigs import CICA_KEY, metrics
from tests.support.fakes import FakeArchive, FakePublisher


async def _nothing_to_catch_up() -> None:
    """The test's state is the whole state."""


def _note() -> Entry:
    return Entry(kind="note", outcome="kept", occurred_at=datetime.now(UTC), payload=b"{}")


def _sender(
    archive: FakeArchive, publishers: Mapping[str, FakePublisher], state: PartyState
) -> CheckpointSender:
    return CheckpointSender(
        party="CICA",
        recipients=sorted(publishers),
        publishers=publishers,
        archive=archive,
        metrics=metrics("CICA", "SCO-RATS"),
        signing_key=CICA_KEY,
        state=lambda: state,
        prepare=_nothing_to_catch_up,
        interval_s=3600.0,
    )


async def test_a_checkpoint_is_archived_signed_and_sent_to_each_counterparty() -> None:
    archive = FakeArchive()
    archive.add([_note(), _note()])
    publishers = {"SCO-RATS": FakePublisher(), "UNOCT": FakePublisher()}
    sent = await _sender(archive, publishers, PartyState("CICA")).send_now()

    assert sorted(e["recipient"] for e in sent) == ["SCO-RATS", "UNOCT"]
    assert archive.outcomes()[2:] == [("checkpoint.out", "sent")] * 2
    for peer, publisher in publishers.items():
        (envelope,) = publisher.envelopes()
        assert envelope["recipient"] == peer
        assert envelope["body"]["seq"] == 2  # the head before the checkpoints themselves
        keyring = Keyring([CICA_KEY.public()])
        assert verify_envelope(envelope, keyring, datetime.now(UTC)).key_id == CICA_KEY.key_id
    archived = {json.loads(r.payload)["id"] for r in archive.records[2:]}
    assert archived == {e["id"] for e in sent}


async def test_no_checkpoint_is_signed_once_the_archive_lost_the_previous_one() -> None:
    archive = FakeArchive()
    archive.add([_note(), _note(), _note()])
    publishers = {"SCO-RATS": FakePublisher()}
    sender = _sender(archive, publishers, PartyState("CICA"))
    assert len(await sender.send_now()) == 1

    del archive.records[1:]  # the chain shortened under the running gateway
    assert await sender.send_now() == []
    assert len(publishers["SCO-RATS"].envelopes()) == 1


async def test_a_counterparty_that_is_down_does_not_stop_the_others() -> None:
    archive = FakeArchive()
    archive.add([_note()])
    down = FakePublisher()
    down.unreachable = True
    publishers = {"SCO-RATS": down, "UNOCT": FakePublisher()}
    sent = await _sender(archive, publishers, PartyState("CICA")).send_now()

    assert len(sent) == 2  # both archived: the next checkpoint supersedes the lost one
    assert down.envelopes() == []
    assert [e["recipient"] for e in publishers["UNOCT"].envelopes()] == ["UNOCT"]
