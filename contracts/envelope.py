"""The envelope: a submission stamped, signed and sent by a gateway to its peer."""

from __future__ import annotations

from typing import Any, Literal, Self

from pydantic import BaseModel, Field, PrivateAttr, ValidationInfo, field_validator, model_validator

from contracts.registry import spec_for
from contracts.submission import DerivedFrom, Handling
from contracts.typed_body import known_type, known_version, require_officer, validate_body
from contracts.types import (
    BASE64_PATTERN,
    ContractModel,
    EnvelopeId,
    Label,
    OfficerId,
    PartyId,
    SubmissionId,
    Timestamp,
    Token,
)


class Originator(ContractModel):
    """Who sent the message: stamped by the originating gateway, never by the submitter."""

    party: PartyId = Field(description="The originating Party (the provider).")
    system: Label = Field(description="The back-office system: its broker user name.")
    officer: OfficerId | None = Field(description="The liaison officer responsible, if any.")
    submission_id: SubmissionId = Field(description="The submission's AMQP message_id.")


class Signature(ContractModel):
    """Ed25519 signature over the RFC 8785 canonical JSON of the envelope without `signature`."""

    alg: Literal["ed25519"]
    key_id: Token = Field(description="The signing key, e.g. CICA-2026-1.")
    value: str = Field(
        max_length=512, pattern=BASE64_PATTERN, description="The signature, standard base64."
    )


class Envelope(ContractModel):
    """What one gateway sends the other (and delivers locally), one per message."""

    id: EnvelopeId = Field(description="Envelope id, a UUIDv7 made by the originating gateway.")
    type: str = Field(description="Message type.")
    version: int = Field(description="Version of the message type.")
    originator: Originator
    recipient: PartyId = Field(description="The Party the message is for.")
    created_at: Timestamp = Field(description="When the originating gateway made it (UTC).")
    correlation_id: Token | None = Field(description="Thread id, from the submission.")
    in_reply_to: EnvelopeId | None = Field(description="The envelope this one answers.")
    derived_from: DerivedFrom
    handling: Handling
    body: dict[str, Any] = Field(description="The type-specific body.")
    signature: Signature | None = Field(
        default=None, description="Absent only before signing; required on the wire."
    )

    _typed: BaseModel = PrivateAttr()

    @field_validator("type")
    @classmethod
    def _known_type(cls, value: str) -> str:
        return known_type(value)

    @field_validator("version")
    @classmethod
    def _known_version(cls, value: int, info: ValidationInfo) -> int:
        return known_version(value, info)

    @model_validator(mode="after")
    def _typed_body(self) -> Self:
        spec = spec_for(self.type, self.version)
        require_officer(spec, self.originator.officer, "originator.officer")
        self._typed = validate_body(self.type, self.version, self.body)
        return self

    def typed_body(self) -> BaseModel:
        """The body as its registry model (e.g. ``InformationShareV1``)."""
        return self._typed
