"""Every query of the Grafana dashboard (and of the alert rules) names only metrics that exist."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway.metrics import GatewayMetrics

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "liaison-gateway.json"
DATASOURCES = DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yaml"
DASHBOARD_PROVIDERS = DEPLOY / "grafana" / "provisioning" / "dashboards" / "liaison-gateway.yaml"
RULES = DEPLOY / "prometheus" / "rules" / "gateway.rules.yml"
COMPOSE = DEPLOY / "compose.yaml"

# Series Prometheus itself attaches to every target: not the gateway's to export.
PROMETHEUS_SYNTHETIC = frozenset({"up"})

# The series names each metric type puts on the wire (text format 0.0.4).
_SERIES_SUFFIXES = {
    "counter": ("_total",),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count"),
    "summary": ("", "_sum", "_count"),
    "info": ("_info",),
}

_KEYWORDS = frozenset(
    {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right",
     "offset", "bool", "inf", "nan"}
)  # fmt: skip
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_GROUPING = re.compile(
    r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", re.IGNORECASE
)
_TOKEN = re.compile(r"\d[\w.]*|[A-Za-z_:][\w:]*")
_GRAFANA_VARIABLES = {
    "$__rate_interval": "1m",
    "$__interval": "1m",
    "$__range": "1h",
    "$party": ".*",
}


def metric_names(expr: str) -> set[str]:
    """Metric names a PromQL expression selects; not functions, keywords or label names."""
    text = _STRING.sub('""', expr)
    text = re.sub(r"\{[^}]*\}", " ", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", " ", text)  # range and subquery selectors
    text = _GROUPING.sub(" ", text)
    names = set()
    for match in _TOKEN.finditer(text):
        token = match.group()
        if token[0].isdigit() or token.lower() in _KEYWORDS:
            continue
        if text[match.end() :].lstrip().startswith("("):
            continue  # a function or an aggregation
        names.add(token)
    return names


def exported_series_names() -> set[str]:
    """Series names of a fresh gateway's registry, by each metric family's type."""
    metrics = GatewayMetrics("CICA", counterparties=(), message_types=())
    return {
        family.name + suffix
        for family in metrics.registry.collect()
        for suffix in _SERIES_SUFFIXES[family.type]
    }


def recorded_names() -> set[str]:
    rules = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    return {
        rule["record"] for group in rules["groups"] for rule in group["rules"] if "record" in rule
    }


def _dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return loaded


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))


def dashboard_queries() -> list[tuple[str, str]]:
    """(where, expr) for every panel target and every query variable."""
    dashboard = _dashboard()
    queries = [
        (panel["title"], target["expr"])
        for panel in _panels(dashboard["panels"])
        for target in panel.get("targets", [])
    ]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            query = variable["query"]
            text = query["query"] if isinstance(query, dict) else query
            selector = re.fullmatch(r"label_values\((.+),\s*\w+\)", text)
            assert selector, f"variable {variable['name']}: unexpected query {text!r}"
            queries.append((f"variable {variable['name']}", selector.group(1)))
    return queries


def rule_queries() -> list[tuple[str, str]]:
    rules = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    return [
        (rule.get("alert") or rule["record"], rule["expr"])
        for group in rules["groups"]
        for rule in group["rules"]
    ]


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        (
            'histogram_quantile(0.95, sum by (le, party) (rate(a_seconds_bucket{party=~"$party"}'
            "[$__rate_interval])))",
            {"a_seconds_bucket"},
        ),
        ("sum(rate(b_total[5m])) by (type) / on (type) group_left(x) c", {"b_total", "c"}),
        ('d > bool 0 and e offset 5m unless f{g="h(i)"}', {"d", "e", "f"}),
        ("rec:ord:ed_rate5m > 1e3 or absent(j)", {"rec:ord:ed_rate5m", "j"}),
        ('label_replace(k, "dst", "$1", "src", "(.*)")', {"k"}),
    ],
)
def test_metric_names_finds_metrics_and_nothing_else(expr: str, expected: set[str]) -> None:
    assert metric_names(expr) == expected


def test_exported_names_follow_the_metric_types() -> None:
    exported = exported_series_names()
    assert {
        "gateway_messages_total",
        "gateway_end_to_end_latency_seconds_bucket",
        "gateway_archive_batch_size_count",
        "gateway_receipts_pending_overdue",
        "gateway_receipts_overdue_total",
        "gateway_build_info",
    } <= exported
    assert "gateway_up_count" not in exported
    assert "gateway_end_to_end_latency_seconds" not in exported  # a histogram has no bare series


def test_every_panel_has_a_query_on_the_provisioned_datasource() -> None:
    dashboard = _dashboard()
    assert "${DS_" not in DASHBOARD.read_text(encoding="utf-8")
    assert "__inputs" not in dashboard
    for panel in _panels(dashboard["panels"]):
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "prometheus"}, panel["title"]
        assert panel["targets"], f"panel {panel['title']!r} has no query"
        for target in panel["targets"]:
            assert target["expr"].strip(), panel["title"]
            assert target["datasource"]["uid"] == "prometheus", panel["title"]


@pytest.mark.parametrize(("where", "expr"), dashboard_queries() + rule_queries())
def test_query_names_only_exported_or_recorded_metrics(where: str, expr: str) -> None:
    known = exported_series_names() | recorded_names() | PROMETHEUS_SYNTHETIC
    names = metric_names(expr)
    assert names, f"{where}: no metric found in {expr!r}"
    assert names <= known, f"{where}: unknown metrics {sorted(names - known)}"


def test_dashboard_shows_what_operators_need() -> None:
    used = set().union(*(metric_names(expr) for _, expr in dashboard_queries()))
    assert {
        "gateway_messages_total",
        "gateway_end_to_end_latency_seconds_bucket",
        "gateway_backlog_messages",
        "gateway_receipts_pending",
        "gateway_receipts_pending_overdue",
        "gateway_consent_blocks_total",
        "gateway_rejections_total",
        "gateway_broker_connected",
    } <= used
    assert any("histogram_quantile" in expr for _, expr in dashboard_queries())


# Exported but not on the dashboard, and why.
NOT_ON_DASHBOARD = {
    "gateway_up": "the 'Gateway scraped' panel shows Prometheus's own up series",
}


def test_every_exported_metric_has_a_panel() -> None:
    used = set().union(*(metric_names(expr) for _, expr in dashboard_queries()))
    metrics = GatewayMetrics("CICA", counterparties=(), message_types=())
    families = {family.name: family.type for family in metrics.registry.collect()}
    unshown = {
        name
        for name, kind in families.items()
        if not any(name + suffix in used for suffix in _SERIES_SUFFIXES[kind])
    }
    assert unshown == set(NOT_ON_DASHBOARD)


def test_review_holds_have_a_panel() -> None:
    held = [where for where, expr in dashboard_queries() if 'outcome="held"' in expr]
    assert held == ["Held for review"]


def test_every_dashboard_query_is_valid_promql(promtool: str, tmp_path: Path) -> None:
    def substitute(expr: str) -> str:
        for variable, value in _GRAFANA_VARIABLES.items():
            expr = expr.replace(variable, value)
        assert "$" not in expr, f"unknown Grafana variable in {expr!r}"
        return expr

    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {"record": f"dashboard:query_{i}", "expr": substitute(expr)}
                    for i, (_, expr) in enumerate(dashboard_queries())
                ],
            }
        ]
    }
    path = tmp_path / "dashboard.rules.yml"
    path.write_text(yaml.safe_dump(rules), encoding="utf-8")

    result = subprocess.run(
        [promtool, "check", "rules", str(path)], capture_output=True, text=True, check=False
    )

    assert result.returncode == 0, result.stdout + result.stderr


def test_provisioning_matches_the_dashboard_and_compose() -> None:
    datasources = yaml.safe_load(DATASOURCES.read_text(encoding="utf-8"))["datasources"]
    assert [(d["uid"], d["type"]) for d in datasources] == [("prometheus", "prometheus")]
    (provider,) = yaml.safe_load(DASHBOARD_PROVIDERS.read_text(encoding="utf-8"))["providers"]
    grafana = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))["services"]["grafana"]
    mounts = dict(volume.split(":")[:2] for volume in grafana["volumes"])
    assert mounts["./grafana/dashboards"] == provider["options"]["path"]
    assert mounts["./grafana/provisioning"] == "/etc/grafana/provisioning"
