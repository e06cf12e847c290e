"""Generated files of the contract, checked in: JSON Schemas and the AsyncAPI document.

``generate`` is pure and deterministic; ``write`` and ``stale`` compare it with the files
under a root directory (the one holding the ``contracts`` package, i.e. the repository root).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Final

import yaml

from contracts.asyncapi import asyncapi_document
from contracts.json_schemas import all_schemas

PACKAGE: Final = "contracts"
DEFAULT_ROOT: Final = Path(__file__).resolve().parent.parent
"""The directory holding this ``contracts`` package (the repository root in a checkout)."""


def _json(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def _yaml(document: dict[str, Any]) -> str:
    text = yaml.safe_dump(
        document, sort_keys=True, allow_unicode=True, default_flow_style=False, width=100
    )
    return text if text.endswith("\n") else text + "\n"


def generate() -> dict[str, str]:
    """Every generated file: path relative to the root -> text."""
    files = {f"{PACKAGE}/schemas/{name}": _json(schema) for name, schema in all_schemas().items()}
    files[f"{PACKAGE}/asyncapi.yaml"] = _yaml(asyncapi_document())
    return dict(sorted(files.items()))


def stale(root: Path) -> list[str]:
    """Relative paths of generated files missing or different under ``root``."""
    return [
        relative
        for relative, text in generate().items()
        if not (root / relative).is_file() or (root / relative).read_text("utf-8") != text
    ]


def write(root: Path) -> list[Path]:
    """Write the generated files under ``root``; return those that changed."""
    changed: list[Path] = []
    for relative, text in generate().items():
        path = root / relative
        if path.is_file() and path.read_text("utf-8") == text:
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        changed.append(path)
    return changed
