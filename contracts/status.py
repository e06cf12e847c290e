"""Status events: what the gateway publishes on ``gw.status`` about every message."""

from __future__ import annotations

from typing import Final, Literal, get_args

from pydantic import Field

from contracts.types import ContractModel, Timestamp

Status = Literal[
    "sent", "delivered", "rejected", "blocked", "held", "overdue", "duplicate", "replayed"
]
STATUSES: Final[tuple[Status, ...]] = get_args(Status)


class StatusEvent(ContractModel):
    """One step in a message's life, for the submitting system and for operators.

    `sent`: forwarded to the peer, which confirmed it; `delivered`: the peer's receipt came
    back (or, inbound, it was delivered to gw.deliver); `rejected`: refused, see `reason`;
    `blocked`: stopped by the third-party rule (gw.quarantine); `held`: waiting for a person
    of the sending Party to release or refuse it (release review); `overdue`: no receipt in
    time; `duplicate`: already processed, nothing sent again; `replayed`: re-sent by an
    operator.
    """

    submission_id: str | None = Field(
        max_length=255, description="AMQP message_id of the submission, when there is one."
    )
    envelope_id: str | None = Field(
        max_length=255, description="The envelope concerned, once one exists."
    )
    type: str | None = Field(max_length=128, description="Message type, when readable.")
    status: Status
    reason: str | None = Field(
        max_length=128, description="For rejected/blocked: the stable reason code."
    )
    detail: str | None = Field(description="Human explanation, naming the field or rule.")
    at: Timestamp = Field(description="When it happened (UTC).")
