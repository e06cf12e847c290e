"""Checkpoints: signed statements of an archive's chain head, exchanged between gateways (pure).

Every ``checkpoints.interval_s`` a gateway signs its archive head (seq and hash) and sends it to
its partner (and the counterparties ``checkpoints.to`` names), which archives it. A checkpoint
also names the sender's previous checkpoint to that counterparty (``previous``) and the latest
checkpoint of the counterparty's own chain the sender holds (``acknowledged``). So each side
holds, signed by the other, evidence of how long its own chain was and what its hash was:

- the receiver checks the sender's checkpoints against those it already holds
  (:meth:`CheckpointBook.check`): a head that moved back, or a checkpoint chain that no longer
  links, is the sender's archive shortened or rewritten;
- the sender of ``acknowledged`` echoes a checkpoint back: the receiver of the echo checks its
  own archive still has that record with that hash (:func:`acknowledgement_problem`), and
  ``gateway archive verify`` does the same with every echo archived.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from gateway.core.keys import SigningKey
from gateway.core.signing import sign_envelope
from gateway.core.stamping import rfc3339

CHECKPOINT_TYPE = "checkpoint"

REGRESSED = "checkpoint.regressed"
FORKED = "checkpoint.forked"
BROKEN_LINK = "checkpoint.broken_link"
NOT_IN_ARCHIVE = "checkpoint.not_in_archive"
PROBLEM_CODES = (REGRESSED, FORKED, BROKEN_LINK, NOT_IN_ARCHIVE)


@dataclass(frozen=True)
class ChainPoint:
    """One record of a hash chain: its sequence number and hash (seq 0 is the empty chain)."""

    seq: int
    head_hash: str

    def to_json(self) -> dict[str, Any]:
        return {"seq": self.seq, "head_hash": self.head_hash}

    @classmethod
    def from_json(cls, data: object) -> ChainPoint | None:
        """The point in ``data`` (a checkpoint's ``previous``/``acknowledged``), if well formed."""
        if not isinstance(data, Mapping):
            return None
        seq, head_hash = data.get("seq"), data.get("head_hash")
        if isinstance(seq, bool) or not isinstance(seq, int) or not isinstance(head_hash, str):
            return None
        return cls(seq, head_hash)

    def short(self) -> str:
        return f"seq {self.seq} (hash {self.head_hash[:16]}...)"


@dataclass(frozen=True)
class Checkpoint:
    """The body of a ``checkpoint`` envelope."""

    head: ChainPoint
    previous: ChainPoint | None
    acknowledged: ChainPoint | None

    def to_json(self) -> dict[str, Any]:
        return {
            **self.head.to_json(),
            "previous": self.previous.to_json() if self.previous else None,
            "acknowledged": self.acknowledged.to_json() if self.acknowledged else None,
        }

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> Checkpoint:
        """From a body the contract has validated (ValueError if it is not one)."""
        head = ChainPoint.from_json(body)
        if head is None:
            raise ValueError("a checkpoint body needs seq and head_hash")
        return cls(
            head,
            ChainPoint.from_json(body.get("previous")),
            ChainPoint.from_json(body.get("acknowledged")),
        )


@dataclass(frozen=True)
class CheckpointProblem:
    """Why a checkpoint does not fit what we hold; ``code`` is the archived reason."""

    code: str
    detail: str


def checkpoint_envelope(
    checkpoint: Checkpoint,
    *,
    party: str,
    recipient: str,
    now: datetime,
    new_id: Callable[[], str],
    key: SigningKey,
) -> dict[str, Any]:
    """The signed ``checkpoint`` envelope from ``party`` to ``recipient``."""
    envelope_id = new_id()
    envelope = {
        "id": envelope_id,
        "type": CHECKPOINT_TYPE,
        "version": 1,
        "originator": {
            "party": party,
            "system": "gateway",
            "officer": None,
            "submission_id": envelope_id,
        },
        "recipient": recipient,
        "created_at": rfc3339(now),
        "correlation_id": None,
        "in_reply_to": None,
        "derived_from": [],
        "handling": {"onward": "consent-required", "pre_approved": []},
        "body": checkpoint.to_json(),
    }
    return sign_envelope(envelope, key)


def chain_problem(point: ChainPoint, head_seq: int, hash_at_seq: str | None) -> str | None:
    """Why an archive (head ``head_seq``; ``hash_at_seq`` the hash of its record at
    ``point.seq``, None if it has none) no longer holds ``point``, or None if it does."""
    if point.seq > head_seq or hash_at_seq is None:
        return (
            f"the archive ends at seq {head_seq}, before seq {point.seq}: "
            "records were removed from its end"
        )
    if hash_at_seq != point.head_hash:
        return (
            f"record {point.seq} has hash {hash_at_seq[:16]}..., not {point.head_hash[:16]}...: "
            "the chain was rewritten"
        )
    return None


def acknowledgement_problem(
    acknowledged: ChainPoint, head_seq: int, hash_at_seq: str | None
) -> CheckpointProblem | None:
    """Whether our archive still holds the checkpoint of ours a counterparty acknowledged."""
    why = chain_problem(acknowledged, head_seq, hash_at_seq)
    if why is None:
        return None
    return CheckpointProblem(
        NOT_IN_ARCHIVE,
        f"the counterparty holds our checkpoint at {acknowledged.short()}, but {why}",
    )


class CheckpointBook:
    """The checkpoints a gateway holds: each counterparty's (of its chain) and its own last one
    sent to each counterparty. Rebuilt from the archive like the rest of the state."""

    def __init__(self, memory: int = 1024) -> None:
        self._memory = memory
        self._received: dict[str, OrderedDict[int, str]] = {}
        self._latest: dict[str, ChainPoint] = {}
        self._sent: dict[str, ChainPoint] = {}

    def held(self, peer: str) -> ChainPoint | None:
        """The highest checkpoint of ``peer``'s chain we hold: what we acknowledge to it."""
        return self._latest.get(peer)

    def last_sent(self, peer: str) -> ChainPoint | None:
        return self._sent.get(peer)

    def sent(self, peer: str, head: ChainPoint) -> None:
        self._sent[peer] = head

    def check(self, peer: str, checkpoint: Checkpoint) -> CheckpointProblem | None:
        """Whether ``peer``'s new checkpoint continues the ones we hold from it.

        A previous checkpoint beyond the highest we hold is one we missed (refused, or lost
        with its link): nothing to compare it with, so it passes.
        """
        latest = self._latest.get(peer)
        if latest is None:
            return None
        head, previous = checkpoint.head, checkpoint.previous
        if head.seq < latest.seq:
            return CheckpointProblem(
                REGRESSED,
                f"{peer}'s archive head is at seq {head.seq}, below its checkpoint at "
                f"{latest.short()} that we hold: records were removed from its end",
            )
        if self._differs(peer, head):
            return CheckpointProblem(
                FORKED, f"{peer}'s record {head.seq} no longer has the hash it had checkpointed"
            )
        if previous is None or (previous.seq < latest.seq and not self._holds(peer, previous)):
            named = previous.short() if previous else "none"
            return CheckpointProblem(
                BROKEN_LINK,
                f"{peer}'s previous checkpoint is {named}, but we hold its checkpoint at "
                f"{latest.short()}: its archive lost the checkpoints since",
            )
        if self._differs(peer, previous):
            return CheckpointProblem(
                BROKEN_LINK,
                f"{peer}'s previous checkpoint {previous.short()} differs from the one we hold",
            )
        return None

    def received(self, peer: str, checkpoint: Checkpoint) -> None:
        """Keep ``peer``'s checkpoint; the highest one held stays the highest, so a head that
        moved back is reported again with every later checkpoint."""
        points = self._received.setdefault(peer, OrderedDict())
        head = checkpoint.head
        points.setdefault(head.seq, head.head_hash)
        while len(points) > self._memory:
            points.popitem(last=False)
        latest = self._latest.get(peer)
        if latest is None or head.seq > latest.seq:
            self._latest[peer] = head

    def _known(self, peer: str, seq: int) -> str | None:
        points = self._received.get(peer)
        return None if points is None else points.get(seq)

    def _holds(self, peer: str, point: ChainPoint) -> bool:
        return self._known(peer, point.seq) == point.head_hash

    def _differs(self, peer: str, point: ChainPoint) -> bool:
        known = self._known(peer, point.seq)
        return known is not None and known != point.head_hash
