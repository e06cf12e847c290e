"""Contract errors: one stable, machine-readable code per rule, plus the field it concerns.

The codes are the ``x-gw-reason`` values on ``gw.rejected``; they never change meaning. Models
raise them inside pydantic as ``PydanticCustomError`` (see ``fail``) and ``parse_*`` turns the
first pydantic error into a ``ContractError`` (see ``from_validation_error``).
"""

from __future__ import annotations

from typing import Final

from pydantic import ValidationError
from pydantic_core import ErrorDetails, PydanticCustomError

MISSING_FIELD: Final = "schema.missing_field"
EXTRA_FIELD: Final = "schema.extra_field"
WRONG_TYPE: Final = "schema.wrong_type"
INVALID_VALUE: Final = "schema.invalid_value"
INCONSISTENT: Final = "schema.inconsistent"
TOO_LARGE: Final = "schema.too_large"
UNKNOWN_TYPE: Final = "schema.unknown_type"
UNKNOWN_VERSION: Final = "schema.unknown_version"
INVALID_JSON: Final = "schema.invalid_json"
NOT_AN_OBJECT: Final = "schema.not_an_object"
TEXT_EMPTY: Final = "text.empty"
TEXT_BILINGUAL_REQUIRED: Final = "text.bilingual_required"
AUTHORIZATION_MISSING: Final = "authorization.missing"
ATTACHMENT_HASH_MISMATCH: Final = "attachment.hash_mismatch"
ATTACHMENT_SIZE_MISMATCH: Final = "attachment.size_mismatch"
ATTACHMENT_TOO_LARGE: Final = "attachment.too_large"
ATTACHMENT_BAD_BASE64: Final = "attachment.bad_base64"
FRAME_INVALID: Final = "frame.invalid"

ERROR_CODES: Final[frozenset[str]] = frozenset(
    {
        MISSING_FIELD,
        EXTRA_FIELD,
        WRONG_TYPE,
        INVALID_VALUE,
        INCONSISTENT,
        TOO_LARGE,
        UNKNOWN_TYPE,
        UNKNOWN_VERSION,
        INVALID_JSON,
        NOT_AN_OBJECT,
        TEXT_EMPTY,
        TEXT_BILINGUAL_REQUIRED,
        AUTHORIZATION_MISSING,
        ATTACHMENT_HASH_MISMATCH,
        ATTACHMENT_SIZE_MISMATCH,
        ATTACHMENT_TOO_LARGE,
        ATTACHMENT_BAD_BASE64,
        FRAME_INVALID,
    }
)

# Rules a JSON Schema validator cannot check, so a document breaking only these passes the
# generated schemas: the decoded attachment content against its declared size and hash, and
# relations between two fields (a date range). contracts/README.md lists the same codes.
JSON_SCHEMA_BLIND_CODES: Final[frozenset[str]] = frozenset(
    {ATTACHMENT_HASH_MISMATCH, ATTACHMENT_SIZE_MISMATCH, INCONSISTENT}
)

_MISSING_TYPES = frozenset({"missing", "missing_argument", "missing_keyword_only_argument"})
_EXTRA_TYPES = frozenset({"extra_forbidden", "unexpected_keyword_argument"})
_TOO_LARGE_TYPES = frozenset({"string_too_long", "too_long", "bytes_too_long"})
_WRONG_TYPE_TYPES = frozenset(
    {"none_required", "int_from_float", "is_instance_of", "is_subclass_of", "model_attributes_type"}
)


class ContractError(Exception):
    """A document that breaks the contract: ``code`` is stable, ``message`` names the field."""

    def __init__(self, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.field = field
        self.message = message

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"ContractError(code={self.code!r}, field={self.field!r}, message={self.message!r})"

    def __reduce__(self) -> tuple[type[ContractError], tuple[str, str, str | None]]:
        return (type(self), (self.code, self.message, self.field))


def make_error(code: str, detail: str, field: str | None = None) -> ContractError:
    """Build a ContractError whose message starts with the field it concerns."""
    return ContractError(code, f"{field}: {detail}" if field else detail, field)


def fail(code: str, detail: str, field: str | None = None) -> PydanticCustomError:
    """An error for a validator to raise; ``field`` is relative to where the validator runs."""
    context: dict[str, str] = {"detail": detail}
    if field:
        context["field"] = field
    return PydanticCustomError(code, "{detail}", context)


def join_path(*parts: str | int | None) -> str | None:
    """Dotted path of the non-empty parts, or None when nothing is left."""
    kept = [str(part) for part in parts if part is not None and part != ""]
    return ".".join(kept) or None


def describe(error: ErrorDetails) -> tuple[str, str | None, str]:
    """The (code, dotted field, human detail) of one pydantic error."""
    kind = error["type"]
    context = error.get("ctx") or {}
    field = join_path(*error["loc"], context.get("field"))
    if kind in ERROR_CODES:
        return kind, field, str(context.get("detail", error["msg"]))
    if kind in _MISSING_TYPES:
        return MISSING_FIELD, field, "required field is missing"
    if kind in _EXTRA_TYPES:
        return EXTRA_FIELD, field, "field is not part of the contract"
    if kind in _TOO_LARGE_TYPES:
        return TOO_LARGE, field, f"too large: {error['msg']}"
    if kind.endswith("_type") or kind in _WRONG_TYPE_TYPES:
        return WRONG_TYPE, field, f"wrong type: {error['msg']}"
    return INVALID_VALUE, field, f"invalid value: {error['msg']}"


def from_validation_error(exc: ValidationError) -> ContractError:
    """The ContractError for the first error pydantic reports (pydantic orders them by field)."""
    code, field, detail = describe(exc.errors(include_url=False)[0])
    return make_error(code, detail, field)
