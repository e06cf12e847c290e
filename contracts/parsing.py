"""Entry points from bytes and decoded JSON to validated models; they raise ContractError only."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final, NoReturn, TypeVar

from pydantic import BaseModel, ValidationError

from contracts.envelope import Envelope
from contracts.errors import (
    INVALID_JSON,
    NOT_AN_OBJECT,
    TOO_LARGE,
    ContractError,
    from_validation_error,
    make_error,
)
from contracts.registry import message_types
from contracts.status import StatusEvent
from contracts.submission import Submission

MAX_DOCUMENT_BYTES: Final = 8 * 1024 * 1024
"""Largest submission or status document accepted, in bytes of UTF-8 JSON."""

_Model = TypeVar("_Model", bound=BaseModel)


def no_constants(name: str) -> NoReturn:
    raise ValueError(f"{name} is not JSON")


def decode_json(data: bytes) -> Any:
    """Decode strict UTF-8 JSON (no BOM, no NaN/Infinity); ContractError schema.invalid_json."""
    try:
        return json.loads(data.decode("utf-8"), parse_constant=no_constants)
    except (ValueError, RecursionError) as exc:
        raise make_error(INVALID_JSON, f"not valid UTF-8 JSON: {exc}") from None


def _decode_object(data: bytes) -> dict[str, Any]:
    if len(data) > MAX_DOCUMENT_BYTES:
        raise make_error(
            TOO_LARGE, f"document of {len(data)} bytes exceeds {MAX_DOCUMENT_BYTES} bytes"
        )
    obj = decode_json(data)
    if not isinstance(obj, dict):
        raise make_error(NOT_AN_OBJECT, f"expected a JSON object, got {type(obj).__name__}")
    return obj


def validate(model: type[_Model], obj: Mapping[str, Any]) -> _Model:
    """Validate decoded JSON against a contract model; ContractError on the first problem."""
    if not isinstance(obj, Mapping):
        raise make_error(NOT_AN_OBJECT, f"expected a JSON object, got {type(obj).__name__}")
    try:
        return model.model_validate(obj if isinstance(obj, dict) else dict(obj))
    except ValidationError as exc:
        raise from_validation_error(exc) from None


def readable_type(data: bytes) -> str | None:
    """The registered message type a document names, even when it breaks the contract
    elsewhere; None when it names none. Only registered types, so that a rejected document
    cannot put arbitrary words in routing keys or metric labels."""
    try:
        obj = _decode_object(data)
    except ContractError:
        return None
    named = obj.get("type")
    return named if isinstance(named, str) and named in message_types() else None


def parse_submission(data: bytes) -> Submission:
    """A submission from the bytes of an AMQP message on ``gw.submit``."""
    return validate(Submission, _decode_object(data))


def parse_envelope(obj: Mapping[str, Any]) -> Envelope:
    """An envelope from its decoded JSON object (check the signature over ``obj`` first)."""
    return validate(Envelope, obj)


def parse_status(data: bytes) -> StatusEvent:
    """A status event from the bytes of an AMQP message on ``gw.status``."""
    return validate(StatusEvent, _decode_object(data))
