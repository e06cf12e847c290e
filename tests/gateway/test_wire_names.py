"""Wire names are written once, in contracts.amqp: the gateway spells none of them itself."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import gateway
from contracts import amqp

WIRE_NAMES = frozenset(
    value
    for name, value in vars(amqp).items()
    if name.isupper() and isinstance(value, str) and value.startswith(("gw.", "x-gw-", "app"))
)


def _string_constants(path: Path) -> Iterator[tuple[int, str]]:
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            yield node.lineno, node.value


def test_the_contract_defines_the_names_the_gateway_uses() -> None:
    assert {"gw.submit", "gw.control", "x-gw-replay-of", "application/json"} <= WIRE_NAMES


def test_no_gateway_module_spells_a_wire_name() -> None:
    spelled = [
        f"{path.relative_to(Path(gateway.__file__).parent)}:{line}: {value}"
        for path in sorted(Path(gateway.__file__).parent.rglob("*.py"))
        for line, value in _string_constants(path)
        if value in WIRE_NAMES
    ]
    assert spelled == []
