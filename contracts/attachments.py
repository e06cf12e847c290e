"""Attachments: a file carried inline as base64, with its declared size and SHA-256.

The declared size and hash travel with the content so the receiver (and the third-party rule,
which matches attachments by hash) can trust them: both are checked against the decoded bytes.
"""

from __future__ import annotations

import base64
import hashlib
import math
import re
from collections.abc import Sequence
from typing import Annotated, Final, Self

from pydantic import Field, field_validator, model_validator

from contracts.errors import (
    ATTACHMENT_BAD_BASE64,
    ATTACHMENT_HASH_MISMATCH,
    ATTACHMENT_SIZE_MISMATCH,
    ATTACHMENT_TOO_LARGE,
    fail,
)
from contracts.types import AS_TUPLE, BASE64_PATTERN, ContractModel, Sha256Hex

MAX_ATTACHMENT_BYTES: Final = 2 * 1024 * 1024
MAX_ATTACHMENTS_BYTES: Final = 4 * 1024 * 1024
MAX_ATTACHMENTS: Final = 16
MAX_ATTACHMENT_BASE64_CHARS: Final = 4 * math.ceil(MAX_ATTACHMENT_BYTES / 3)

_BASE64_RE: Final = re.compile(BASE64_PATTERN)


class Attachment(ContractModel):
    """A file, inline. `size` and `sha256` must describe the decoded `content` exactly."""

    name: str = Field(
        pattern=r"^[^/\\\x00-\x1f\x7f]{1,255}$",
        description="File name, 1-255 characters, no path separators or control characters. "
        "Informational: receivers must not use it as a path.",
    )
    media_type: str = Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,63}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,63}$",
        description="Media type without parameters, such as application/pdf.",
    )
    size: int = Field(
        ge=0,
        json_schema_extra={"maximum": MAX_ATTACHMENT_BYTES},
        description=f"Size in bytes of the decoded content, at most {MAX_ATTACHMENT_BYTES}.",
    )
    sha256: Sha256Hex = Field(description="SHA-256 of the decoded content, lower-case hex.")
    content: str = Field(
        json_schema_extra={"pattern": BASE64_PATTERN, "maxLength": MAX_ATTACHMENT_BASE64_CHARS},
        description="The bytes, standard base64 (RFC 4648 section 4) with padding, no line breaks.",
    )

    @field_validator("size")
    @classmethod
    def _size_limit(cls, value: int) -> int:
        if value > MAX_ATTACHMENT_BYTES:
            raise fail(
                ATTACHMENT_TOO_LARGE,
                f"attachment of {value} bytes exceeds the limit of {MAX_ATTACHMENT_BYTES}",
            )
        return value

    @field_validator("content")
    @classmethod
    def _base64(cls, value: str) -> str:
        if len(value) > MAX_ATTACHMENT_BASE64_CHARS:
            raise fail(
                ATTACHMENT_TOO_LARGE,
                f"content exceeds the limit of {MAX_ATTACHMENT_BYTES} bytes",
            )
        if _BASE64_RE.fullmatch(value) is None:
            raise fail(ATTACHMENT_BAD_BASE64, "content is not padded standard base64")
        return value

    @model_validator(mode="after")
    def _matches_content(self) -> Self:
        data = self.data()
        if len(data) != self.size:
            raise fail(
                ATTACHMENT_SIZE_MISMATCH,
                f"declared size {self.size} but the content has {len(data)} bytes",
                field="size",
            )
        if hashlib.sha256(data).hexdigest() != self.sha256:
            raise fail(
                ATTACHMENT_HASH_MISMATCH,
                "declared sha256 does not match the content",
                field="sha256",
            )
        return self

    def data(self) -> bytes:
        """The decoded content."""
        return base64.b64decode(self.content, validate=True)

    @classmethod
    def from_bytes(cls, name: str, media_type: str, data: bytes) -> Attachment:
        """An attachment for ``data``, with its size and hash computed."""
        return cls(
            name=name,
            media_type=media_type,
            size=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
            content=base64.b64encode(data).decode("ascii"),
        )


Attachments = Annotated[tuple[Attachment, ...], Field(max_length=MAX_ATTACHMENTS), AS_TUPLE]


def check_total(attachments: Sequence[Attachment], field: str = "attachments") -> None:
    """Refuse a message whose attachments together exceed MAX_ATTACHMENTS_BYTES."""
    total = sum(attachment.size for attachment in attachments)
    if total > MAX_ATTACHMENTS_BYTES:
        raise fail(
            ATTACHMENT_TOO_LARGE,
            f"attachments total {total} bytes, over the limit of {MAX_ATTACHMENTS_BYTES}",
            field=field,
        )
