"""The base model and the scalar types every contract model is built from.

Models validate in pydantic's strict mode against already-decoded JSON (``json.loads``), so the
few JSON shapes strict mode would refuse in Python are converted first: arrays become tuples,
RFC 3339 strings become ``datetime``/``date``. Each type's JSON Schema states the same rule as
its validator, so non-Python consumers get the exact contract from the generated schemas.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Annotated, Any, Final

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema

from contracts.errors import INVALID_VALUE, fail


class ContractModel(BaseModel):
    """Strict, closed, immutable: unknown fields are errors, values are never coerced."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


def _as_tuple(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


# A JSON array as an immutable tuple; put it after any Field(max_length=...) in Annotated.
AS_TUPLE: Final = BeforeValidator(_as_tuple)

TIMESTAMP_PATTERN: Final = (
    r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
    r"T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,9})?"
    r"(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$"
)
DATE_PATTERN: Final = r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$"
_TIMESTAMP_RE: Final = re.compile(TIMESTAMP_PATTERN)
_DATE_RE: Final = re.compile(DATE_PATTERN)


def _timestamp(value: Any) -> Any:
    if isinstance(value, str):
        if _TIMESTAMP_RE.fullmatch(value) is None:
            raise fail(
                INVALID_VALUE,
                "invalid value: expected an RFC 3339 date-time with an offset, "
                "such as 2026-03-01T09:30:00Z",
            )
        try:
            value = datetime.fromisoformat(value)
        except ValueError as exc:
            raise fail(INVALID_VALUE, f"invalid value: {exc}") from None
    if isinstance(value, datetime):
        if value.utcoffset() is None:
            raise fail(INVALID_VALUE, "invalid value: a date-time needs a UTC offset")
        return value.astimezone(UTC)
    return value


def _calendar_date(value: Any) -> Any:
    if isinstance(value, str):
        if _DATE_RE.fullmatch(value) is None:
            raise fail(INVALID_VALUE, "invalid value: expected a date such as 2026-03-01")
        try:
            return date.fromisoformat(value)
        except ValueError as exc:
            raise fail(INVALID_VALUE, f"invalid value: {exc}") from None
    return value


Timestamp = Annotated[
    datetime,
    BeforeValidator(_timestamp),
    WithJsonSchema({"type": "string", "format": "date-time", "pattern": TIMESTAMP_PATTERN}),
]
"""RFC 3339 date-time with an offset (upper-case T and Z); held and written in UTC with Z."""

CalendarDate = Annotated[
    date,
    BeforeValidator(_calendar_date),
    WithJsonSchema({"type": "string", "format": "date", "pattern": DATE_PATTERN}),
]
"""RFC 3339 full-date, YYYY-MM-DD."""

PARTY_ID_PATTERN: Final = r"^[A-Z][A-Z0-9-]{1,31}$"
ENVELOPE_ID_PATTERN: Final = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
BASE64_PATTERN: Final = r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$"

PartyId = Annotated[str, Field(pattern=PARTY_ID_PATTERN, examples=["CICA", "SCO-RATS"])]
"""A Party: an upper-case letter, then 1-31 upper-case letters, digits or hyphens."""

EnvelopeId = Annotated[str, Field(pattern=ENVELOPE_ID_PATTERN)]
"""An envelope id: a UUID (version 7 when the gateway makes it), lower-case canonical form."""

OfficerId = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
"""A liaison officer on the roster: 1-64 letters, digits, dot, underscore, hyphen."""

Token = Annotated[str, Field(pattern=r"^[!-~]{1,128}$")]
"""A machine reference (correlation id, key id, ...): 1-128 printable ASCII, no spaces."""

SubmissionId = Annotated[str, Field(min_length=1, max_length=255)]
"""The AMQP ``message_id`` of a submission (an AMQP short string)."""

Label = Annotated[str, Field(max_length=200, pattern=r"\S")]
"""A short human string (name, place, role) with at least one non-space character."""

Sha256Hex = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
"""A SHA-256 digest: 64 lower-case hexadecimal digits."""
