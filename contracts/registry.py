"""The registry: every (message type, version) of the contract and the body model it uses."""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from typing import Final

from pydantic import BaseModel

from contracts.bodies import (
    ConsentDecisionV1,
    ConsentRequestV1,
    ConsentRevocationV1,
    InformationRequestV1,
    InformationShareV1,
    LiaisonAssignmentV1,
    MeetingInvitationV1,
    MeetingMinutesV1,
    ReceiptV1,
    WorkingGroupEstablishV1,
    WorkingGroupProposalV1,
)
from contracts.errors import UNKNOWN_TYPE, UNKNOWN_VERSION, ContractError, make_error

LATEST_VERSION: Final = 1
"""The newest version any message type has in this release of the contract."""


@dataclass(frozen=True, slots=True)
class MessageSpec:
    """One message type at one version.

    ``needs_officer``: the submission must name an officer on the roster.
    ``needs_authorization``: the body carries the Member States' prior consent (activities
    i, iii, iv). ``formal``: a formal document, whose texts need both languages.
    """

    type: str
    version: int
    body: builtins.type[BaseModel]
    needs_officer: bool
    needs_authorization: bool
    formal: bool


_SPECS: Final = (
    MessageSpec("liaison.assignment", 1, LiaisonAssignmentV1, False, True, False),
    MessageSpec("information.share", 1, InformationShareV1, True, False, False),
    MessageSpec("information.request", 1, InformationRequestV1, True, False, False),
    MessageSpec("working_group.establish", 1, WorkingGroupEstablishV1, True, True, True),
    MessageSpec("working_group.proposal", 1, WorkingGroupProposalV1, True, True, True),
    MessageSpec("meeting.invitation", 1, MeetingInvitationV1, True, True, False),
    MessageSpec("meeting.minutes", 1, MeetingMinutesV1, True, True, True),
    MessageSpec("consent.request", 1, ConsentRequestV1, True, False, False),
    MessageSpec("consent.decision", 1, ConsentDecisionV1, False, False, False),
    MessageSpec("consent.revocation", 1, ConsentRevocationV1, False, False, False),
    MessageSpec("receipt", 1, ReceiptV1, False, False, False),
)
_BY_KEY: Final = {(spec.type, spec.version): spec for spec in _SPECS}
_VERSIONS: Final = {
    kind: tuple(sorted(spec.version for spec in _SPECS if spec.type == kind))
    for kind in dict.fromkeys(spec.type for spec in _SPECS)
}


def all_specs() -> tuple[MessageSpec, ...]:
    """Every registered (type, version), in a stable order."""
    return _SPECS


def message_types() -> tuple[str, ...]:
    """Every registered message type, in a stable order."""
    return tuple(_VERSIONS)


# A receipt is the gateway's own signed word that it delivered an envelope: a back-office system
# that could submit one would make its gateway vouch for deliveries that never happened.
GATEWAY_ONLY_TYPES: Final[frozenset[str]] = frozenset({"receipt"})


def submittable_types() -> tuple[str, ...]:
    """The message types a back-office system may publish to gw.submit."""
    return tuple(t for t in _VERSIONS if t not in GATEWAY_ONLY_TYPES)


def versions_of(message_type: str) -> tuple[int, ...]:
    """The registered versions of a type, oldest first; empty for an unknown type."""
    return _VERSIONS.get(message_type, ())


def latest_version(message_type: str) -> int:
    """The newest version of a type; ContractError ``schema.unknown_type`` if unknown."""
    versions = versions_of(message_type)
    if not versions:
        raise _unknown_type(message_type)
    return versions[-1]


def spec_for(type: str, version: int) -> MessageSpec:
    """The spec of (type, version), or ContractError schema.unknown_type/unknown_version."""
    spec = _BY_KEY.get((type, version))
    if spec is not None:
        return spec
    if type not in _VERSIONS:
        raise _unknown_type(type)
    known = ", ".join(str(v) for v in _VERSIONS[type])
    raise make_error(
        UNKNOWN_VERSION,
        f"{type!r} has no version {version!r} (known: {known})",
        "version",
    )


def _unknown_type(message_type: str) -> ContractError:
    return make_error(UNKNOWN_TYPE, f"unknown message type {message_type!r}", "type")
