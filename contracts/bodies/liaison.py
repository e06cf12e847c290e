"""`liaison.assignment`: activity i, "assign liaison officers to maintain communications"."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, model_validator

from contracts.bodies.common import Authorization, AuthorizedBody
from contracts.errors import INCONSISTENT, fail
from contracts.types import CalendarDate, ContractModel, Label, OfficerId


class Officer(ContractModel):
    """A liaison officer as kept on the roster of both Parties."""

    id: OfficerId = Field(description="Roster id; submissions name their officer by it.")
    name: Label = Field(description="Full name.")
    role: Label = Field(description="Position or role.")
    contact: Label = Field(description="How to reach the officer (e-mail, telephone).")


class LiaisonAssignmentV1(AuthorizedBody):
    """Assign an officer to the roster, or withdraw one, from `valid_from` on."""

    action: Literal["assign", "withdraw"] = Field(
        description="`assign` adds or updates the officer; `withdraw` removes them."
    )
    officer: Officer
    valid_from: CalendarDate = Field(description="First day the action applies.")
    valid_to: CalendarDate | None = Field(
        default=None, description="Last day of an assignment; null means open-ended."
    )
    authorization: Authorization

    @model_validator(mode="after")
    def _date_range(self) -> Self:
        if self.valid_to is not None and self.valid_to < self.valid_from:
            raise fail(INCONSISTENT, "valid_to is before valid_from", field="valid_to")
        return self
