"""`working_group.*`: activity iii, "establish a joint working group to develop proposals"."""

from __future__ import annotations

from typing import Annotated, Self

from pydantic import Field, model_validator

from contracts.attachments import Attachments, check_total
from contracts.bodies.common import MAX_PARTICIPANTS, Authorization, AuthorizedBody, Participant
from contracts.text import FormalText
from contracts.types import AS_TUPLE, Token


class WorkingGroupEstablishV1(AuthorizedBody):
    """Establish a joint working group (a formal document: both languages)."""

    reference: Token = Field(
        description="The group's reference, e.g. JWG-2026-01; proposals name the group by it."
    )
    name: FormalText
    mandate: FormalText = Field(description="What the group is to develop proposals on.")
    members: Annotated[
        tuple[Participant, ...],
        Field(min_length=1, max_length=MAX_PARTICIPANTS, description="The group's members."),
        AS_TUPLE,
    ]
    authorization: Authorization


class WorkingGroupProposalV1(AuthorizedBody):
    """A proposal developed by a joint working group (a formal document: both languages)."""

    working_group: Token = Field(
        description="The `reference` of the group, as given in `working_group.establish`."
    )
    title: FormalText
    text: FormalText
    attachments: Attachments = ()
    authorization: Authorization

    @model_validator(mode="after")
    def _attachments_total(self) -> Self:
        check_total(self.attachments)
        return self
