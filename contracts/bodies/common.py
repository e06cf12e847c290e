"""Parts shared by several message bodies: authorization, participants, side events."""

from __future__ import annotations

from typing import Annotated, Any, Final

from pydantic import Field, model_validator

from contracts.errors import AUTHORIZATION_MISSING, fail
from contracts.types import AS_TUPLE, CalendarDate, ContractModel, Label, PartyId

MAX_PARTICIPANTS: Final = 256
MAX_RECIPIENTS: Final = 32


class Authorization(ContractModel):
    """The Member States' prior consent to the activity (Protocol: "with the prior consent of
    the Member States")."""

    reference: Label = Field(description="Reference of the consent document or decision.")
    granted_on: CalendarDate | None = Field(
        default=None, description="Date the consent was given, when known."
    )


class AuthorizedBody(ContractModel):
    """Base of the bodies for activities i, iii and iv, which need an `authorization`.

    A missing or null `authorization` gets its own code, checked before any other field,
    because it is a policy refusal rather than a malformed document.
    """

    @model_validator(mode="before")
    @classmethod
    def _authorized(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("authorization") is None:
            raise fail(
                AUTHORIZATION_MISSING,
                "this activity needs the Member States' prior consent: "
                "give its reference in 'authorization'",
                field="authorization",
            )
        return data


class Participant(ContractModel):
    """A person taking part, and the Party they represent."""

    party: PartyId = Field(description="The Party the person represents.")
    name: Label = Field(description="Full name.")
    role: Label | None = Field(default=None, description="Role or title, when useful.")


Participants = Annotated[tuple[Participant, ...], Field(max_length=MAX_PARTICIPANTS), AS_TUPLE]

Recipients = Annotated[
    tuple[PartyId, ...],
    Field(min_length=1, max_length=MAX_RECIPIENTS, description="One or more Parties."),
    AS_TUPLE,
]


class SideEvent(ContractModel):
    """The event on whose side lines a meeting is held."""

    name: Label = Field(description="Name of the event.")
    organiser: Label = Field(
        description="The international or regional organisation or forum organising it."
    )
