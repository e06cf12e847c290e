"""The shared contracts of the liaison gateway: models, registry, parsing, generated schemas.

Pure: no I/O besides ``contracts.export``, which reads and writes the generated files.
See ``contracts/README.md`` for the contract itself.
"""

from contracts.attachments import MAX_ATTACHMENT_BYTES, MAX_ATTACHMENTS_BYTES, Attachment
from contracts.bodies import (
    Authorization,
    ChainPoint,
    CheckpointV1,
    ConsentDecisionV1,
    ConsentRequestV1,
    ConsentRevocationV1,
    ConsentScope,
    InformationRequestV1,
    InformationShareV1,
    LiaisonAssignmentV1,
    MeetingInvitationV1,
    MeetingMinutesV1,
    Officer,
    Participant,
    ReceiptV1,
    SideEvent,
    WorkingGroupEstablishV1,
    WorkingGroupProposalV1,
)
from contracts.envelope import Envelope, Originator, Signature
from contracts.errors import ERROR_CODES, JSON_SCHEMA_BLIND_CODES, ContractError
from contracts.frame import (
    FRAME_VERSION,
    MAX_FRAME_ENVELOPES,
    FrameLimits,
    encode_frame,
    parse_frame,
)
from contracts.parsing import (
    MAX_DOCUMENT_BYTES,
    decode_json,
    parse_envelope,
    parse_status,
    parse_submission,
)
from contracts.registry import (
    LATEST_VERSION,
    MessageSpec,
    all_specs,
    latest_version,
    message_types,
    spec_for,
)
from contracts.status import STATUSES, RecordResult, Status, StatusEvent
from contracts.submission import Handling, Submission
from contracts.text import BilingualText, FormalText

__all__ = [
    "ERROR_CODES",
    "FRAME_VERSION",
    "JSON_SCHEMA_BLIND_CODES",
    "LATEST_VERSION",
    "MAX_ATTACHMENTS_BYTES",
    "MAX_ATTACHMENT_BYTES",
    "MAX_DOCUMENT_BYTES",
    "MAX_FRAME_ENVELOPES",
    "STATUSES",
    "Attachment",
    "Authorization",
    "BilingualText",
    "ChainPoint",
    "CheckpointV1",
    "ConsentDecisionV1",
    "ConsentRequestV1",
    "ConsentRevocationV1",
    "ConsentScope",
    "ContractError",
    "Envelope",
    "FormalText",
    "FrameLimits",
    "Handling",
    "InformationRequestV1",
    "InformationShareV1",
    "LiaisonAssignmentV1",
    "MeetingInvitationV1",
    "MeetingMinutesV1",
    "MessageSpec",
    "Officer",
    "Originator",
    "Participant",
    "ReceiptV1",
    "RecordResult",
    "SideEvent",
    "Signature",
    "Status",
    "StatusEvent",
    "Submission",
    "WorkingGroupEstablishV1",
    "WorkingGroupProposalV1",
    "all_specs",
    "decode_json",
    "encode_frame",
    "latest_version",
    "message_types",
    "parse_envelope",
    "parse_frame",
    "parse_status",
    "parse_submission",
    "spec_for",
]
