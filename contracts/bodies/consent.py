"""`consent.*`: the providing Party's prior consent to transmit its information to third
parties ("may not be transmitted to third parties without the prior consent of the providing
Party"). These are the shapes; the gateway's consent registry gives them their effect."""

from __future__ import annotations

from typing import Annotated, Final, Literal, Self

from pydantic import ConfigDict, Field, model_validator

from contracts.bodies.common import Recipients
from contracts.errors import INVALID_VALUE, MISSING_FIELD, fail
from contracts.text import BilingualText
from contracts.types import AS_TUPLE, ContractModel, EnvelopeId, PartyId, Timestamp, Token

MAX_SCOPE_ENVELOPES: Final = 1024
_SCOPE_KINDS: Final = ("envelope_ids", "correlation_id")


class ConsentScope(ContractModel):
    """What a consent covers: listed envelopes, or every envelope of a correlation thread.
    Exactly one of the two is given (the other is absent or null)."""

    model_config = ConfigDict(
        json_schema_extra={
            "oneOf": [
                {"required": ["envelope_ids"], "properties": {"envelope_ids": {"type": "array"}}},
                {
                    "required": ["correlation_id"],
                    "properties": {"correlation_id": {"type": "string"}},
                },
            ]
        }
    )

    envelope_ids: (
        Annotated[
            tuple[EnvelopeId, ...],
            Field(min_length=1, max_length=MAX_SCOPE_ENVELOPES),
            AS_TUPLE,
        ]
        | None
    ) = Field(default=None, description="Ids of the envelopes covered.")
    correlation_id: Token | None = Field(
        default=None, description="Every envelope with this `correlation_id` is covered."
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        given = [kind for kind in _SCOPE_KINDS if getattr(self, kind) is not None]
        if not given:
            raise fail(MISSING_FIELD, "scope needs 'envelope_ids' or 'correlation_id'")
        if len(given) > 1:
            raise fail(INVALID_VALUE, "scope takes 'envelope_ids' or 'correlation_id', not both")
        return self


class ConsentRequestV1(ContractModel):
    """Ask the providing Party to consent to transmitting its information to `recipients`."""

    provider: PartyId = Field(description="The Party asked: the provider of the information.")
    scope: ConsentScope
    recipients: Recipients
    purpose: BilingualText = Field(description="Why the information would be transmitted.")


class ConsentDecisionV1(ContractModel):
    """The provider's answer; a granted decision lets the scope go to `recipients`."""

    request_id: EnvelopeId | None = Field(
        default=None, description="The `consent.request` envelope answered, if any."
    )
    decision: Literal["granted", "denied"]
    scope: ConsentScope
    recipients: Recipients
    expires_at: Timestamp | None = Field(
        default=None, description="End of a granted consent; null means until revoked."
    )
    conditions: BilingualText | None = Field(
        default=None, description="Conditions attached to the consent."
    )


class ConsentRevocationV1(ContractModel):
    """Withdraw a consent given earlier, from now on."""

    decision_id: EnvelopeId = Field(description="The `consent.decision` envelope revoked.")
    reason: BilingualText | None = None
