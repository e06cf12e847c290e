"""The Prometheus files pass promtool, and every alert is unit-tested both ways."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import generate_latest

from gateway.metrics import GatewayMetrics

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
PROMETHEUS = DEPLOY / "prometheus"
RULES = PROMETHEUS / "rules" / "gateway.rules.yml"
RULE_TESTS = PROMETHEUS / "tests" / "gateway.rules.test.yml"
CONFIGS = [PROMETHEUS / "prometheus.yml", DEPLOY / "docker" / "prometheus.yml"]

REQUIRED_ALERTS = {
    "CounterpartyDown",
    "ReceiptsOverdue",
    "QuarantineGrowing",
    "RejectionRateSpike",
    "BacklogGrowing",
    "SigningKeyExpiringSoon",
    "GatewayDown",
    "InboundRateLimited",
    "CopiesRefused",
}


def _promtool(promtool: str, *args: str) -> str:
    result = subprocess.run(
        [promtool, *args], capture_output=True, text=True, timeout=60, check=False
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, (
        f"promtool {' '.join(args)} exited {result.returncode}:\n{output}"
    )
    return output


def _load(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _alerts() -> dict[str, dict[str, Any]]:
    return {
        rule["alert"]: rule
        for group in _load(RULES)["groups"]
        for rule in group["rules"]
        if "alert" in rule
    }


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: str(p.relative_to(DEPLOY)))
def test_config_is_valid(promtool: str, config: Path) -> None:
    assert "SUCCESS" in _promtool(promtool, "check", "config", str(config))


def test_local_config_scrapes_both_gateways_with_their_party() -> None:
    config = _load(PROMETHEUS / "prometheus.yml")
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "liaison-gateway"]
    targets = {
        target: group["labels"]["party"]
        for group in job["static_configs"]
        for target in group["targets"]
    }
    assert targets == {"127.0.0.1:9101": "CICA", "127.0.0.1:9102": "SCO-RATS"}
    assert any(RULES.match(f"{PROMETHEUS}/{pattern}") for pattern in config["rule_files"])


def test_rules_are_valid(promtool: str) -> None:
    assert "SUCCESS" in _promtool(promtool, "check", "rules", str(RULES))


def test_rule_unit_tests_pass(promtool: str) -> None:
    assert "SUCCESS" in _promtool(promtool, "test", "rules", str(RULE_TESTS))


def test_every_alert_has_a_firing_and_a_silent_test_case() -> None:
    alerts = set(_alerts())
    assert alerts >= REQUIRED_ALERTS
    cases = [
        case for test in _load(RULE_TESTS)["tests"] for case in test.get("alert_rule_test", [])
    ]
    firing = {case["alertname"] for case in cases if case.get("exp_alerts")}
    silent = {case["alertname"] for case in cases if not case.get("exp_alerts")}
    assert alerts - firing == set(), "alerts without a test where they fire"
    assert alerts - silent == set(), "alerts without a test where they stay silent"
    assert (firing | silent) - alerts == set(), "tests for alerts that do not exist"


@pytest.mark.parametrize("name", sorted(_alerts()))
def test_alert_says_what_and_how_bad(name: str) -> None:
    rule = _alerts()[name]
    assert rule["labels"]["severity"] in {"critical", "warning"}
    assert rule["annotations"]["summary"].strip()
    assert len(rule["annotations"]["description"].split()) >= 10


def test_exported_metrics_pass_promtool_lint(promtool: str) -> None:
    metrics = GatewayMetrics(
        "CICA", counterparties=["SCO-RATS", "UNOCT"], message_types=["information.share"]
    )
    metrics.record_outcome("outbound", "information.share", "SCO-RATS", "rejected", "schema.bad")
    metrics.record_outcome("inbound", "information.share", "SCO-RATS", "quarantined", "consent.x")
    metrics.observe_end_to_end("outbound", "SCO-RATS", 0.02)
    metrics.archive_batch_size.observe(64)
    metrics.archive_write_seconds.observe(0.003)
    metrics.signing_key_expiry.labels("CICA-2026-1").set(1_800_000_000)
    exposition = generate_latest(metrics.registry).decode()

    result = subprocess.run(
        [promtool, "check", "metrics"],
        input=exposition,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    problems = (result.stdout + result.stderr).strip().splitlines()
    assert problems == []
    assert result.returncode == 0
