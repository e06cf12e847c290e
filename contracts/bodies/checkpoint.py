"""`checkpoint`: a gateway's signed statement of its archive's chain head, for its peer to keep."""

from __future__ import annotations

from pydantic import Field

from contracts.types import ContractModel, Sha256Hex

MAX_SEQ = 2**53 - 1


class ChainPoint(ContractModel):
    """One record of an archive's hash chain: its sequence number and its hash."""

    seq: int = Field(ge=0, le=MAX_SEQ, description="Sequence number (0: the empty archive).")
    head_hash: Sha256Hex = Field(description="The record's chain hash (64 zeros for seq 0).")


class CheckpointV1(ContractModel):
    """The sender's archive head, signed; the receiving gateway archives it and checks it
    against the sender's earlier checkpoints."""

    seq: int = Field(ge=0, le=MAX_SEQ, description="Sequence number of the sender's head.")
    head_hash: Sha256Hex = Field(description="Chain hash of that record.")
    previous: ChainPoint | None = Field(
        description="The sender's previous checkpoint (its own chain), null for the first."
    )
    acknowledged: ChainPoint | None = Field(
        description="The latest checkpoint of the RECIPIENT's chain the sender holds, if any."
    )
