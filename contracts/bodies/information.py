"""`information.share` and `information.request`: activity ii, "exchange of information"."""

from __future__ import annotations

from typing import Annotated, Final, Self

from pydantic import Field, model_validator

from contracts.attachments import Attachments, check_total
from contracts.text import BilingualText
from contracts.types import AS_TUPLE, ContractModel, Label

MAX_TOPICS: Final = 32

Topics = Annotated[
    tuple[Label, ...],
    Field(max_length=MAX_TOPICS, description="Free keywords for routing and search."),
    AS_TUPLE,
]


class _InformationBody(ContractModel):
    subject: BilingualText = Field(description="Subject line.")
    text: BilingualText = Field(description="The information, or the question.")
    topics: Topics = ()
    attachments: Attachments = ()

    @model_validator(mode="after")
    def _attachments_total(self) -> Self:
        check_total(self.attachments)
        return self


class InformationShareV1(_InformationBody):
    """Information one Party provides to the other on an issue of mutual interest."""


class InformationRequestV1(_InformationBody):
    """A request for information; the answer is an `information.share` with `in_reply_to`."""
