"""The provenance index, its content index and the receipt tracker hold a bounded part of what
they know; what they let go is still answered, from the archive."""

from __future__ import annotations

import random
from collections.abc import Iterator, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from gateway.core.consent import UNDECLARED_DERIVATION, decide_route
from gateway.core.consent_registry import ConsentRegistry
from gateway.core.envelope_content import Content
from gateway.core.provenance import ProvenanceIndex, known_from_envelope
from gateway.core.receipts import ReceiptError, ReceiptTracker
from gateway.core.signing import envelope_digest

NOW = datetime(2026, 3, 1, tzinfo=UTC)
PROVIDED = (
    "Our analysts observed a rise in fraudulent charitable collections announced on social "
    "networks after the earthquake, with money moved to accounts abroad through couriers."
)
UNRELATED = (
    "Meteorologists forecast unusually heavy snowfall across northern valleys next weekend, "
    "so skiing competitions might be postponed until spring thaw arrives."
)
_SYLLABLES = ["ka", "lo", "mi", "nu", "re", "sa", "ti", "vo", "ze", "qu", "bri", "dost", "fen"]


def filler(n: int) -> str:
    """A text of made-up words, different for each ``n``, sharing nothing with the others."""
    rng = random.Random(n)
    return " ".join(
        "".join(rng.choice(_SYLLABLES) for _ in range(4)) + f"{chr(97 + n % 26)}" for _ in range(20)
    )


def envelope(
    envelope_id: str, text: str, *, provider: str = "CICA", recipient: str = "SCO-RATS"
) -> dict[str, Any]:
    return {
        "id": envelope_id,
        "type": "information.share",
        "version": 1,
        "originator": {"party": provider, "system": "case-desk", "officer": "lo-1"},
        "recipient": recipient,
        "created_at": "2026-03-01T00:00:00Z",
        "handling": {"onward": "consent-required"},
        "body": {"subject": {"en": "Note"}, "text": {"en": text}},
        "signature": {"alg": "ed25519", "key_id": f"{provider}-1", "value": "AAAA"},
    }


class FakeArchive:
    """:class:`gateway.core.provenance.ArchivedEnvelopes` over a list, counting the reads."""

    def __init__(self) -> None:
        self.envelopes: dict[str, tuple[dict[str, Any], bool]] = {}
        self.lookups = 0
        self.scans = 0

    def append(self, raw: dict[str, Any], received: bool) -> None:
        self.envelopes[raw["id"]] = (raw, received)

    def envelope(self, envelope_id: str) -> tuple[Mapping[str, Any], bool] | None:
        self.lookups += 1
        return self.envelopes.get(envelope_id)

    def received_from(self, provider: str) -> Iterator[Mapping[str, Any]]:
        self.scans += 1
        for raw, received in self.envelopes.values():
            if received and raw["originator"]["party"] == provider:
                yield raw


def received_into(index: ProvenanceIndex, archive: FakeArchive, raw: dict[str, Any]) -> None:
    """What the gateway does: archive, then apply."""
    archive.append(raw, True)
    index.add(known_from_envelope(raw, received=True))


@pytest.fixture
def archive() -> FakeArchive:
    return FakeArchive()


def test_neither_index_ever_holds_more_than_its_capacity(archive: FakeArchive) -> None:
    index = ProvenanceIndex(archive, envelope_capacity=50, content_capacity=20)
    for n in range(300):
        received_into(index, archive, envelope(f"in-{n}", filler(n)))
        held_by_id, held_content = index.held_count()
        assert held_by_id <= 50
        assert held_content <= 20
    assert index.held_count() == (50, 20)
    assert len(index) == 300


def test_an_evicted_envelope_is_answered_from_the_archive(archive: FakeArchive) -> None:
    index = ProvenanceIndex(archive, envelope_capacity=5, content_capacity=5)
    first = envelope("in-0", filler(0))
    received_into(index, archive, first)
    for n in range(1, 20):
        received_into(index, archive, envelope(f"in-{n}", filler(n)))
    assert archive.lookups == 0
    found = index.get("in-0")
    assert found == replace(known_from_envelope(first, received=True), content=None)
    assert archive.lookups == 1
    assert "in-0" in index
    assert "never-seen" not in index


def test_an_evicted_provided_text_still_resembles_its_copy(archive: FakeArchive) -> None:
    index = ProvenanceIndex(archive, envelope_capacity=5, content_capacity=5)
    received_into(index, archive, envelope("provided", PROVIDED))
    for n in range(20):
        received_into(index, archive, envelope(f"in-{n}", filler(n)))
    assert index.held_count()[1] == 5

    found = index.resemblances(Content.of_texts([f"Forwarding this: {PROVIDED}"]), "UNOCT")

    assert [(r.matched_envelope_id, r.level) for r in found] == [("provided", "block")]
    assert archive.scans == 1


def test_the_archive_is_not_read_for_a_text_sharing_nothing_with_evicted_content(
    archive: FakeArchive,
) -> None:
    index = ProvenanceIndex(archive, envelope_capacity=5, content_capacity=5)
    received_into(index, archive, envelope("provided", PROVIDED))
    for n in range(20):
        received_into(index, archive, envelope(f"in-{n}", filler(n)))

    assert index.resemblances(Content.of_texts([UNRELATED]), "UNOCT") == []
    assert archive.scans == 0


def test_an_insiders_onward_share_of_an_evicted_provided_text_is_still_blocked(
    archive: FakeArchive,
) -> None:
    """SCO-RATS received PROVIDED from CICA long ago (evicted since); an insider pastes it into
    a share to UNOCT without declaring it: the third-party rule still quarantines it."""
    index = ProvenanceIndex(archive, envelope_capacity=5, content_capacity=5)
    received_into(index, archive, envelope("provided", PROVIDED))
    for n in range(20):
        received_into(index, archive, envelope(f"in-{n}", filler(n), provider="UNOCT"))
    assert index.held_count()[1] == 5

    share = f"Summary for our partners. {PROVIDED} Please advise."
    decision = decide_route(
        this_party="SCO-RATS",
        recipient="UNOCT",
        derived_from=(),
        attachment_sha256=(),
        texts=(share,),
        index=index,
        registry=ConsentRegistry(),
        at=NOW,
    )

    assert not decision.allowed
    assert decision.reason == UNDECLARED_DERIVATION
    assert decision.missing == (("CICA", "provided"),)


def test_without_an_archive_nothing_is_evicted() -> None:
    index = ProvenanceIndex(envelope_capacity=5, content_capacity=5)
    for n in range(20):
        index.add(known_from_envelope(envelope(f"in-{n}", filler(n)), received=True))
    assert index.held_count() == (20, 20)


class TestReceipts:
    def sent(self, archive: FakeArchive, tracker: ReceiptTracker, n: int) -> dict[str, Any]:
        raw = envelope(f"out-{n}", filler(n), provider="CICA", recipient="SCO-RATS")
        archive.append(raw, False)
        tracker.expect(
            raw["id"], envelope_digest(raw), "SCO-RATS", f"m-{n}", raw["type"], NOW, system="cd"
        )
        return raw

    def test_settled_memory_stays_within_its_cap(self, archive: FakeArchive) -> None:
        tracker = ReceiptTracker(settled_memory=10, archived=archive)
        for n in range(50):
            raw = self.sent(archive, tracker, n)
            assert tracker.settle(raw["id"], envelope_digest(raw), "SCO-RATS") is not None
            assert tracker.settled_count() <= 10
        assert tracker.pending_count() == 0

    def test_a_late_duplicate_receipt_of_an_evicted_envelope_is_checked_from_the_archive(
        self, archive: FakeArchive
    ) -> None:
        tracker = ReceiptTracker(settled_memory=1, archived=archive)
        first, second = self.sent(archive, tracker, 0), self.sent(archive, tracker, 1)
        for raw in (first, second):
            tracker.settle(raw["id"], envelope_digest(raw), "SCO-RATS")
        assert tracker.settled_count() == 1

        assert tracker.settle(first["id"], envelope_digest(first), "SCO-RATS") is None
        with pytest.raises(ReceiptError) as wrong_digest:
            tracker.settle(first["id"], "0" * 64, "SCO-RATS")
        with pytest.raises(ReceiptError) as wrong_sender:
            tracker.settle(first["id"], envelope_digest(first), "UNOCT")
        with pytest.raises(ReceiptError) as unknown:
            tracker.settle("never-sent", "0" * 64, "SCO-RATS")
        assert (wrong_digest.value.code, wrong_sender.value.code, unknown.value.code) == (
            "receipt.digest_mismatch",
            "receipt.wrong_sender",
            "receipt.unknown_envelope",
        )

    def test_a_received_envelope_is_no_settled_one(self, archive: FakeArchive) -> None:
        tracker = ReceiptTracker(settled_memory=1, archived=archive)
        raw = envelope("in-1", PROVIDED)
        archive.append(raw, True)
        with pytest.raises(ReceiptError, match=r"receipt\.unknown_envelope"):
            tracker.settle("in-1", envelope_digest(raw), "CICA")
