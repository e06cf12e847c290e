"""Archive records made up for tests and microbenchmarks that need no archive: a received
envelope's ``delivered`` record, as the inbound worker archives it."""

from __future__ import annotations

from datetime import datetime

from gateway.archive import Record


def delivered_record(seq: int, at: datetime) -> Record:
    return Record(
        seq=seq,
        recorded_at=at,
        prev_hash="0" * 64,
        hash="1" * 64,
        kind="envelope.in",
        outcome="delivered",
        occurred_at=at,
        payload=b'{"id": "e"}',
        message_id=f"frame-{seq}",
        envelope_id=f"e-{seq}",
        type="information.share",
        provider="CICA",
        recipient="SCO-RATS",
    )
