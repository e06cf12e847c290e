"""The submission: what a back-office system publishes to ``gw.submit``."""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal, Self

from pydantic import BaseModel, Field, PrivateAttr, ValidationInfo, field_validator, model_validator

from contracts.registry import spec_for
from contracts.typed_body import known_type, known_version, require_officer, validate_body
from contracts.types import AS_TUPLE, ContractModel, EnvelopeId, OfficerId, PartyId, Token

MAX_DERIVED_FROM: Final = 256
MAX_PRE_APPROVED: Final = 32

DerivedFrom = Annotated[
    tuple[EnvelopeId, ...],
    Field(
        max_length=MAX_DERIVED_FROM,
        description="Ids of the received or sent envelopes this message is based on. The "
        "third-party rule follows them to find whose information the message carries.",
    ),
    AS_TUPLE,
]


class Handling(ContractModel):
    """How the recipient may pass the message on (the third-party rule)."""

    onward: Literal["consent-required"] = Field(
        default="consent-required",
        description="Onward transmission needs the provider's prior consent.",
    )
    pre_approved: Annotated[
        tuple[PartyId, ...],
        Field(
            max_length=MAX_PRE_APPROVED,
            description="Third parties the provider consents to in advance, for this message.",
        ),
        AS_TUPLE,
    ] = ()


class SubmissionFields(ContractModel):
    """Every field of a submission except its body (shared with the generated schemas)."""

    type: str = Field(description="Message type, e.g. information.share.")
    version: int = Field(default=1, description="Version of the message type.")
    recipient: PartyId = Field(description="The Party the message is for.")
    officer: OfficerId | None = Field(
        default=None,
        description="The liaison officer responsible; required for the types that need one.",
    )
    correlation_id: Token | None = Field(
        default=None, description="Thread id chosen by the sender; replies repeat it."
    )
    in_reply_to: EnvelopeId | None = Field(
        default=None, description="The envelope this message answers."
    )
    derived_from: DerivedFrom = ()
    handling: Handling = Handling()


class Submission(SubmissionFields):
    """A message as submitted by a back-office system; the gateway turns it into an envelope.

    ``body`` stays the plain JSON object; it is validated against the body model of
    ``(type, version)``, available as ``typed_body()``.
    """

    body: dict[str, Any] = Field(description="The type-specific body.")

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
        require_officer(spec_for(self.type, self.version), self.officer, "officer")
        self._typed = validate_body(self.type, self.version, self.body)
        return self

    def typed_body(self) -> BaseModel:
        """The body as its registry model (e.g. ``InformationShareV1``)."""
        return self._typed
