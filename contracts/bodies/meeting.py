"""`meeting.*`: activity iv, "joint working meetings and consultations, including on the side
lines of events organised by international and regional organizations and forums"."""

from __future__ import annotations

from pydantic import Field

from contracts.bodies.common import Authorization, AuthorizedBody, Participants, SideEvent
from contracts.text import BilingualText, FormalText
from contracts.types import CalendarDate, Label


class MeetingInvitationV1(AuthorizedBody):
    """An invitation to a joint working meeting or consultation."""

    title: BilingualText
    date: CalendarDate = Field(description="Day of the meeting.")
    place: Label = Field(description="Where it is held (city, venue).")
    side_event: SideEvent | None = Field(
        default=None, description="The event on whose side lines it is held, if any."
    )
    agenda: BilingualText
    participants: Participants = ()
    authorization: Authorization


class MeetingMinutesV1(AuthorizedBody):
    """The minutes of a joint meeting (a formal document: both languages)."""

    title: FormalText
    date: CalendarDate = Field(description="Day of the meeting.")
    place: Label = Field(description="Where it was held (city, venue).")
    side_event: SideEvent | None = Field(
        default=None, description="The event on whose side lines it was held, if any."
    )
    text: FormalText = Field(description="The minutes.")
    participants: Participants = ()
    authorization: Authorization
