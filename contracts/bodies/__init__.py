"""One body model per message type and version."""

from contracts.bodies.checkpoint import ChainPoint, CheckpointV1
from contracts.bodies.common import Authorization, AuthorizedBody, Participant, SideEvent
from contracts.bodies.consent import (
    ConsentDecisionV1,
    ConsentRequestV1,
    ConsentRevocationV1,
    ConsentScope,
)
from contracts.bodies.information import InformationRequestV1, InformationShareV1
from contracts.bodies.liaison import LiaisonAssignmentV1, Officer
from contracts.bodies.meeting import MeetingInvitationV1, MeetingMinutesV1
from contracts.bodies.receipt import ReceiptV1
from contracts.bodies.working_group import WorkingGroupEstablishV1, WorkingGroupProposalV1

__all__ = [
    "Authorization",
    "AuthorizedBody",
    "ChainPoint",
    "CheckpointV1",
    "ConsentDecisionV1",
    "ConsentRequestV1",
    "ConsentRevocationV1",
    "ConsentScope",
    "InformationRequestV1",
    "InformationShareV1",
    "LiaisonAssignmentV1",
    "MeetingInvitationV1",
    "MeetingMinutesV1",
    "Officer",
    "Participant",
    "ReceiptV1",
    "SideEvent",
    "WorkingGroupEstablishV1",
    "WorkingGroupProposalV1",
]
