"""`receipt`: the receiving gateway's signed acknowledgement of an envelope."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from contracts.types import ContractModel, EnvelopeId, Sha256Hex, Timestamp


class ReceiptV1(ContractModel):
    """Sent back by the receiving gateway for every envelope it accepted."""

    envelope_id: EnvelopeId = Field(description="The envelope received.")
    envelope_sha256: Sha256Hex = Field(
        description="SHA-256 of the RFC 8785 canonical JSON of the envelope as received, "
        "including its signature."
    )
    status: Literal["delivered", "duplicate"] = Field(
        description="`duplicate` when the envelope id had been received before."
    )
    received_at: Timestamp
