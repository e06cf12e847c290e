"""Checks shared by submissions and envelopes: a known (type, version) and a valid body.

Both keep ``body`` as the plain JSON object (signatures cover the exact JSON) and validate it
against the registry's body model for their (type, version).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationError, ValidationInfo

from contracts.errors import MISSING_FIELD, UNKNOWN_TYPE, UNKNOWN_VERSION, describe, fail, join_path
from contracts.registry import MessageSpec, spec_for, versions_of


def known_type(value: str) -> str:
    """Field validator body for ``type``."""
    if not versions_of(value):
        raise fail(UNKNOWN_TYPE, f"unknown message type {value!r}")
    return value


def known_version(value: int, info: ValidationInfo) -> int:
    """Field validator body for ``version``; silent when ``type`` itself failed."""
    message_type = info.data.get("type")
    if message_type is not None and value not in versions_of(message_type):
        known = ", ".join(str(v) for v in versions_of(message_type))
        raise fail(UNKNOWN_VERSION, f"{message_type!r} has no version {value} (known: {known})")
    return value


def require_officer(spec: MessageSpec, officer: str | None, field: str) -> None:
    """Types with ``needs_officer`` must name the officer responsible."""
    if spec.needs_officer and officer is None:
        raise fail(MISSING_FIELD, f"{spec.type!r} must name its liaison officer", field=field)


def validate_body(message_type: str, version: int, body: dict[str, Any]) -> BaseModel:
    """The typed body, or a pydantic error whose field path starts with ``body``."""
    spec = spec_for(message_type, version)
    try:
        return spec.body.model_validate(body)
    except ValidationError as exc:
        code, field, detail = describe(exc.errors(include_url=False)[0])
        raise fail(code, detail, field=join_path("body", field)) from None
