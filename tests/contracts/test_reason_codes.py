"""Every reason code the gateway can emit is in the registry, and every registered code is in
both contract documents (contracts/README.md and asyncapi.yaml), issue 14."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import yaml

import contracts
import gateway
from contracts.reasons import REASON_CODES
from contracts.registry import message_types
from gateway.desk.actions import ACTIONS as OPERATOR_ACTIONS

ROOT = Path(contracts.__file__).parent
# The document generator names messages (frame.v1), it emits no reason.
GENERATOR = ("asyncapi.py", "asyncapi_channels.py")
SOURCES = [
    *Path(gateway.__file__).parent.rglob("*.py"),
    *(path for path in ROOT.rglob("*.py") if path.name not in GENERATOR),
]
# The families reason codes belong to; other dotted strings (field paths, metric names) are not
# reasons.
REASON = re.compile(
    r"^(schema|text|authorization|attachment|frame|submission|route|roster|processing|"
    r"signature|receipt|replay|consent|provenance|control|review)\.[a-z0-9_]+$"
)
LOG_METHODS = frozenset({"debug", "info", "warning", "error", "exception", "critical"})
# Template names (gateway/console/templates) look dotted too.
TEMPLATE = re.compile(r"\.html$")
# Archive record kinds, not reasons (gateway/workers/inbound.py).
ARCHIVE_KINDS = frozenset({"receipt.in", "receipt.out"})


def _log_events(tree: ast.AST) -> set[int]:
    """ids of the string nodes that name a structlog event (first argument of log.info ...)."""
    events = set()
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in LOG_METHODS
            and node.args
        ):
            events.add(id(node.args[0]))
    return events


def _dotted_strings(path: Path) -> Iterator[str]:
    tree = ast.parse(path.read_text(), str(path))
    events = _log_events(tree)
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in events
            and REASON.match(node.value)
            and not TEMPLATE.search(node.value)
        ):
            yield node.value


def emitted_codes() -> set[str]:
    found = {code for path in SOURCES for code in _dotted_strings(path)}
    return found - set(message_types()) - ARCHIVE_KINDS - OPERATOR_ACTIONS


def test_the_scan_finds_codes_of_every_origin() -> None:
    """The scan must see the codes it is meant to check, or the next test proves nothing."""
    found = emitted_codes()
    for code in (
        "schema.missing_field",
        "submission.reserved_type",
        "submission.routing_key_mismatch",
        "signature.bad",
        "receipt.overdue",
        "replay.not_replayable",
    ):
        assert code in found


def test_every_code_the_gateway_can_emit_is_registered() -> None:
    assert sorted(emitted_codes() - REASON_CODES) == []


def test_every_registered_code_is_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    cells = set(re.findall(r"^\| `([^`]+)` \|", readme, re.MULTILINE))
    listed = {cell for cell in cells if REASON.match(cell)} - set(message_types())
    assert sorted(REASON_CODES - listed) == []
    assert sorted(listed - REASON_CODES) == []


def test_every_registered_code_is_in_asyncapi() -> None:
    document = yaml.safe_load((ROOT / "asyncapi.yaml").read_text())
    for name in ("rejected", "quarantined"):
        header = document["components"]["messages"][name]["headers"]["properties"]["x-gw-reason"]
        assert set(header["enum"]) == REASON_CODES


def test_asyncapi_accepts_no_receipt_on_gw_submit() -> None:
    document = yaml.safe_load((ROOT / "asyncapi.yaml").read_text())
    submit = document["channels"]["submitExchange"]
    assert "receipt" not in submit["parameters"]["type"]["enum"]
    assert not [name for name in submit["messages"] if "receipt" in name]


def test_the_queue_name_rule_is_in_the_general_part_of_the_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    general = readme[: readme.index("## 12. Python")]
    assert "bo.<user>." in general
    assert "<system>.<status>.<type>" in general
