from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.core.keys import SigningKey
from gateway.core.receipts import Pending, ReceiptError, ReceiptTracker, receipt_body
from gateway.core.signing import envelope_digest, sign_envelope

T0 = datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC)
KEY = SigningKey("CICA", "CICA-2026-1", T0, T0 + timedelta(days=10), Ed25519PrivateKey.generate())


def _signed(envelope_id: str = "01964f6e-8a43-7c1e-9a3b-0c1d2e3f4a5b") -> dict[str, Any]:
    return sign_envelope(
        {
            "id": envelope_id,
            "type": "information.share",
            "originator": {"party": "CICA"},
            "created_at": "2026-06-01T12:00:00Z",
            "body": {"x": 1},
        },
        KEY,
    )


def test_receipt_body() -> None:
    envelope = _signed()
    received = datetime(2026, 6, 1, 14, 0, 1, 250000).replace(
        tzinfo=datetime.fromisoformat("2026-01-01T00:00:00+02:00").tzinfo
    )
    body = receipt_body(envelope, "delivered", received)
    assert body == {
        "envelope_id": "01964f6e-8a43-7c1e-9a3b-0c1d2e3f4a5b",
        "envelope_sha256": envelope_digest(envelope),
        "status": "delivered",
        "received_at": "2026-06-01T12:00:01.250000Z",
    }
    assert len(body["envelope_sha256"]) == 64
    assert receipt_body(envelope, "duplicate", T0)["status"] == "duplicate"


def test_receipt_body_needs_an_id_and_an_aware_time() -> None:
    with pytest.raises(ValueError, match="id"):
        receipt_body({"body": {}}, "delivered", T0)
    with pytest.raises(ValueError, match="naive"):
        receipt_body(_signed(), "delivered", datetime(2026, 6, 1))


def _tracker(*ids: str, counterparty: str = "SCO-RATS", **kwargs: Any) -> ReceiptTracker:
    tracker = ReceiptTracker(**kwargs)
    for n, envelope_id in enumerate(ids):
        tracker.expect(
            envelope_id,
            f"d-{envelope_id}",
            counterparty,
            f"s-{n}",
            "information.share",
            T0,
            system="case-desk",
        )
    return tracker


def _code(tracker: ReceiptTracker, envelope_id: str, digest: str, sender: str) -> str:
    with pytest.raises(ReceiptError) as caught:
        tracker.settle(envelope_id, digest, sender)
    return caught.value.code


def test_settle_returns_the_pending_and_counts_down() -> None:
    tracker = _tracker("e1", "e2")
    tracker.expect("e3", "d-e3", "UNOCT", "s-3", "consent.request", T0, system="case-desk")
    assert tracker.pending_count("SCO-RATS") == 2
    assert tracker.pending_count("UNOCT") == 1
    assert tracker.pending_count() == 3
    settled = tracker.settle("e1", "d-e1", "SCO-RATS")
    assert settled == Pending("e1", "d-e1", "SCO-RATS", "s-0", "information.share", T0, "case-desk")
    assert tracker.pending_count("SCO-RATS") == 1
    assert tracker.pending_count() == 2
    assert tracker.pending_count("CICA") == 0


def test_unknown_envelope() -> None:
    assert _code(_tracker("e1"), "e9", "d-e9", "SCO-RATS") == "receipt.unknown_envelope"


def test_digest_mismatch_leaves_it_pending() -> None:
    tracker = _tracker("e1")
    assert _code(tracker, "e1", "d-other", "SCO-RATS") == "receipt.digest_mismatch"
    assert tracker.pending_count("SCO-RATS") == 1
    assert tracker.settle("e1", "d-e1", "SCO-RATS") is not None


def test_wrong_sender_leaves_it_pending() -> None:
    tracker = _tracker("e1")
    assert _code(tracker, "e1", "d-e1", "UNOCT") == "receipt.wrong_sender"
    assert tracker.pending_count("SCO-RATS") == 1


def test_repeated_receipt_is_idempotent_and_still_checked() -> None:
    tracker = _tracker("e1")
    assert tracker.settle("e1", "d-e1", "SCO-RATS") is not None
    assert tracker.settle("e1", "d-e1", "SCO-RATS") is None
    assert tracker.pending_count() == 0
    assert _code(tracker, "e1", "d-other", "SCO-RATS") == "receipt.digest_mismatch"
    assert _code(tracker, "e1", "d-e1", "UNOCT") == "receipt.wrong_sender"


def test_settled_memory_is_bounded() -> None:
    tracker = _tracker("e1", "e2", "e3", settled_memory=2)
    for envelope_id in ("e1", "e2", "e3"):
        tracker.settle(envelope_id, f"d-{envelope_id}", "SCO-RATS")
    assert tracker.settle("e3", "d-e3", "SCO-RATS") is None
    assert _code(tracker, "e1", "d-e1", "SCO-RATS") == "receipt.unknown_envelope"


def test_expect_again_is_a_no_op_keeping_first_send_time() -> None:
    tracker = _tracker("e1")
    tracker.expect(
        "e1",
        "d-e1",
        "SCO-RATS",
        "s-0",
        "information.share",
        T0 + timedelta(hours=1),
        system="case-desk",
    )
    assert tracker.pending_count() == 1
    assert [
        p.sent_at for p in tracker.overdue(T0 + timedelta(minutes=2), timedelta(minutes=1))
    ] == [T0]


def test_expect_after_settle_does_not_reopen() -> None:
    tracker = _tracker("e1")
    tracker.settle("e1", "d-e1", "SCO-RATS")
    tracker.expect("e1", "d-e1", "SCO-RATS", "s-0", "information.share", T0, system="case-desk")
    assert tracker.pending_count() == 0
    assert tracker.overdue(T0 + timedelta(days=1), timedelta(minutes=1)) == []


def test_expect_conflicting_digest_is_a_bug() -> None:
    tracker = _tracker("e1")
    with pytest.raises(ValueError, match="e1"):
        tracker.expect(
            "e1", "d-other", "SCO-RATS", "s-0", "information.share", T0, system="case-desk"
        )


def test_overdue_reports_each_once_oldest_first() -> None:
    tracker = ReceiptTracker()
    for n in (3, 1, 2):
        tracker.expect(
            f"e{n}", "d", "SCO-RATS", f"s{n}", "t", T0 + timedelta(seconds=n), system="case-desk"
        )
    after = timedelta(seconds=60)
    assert tracker.overdue(T0 + timedelta(seconds=61), after) == []
    first = tracker.overdue(T0 + timedelta(seconds=62, microseconds=1), after)
    assert [p.envelope_id for p in first] == ["e1", "e2"]
    assert tracker.overdue(T0 + timedelta(seconds=62, microseconds=1), after) == []
    tracker.settle("e3", "d", "SCO-RATS")
    assert tracker.overdue(T0 + timedelta(hours=1), after) == []
    # Overdue envelopes are still waiting and still counted.
    assert tracker.pending_count("SCO-RATS") == 2
    assert tracker.settle("e1", "d", "SCO-RATS") is not None


def test_overdue_count_follows_the_overdue_until_their_receipts_arrive() -> None:
    tracker = _tracker("e1", "e2")
    tracker.expect("u1", "d-u1", "UNOCT", "s-u", "information.share", T0, system="case-desk")
    after = timedelta(seconds=60)
    assert tracker.overdue_count() == 0
    tracker.overdue(T0 + timedelta(seconds=61), after)
    assert (tracker.overdue_count("SCO-RATS"), tracker.overdue_count("UNOCT")) == (2, 1)
    tracker.settle("e1", "d-e1", "SCO-RATS")
    tracker.settle("e1", "d-e1", "SCO-RATS")  # a repeated receipt settles nothing more
    assert (tracker.overdue_count("SCO-RATS"), tracker.overdue_count()) == (1, 2)
    tracker.expect("e3", "d-e3", "SCO-RATS", "s-3", "information.share", T0, system="case-desk")
    tracker.settle("e3", "d-e3", "SCO-RATS")  # settled before it was ever overdue
    assert tracker.overdue_count("SCO-RATS") == 1


def test_negative_memory_is_refused() -> None:
    with pytest.raises(ValueError, match="settled_memory"):
        ReceiptTracker(settled_memory=-1)
