"""The metric names, types and labels the dashboard and alerts rely on, with bounded values."""

from __future__ import annotations

import re

import pytest
from prometheus_client import REGISTRY, generate_latest

from gateway.metrics import OTHER, GatewayMetrics, bounded, reason_code

TYPES = ["information.share", "information.request"]
COUNTERPARTIES = ["SCO-RATS", "UNOCT"]

# exposed series name -> (TYPE line, label names)
EXPECTED = {
    "gateway_build_info": ("gauge", {"version", "party"}),
    "gateway_messages_total": ("counter", {"direction", "type", "counterparty", "outcome"}),
    "gateway_rejections_total": ("counter", {"direction", "reason"}),
    "gateway_quarantined_total": ("counter", {"direction", "reason"}),
    "gateway_consent_blocks_total": ("counter", {"provider", "recipient"}),
    "gateway_end_to_end_latency_seconds": ("histogram", {"direction", "counterparty"}),
    "gateway_stage_seconds": ("histogram", {"stage"}),
    "gateway_in_flight_messages": ("gauge", {"direction"}),
    "gateway_backlog_messages": ("gauge", {"queue"}),
    "gateway_receipts_pending": ("gauge", {"counterparty"}),
    "gateway_receipts_pending_overdue": ("gauge", {"counterparty"}),
    "gateway_receipts_overdue_total": ("counter", {"counterparty"}),
    "gateway_inbound_rate_limited": ("gauge", {"counterparty"}),
    "gateway_copies_refused_total": ("counter", {"queue"}),
    "gateway_copies_held": ("gauge", set()),
    "gateway_broker_connected": ("gauge", {"broker"}),
    "gateway_broker_reconnects_total": ("counter", {"broker"}),
    "gateway_archive_write_seconds": ("histogram", set()),
    "gateway_archive_batch_size": ("histogram", set()),
    "gateway_archive_up": ("gauge", set()),
    "gateway_signing_key_expiry_timestamp_seconds": ("gauge", {"key_id"}),
    "gateway_up": ("gauge", set()),
}

_SAMPLE = re.compile(r"^(?P<name>[a-zA-Z_:][\w:]*)(?:\{(?P<labels>.*)\})? (?P<value>\S+)$")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def _metrics() -> GatewayMetrics:
    return GatewayMetrics(
        "CICA", counterparties=COUNTERPARTIES, message_types=TYPES, build_version="1.2.3"
    )


def _exposition(metrics: GatewayMetrics) -> tuple[dict[str, str], list[tuple[str, dict[str, str]]]]:
    """(TYPE of each family, [(sample name, labels)]) parsed from the text format."""
    types: dict[str, str] = {}
    samples: list[tuple[str, dict[str, str]]] = []
    for line in generate_latest(metrics.registry).decode().splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            types[name] = kind
        elif line and not line.startswith("#"):
            match = _SAMPLE.match(line)
            assert match, line
            samples.append((match["name"], dict(_LABEL.findall(match["labels"] or ""))))
    return types, samples


def test_every_metric_is_exposed_with_its_type_and_labels() -> None:
    metrics = _metrics()
    metrics.signing_key_expiry.labels("CICA-2026-1").set(1_800_000_000)
    metrics.archive_write_seconds.observe(0.01)
    metrics.archive_batch_size.observe(8)
    metrics.record_outcome("outbound", "information.share", "SCO-RATS", "rejected", "schema.x")
    metrics.record_outcome("inbound", "information.share", "SCO-RATS", "quarantined", "consent.y")

    types, samples = _exposition(metrics)

    for name, (kind, labels) in EXPECTED.items():
        assert types.get(name) == kind, name
        series = {s for s, _ in samples if s == name or s == f"{name}_bucket"}
        assert series, f"{name} has no sample"
        for sample_name, sample_labels in samples:
            if sample_name in (name, f"{name}_bucket", f"{name}_sum", f"{name}_count"):
                assert set(sample_labels) - {"le"} == labels, sample_name
    assert {n for n in types if not n.endswith("_created")} == set(EXPECTED)


def test_build_info_and_up_are_one() -> None:
    registry = _metrics().registry
    assert registry.get_sample_value("gateway_up") == 1
    labels = {"version": "1.2.3", "party": "CICA"}
    assert registry.get_sample_value("gateway_build_info", labels) == 1


def test_known_series_start_at_zero() -> None:
    registry = _metrics().registry
    for counterparty in COUNTERPARTIES:
        for outcome in ("forwarded", "rejected", "quarantined", "duplicate"):
            labels = {
                "direction": "outbound",
                "type": "information.request",
                "counterparty": counterparty,
                "outcome": outcome,
            }
            assert registry.get_sample_value("gateway_messages_total", labels) == 0
    wrong_direction = {
        "direction": "outbound",
        "type": "information.share",
        "counterparty": "SCO-RATS",
        "outcome": "delivered",
    }
    assert registry.get_sample_value("gateway_messages_total", wrong_direction) is None
    for broker in ("local", *COUNTERPARTIES):
        assert registry.get_sample_value("gateway_broker_connected", {"broker": broker}) == 0
    blocks = {"provider": "SCO-RATS", "recipient": "UNOCT"}
    assert registry.get_sample_value("gateway_consent_blocks_total", blocks) == 0
    to_itself = {"provider": "SCO-RATS", "recipient": "SCO-RATS"}
    assert registry.get_sample_value("gateway_consent_blocks_total", to_itself) is None
    assert registry.get_sample_value("gateway_backlog_messages", {"queue": "gw.quarantine"}) == 0


def test_record_outcome_counts_the_message_and_its_reason() -> None:
    metrics = _metrics()
    registry = metrics.registry

    metrics.record_outcome("inbound", "information.share", "SCO-RATS", "rejected", "signature.bad")
    metrics.record_outcome("inbound", "information.share", "SCO-RATS", "rejected", "signature.bad")
    metrics.record_outcome(
        "outbound", "information.share", "UNOCT", "quarantined", "consent.missing"
    )
    metrics.record_outcome("outbound", "information.share", "SCO-RATS", "forwarded")

    rejected = {
        "direction": "inbound",
        "type": "information.share",
        "counterparty": "SCO-RATS",
        "outcome": "rejected",
    }
    assert registry.get_sample_value("gateway_messages_total", rejected) == 2
    assert (
        registry.get_sample_value(
            "gateway_rejections_total", {"direction": "inbound", "reason": "signature.bad"}
        )
        == 2
    )
    assert (
        registry.get_sample_value(
            "gateway_quarantined_total", {"direction": "outbound", "reason": "consent.missing"}
        )
        == 1
    )
    rejections = next(s for s in registry.collect() if s.name == "gateway_rejections")
    assert {s.labels["reason"] for s in rejections.samples} == {"signature.bad"}


def test_unbounded_values_become_other() -> None:
    metrics = _metrics()
    message_id = "0190f3a2-7c1e-7b4e-9a51-3f1d2c4b5a69"

    metrics.record_outcome("inbound", message_id, message_id, "rejected", f"no key {message_id}")
    metrics.record_consent_block("SCO-RATS", message_id)
    metrics.set_broker_connected(message_id, True)
    metrics.observe_end_to_end("outbound", message_id, 0.5)

    for _, labels in _exposition(metrics)[1]:
        assert message_id not in labels.values()
    registry = metrics.registry
    other = {"direction": "inbound", "type": OTHER, "counterparty": OTHER, "outcome": "rejected"}
    assert registry.get_sample_value("gateway_messages_total", other) == 1
    reason = {"direction": "inbound", "reason": OTHER}
    assert registry.get_sample_value("gateway_rejections_total", reason) == 1
    assert registry.get_sample_value("gateway_broker_connected", {"broker": OTHER}) == 1


@pytest.mark.parametrize(
    ("value", "expected"),
    [("SCO-RATS", "SCO-RATS"), ("sco-rats", OTHER), ("", OTHER), ("UNOCT", "UNOCT")],
)
def test_bounded(value: str, expected: str) -> None:
    assert bounded(value, {"SCO-RATS", "UNOCT"}) == expected


def test_bounded_with_own_fallback() -> None:
    assert bounded("x", (), other="unknown") == "unknown"


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        ("schema.missing_field", "schema.missing_field"),
        ("provenance.unknown_reference", "provenance.unknown_reference"),
        ("consent.missing.for_recipient", "consent.missing.for_recipient"),
        ("signature", OTHER),
        ("Signature.Bad", OTHER),
        ("KeyError: 'x'", OTHER),
        ("schema." + "x" * 80, OTHER),
    ],
)
def test_reason_code(reason: str, expected: str) -> None:
    assert reason_code(reason) == expected


def test_broker_state_reconnects_and_overdue_receipts() -> None:
    metrics = _metrics()
    registry = metrics.registry

    metrics.set_broker_connected("local", True)
    metrics.set_broker_connected("SCO-RATS", True)
    metrics.set_broker_connected("SCO-RATS", False)
    metrics.record_reconnect("SCO-RATS")
    metrics.record_receipt_overdue("SCO-RATS")
    metrics.receipts_overdue.labels("SCO-RATS").set(4)

    assert registry.get_sample_value("gateway_broker_connected", {"broker": "local"}) == 1
    assert registry.get_sample_value("gateway_broker_connected", {"broker": "SCO-RATS"}) == 0
    reconnects = registry.get_sample_value(
        "gateway_broker_reconnects_total", {"broker": "SCO-RATS"}
    )
    assert reconnects == 1
    cp = {"counterparty": "SCO-RATS"}
    assert registry.get_sample_value("gateway_receipts_overdue_total", cp) == 1
    assert registry.get_sample_value("gateway_receipts_pending_overdue", cp) == 4


def test_histograms_have_the_agreed_buckets() -> None:
    metrics = _metrics()
    metrics.observe_end_to_end("inbound", "SCO-RATS", 0.0004)
    with metrics.time_stage("sign"):
        pass
    metrics.archive_batch_size.observe(1000)
    registry = metrics.registry

    e2e = {"direction": "inbound", "counterparty": "SCO-RATS"}
    assert (
        registry.get_sample_value(
            "gateway_end_to_end_latency_seconds_bucket", {**e2e, "le": "0.001"}
        )
        == 1
    )
    assert (
        registry.get_sample_value(
            "gateway_end_to_end_latency_seconds_bucket", {**e2e, "le": "30.0"}
        )
        == 1
    )
    assert registry.get_sample_value("gateway_stage_seconds_count", {"stage": "sign"}) == 1
    assert registry.get_sample_value("gateway_archive_batch_size_bucket", {"le": "512.0"}) == 0
    assert registry.get_sample_value("gateway_archive_batch_size_bucket", {"le": "1024.0"}) == 1
    buckets = [
        s.labels["le"]
        for family in registry.collect()
        if family.name == "gateway_archive_batch_size"
        for s in family.samples
        if s.name.endswith("_bucket")
    ]
    assert buckets[0] == "1.0"
    assert buckets[-2:] == ["1024.0", "+Inf"]


def test_gateways_in_one_process_keep_their_own_series() -> None:
    first = GatewayMetrics("CICA", counterparties=["SCO-RATS"], message_types=TYPES)
    second = GatewayMetrics("SCO-RATS", counterparties=["CICA"], message_types=TYPES)

    first.record_outcome("outbound", "information.share", "SCO-RATS", "forwarded")

    labels = {"direction": "outbound", "type": "information.share", "outcome": "forwarded"}
    assert (
        first.registry.get_sample_value(
            "gateway_messages_total", {**labels, "counterparty": "SCO-RATS"}
        )
        == 1
    )
    assert (
        second.registry.get_sample_value(
            "gateway_messages_total", {**labels, "counterparty": "CICA"}
        )
        == 0
    )
    assert REGISTRY.get_sample_value("gateway_up") is None


def test_each_counterparty_inbound_queue_is_watched() -> None:
    metrics = _metrics()
    assert metrics.queues[-2:] == ("gw.inbound.SCO-RATS", "gw.inbound.UNOCT")
    for queue in metrics.queues:
        assert metrics.registry.get_sample_value("gateway_backlog_messages", {"queue": queue}) == 0
