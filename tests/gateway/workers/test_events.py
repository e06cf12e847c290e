"""A batch's events applied to the metrics and the log in one place."""

from __future__ import annotations

import structlog
from structlog.testing import capture_logs

from gateway.workers.events import (
    CheckpointProblemSeen,
    ConsentBlocked,
    Counted,
    EndToEnd,
    Logged,
    consent_blocks,
    emit,
)
from tests.gateway.workers.rigs import metrics


def value(metric: object) -> float:
    return metric._value.get()  # type: ignore[attr-defined]


def test_each_event_moves_its_metric_or_logs_its_line() -> None:
    registry = metrics("CICA", "SCO-RATS")
    events = [
        Counted("outbound", "information.share", "SCO-RATS", "quarantined", "consent.missing"),
        ConsentBlocked("SCO-RATS", "SCO-RATS"),
        EndToEnd("inbound", "SCO-RATS", 0.5),
        CheckpointProblemSeen("SCO-RATS", "checkpoint.forked"),
        Logged("warning", "outbound.something", {"message_id": "m-1"}),
    ]
    with capture_logs() as logs:
        emit(events, registry, structlog.get_logger("t"))

    assert (
        value(registry.messages.labels("outbound", "information.share", "SCO-RATS", "quarantined"))
        == 1
    )
    assert value(registry.quarantined.labels("outbound", "consent.missing")) == 1
    assert value(registry.consent_blocks.labels("SCO-RATS", "SCO-RATS")) == 1
    assert value(registry.checkpoint_problems.labels("SCO-RATS", "checkpoint.forked")) == 1
    assert registry.end_to_end_latency.labels("inbound", "SCO-RATS")._sum.get() == 0.5
    assert logs == [{"event": "outbound.something", "message_id": "m-1", "log_level": "warning"}]


def test_a_provider_missing_several_consents_blocks_once() -> None:
    missing = (("UNOCT", "e-1"), ("CTED", "e-2"), ("UNOCT", "e-3"))
    assert consent_blocks(missing, "SCO-RATS") == [
        ConsentBlocked("CTED", "SCO-RATS"),
        ConsentBlocked("UNOCT", "SCO-RATS"),
    ]
