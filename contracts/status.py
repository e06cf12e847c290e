"""Status events: what the gateway publishes on ``gw.status`` about every message."""

from __future__ import annotations

from typing import Annotated, Final, Literal, get_args

from pydantic import Field

from contracts.types import AS_TUPLE, ContractModel, Timestamp

Status = Literal[
    "sent", "delivered", "rejected", "blocked", "held", "overdue", "duplicate", "replayed"
]
STATUSES: Final[tuple[Status, ...]] = get_args(Status)


# The most records one operator request re-delivers (gateway.core.control_requests.MAX_SEQS).
MAX_RESULTS: Final = 1000


class RecordResult(ContractModel):
    """What an operator's request did to one archived record (one entry of `results`)."""

    seq: int = Field(ge=1, description="The archive seq of the record.")
    status: Status
    submission_id: str | None = Field(
        max_length=255, description="The record's submission, when it names one."
    )
    envelope_id: str | None = Field(max_length=255, description="The record's envelope.")
    type: str | None = Field(max_length=128, description="Message type, when readable.")
    reason: str | None = Field(max_length=128, description="For rejected: the stable reason code.")
    detail: str | None = Field(description="Human explanation, naming the field or rule.")


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
    results: Annotated[tuple[RecordResult, ...], Field(max_length=MAX_RESULTS), AS_TUPLE] | None = (
        Field(
            default=None,
            description=(
                "Only in the answer to an operator's request naming many records (system "
                "`operator`): each record's result, in the request's order."
            ),
        )
    )
