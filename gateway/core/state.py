"""What a gateway knows between messages: the liaison roster, consent grants, provenance of every
envelope it has seen, and the receipts it still waits for.

All of it is derived from the archive: at start the gateway replays its archived envelopes in
order, and afterwards it applies each envelope as it is archived. Nothing here does I/O.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import structlog

from gateway.archive import Record
from gateway.core.checkpoints import Checkpoint, CheckpointBook
from gateway.core.consent_registry import ConsentRegistry
from gateway.core.provenance import (
    ArchivedEnvelopes,
    KnownEnvelope,
    ProvenanceIndex,
    known_from_envelope,
)
from gateway.core.receipts import ReceiptTracker
from gateway.core.roster import Roster
from gateway.core.signing import envelope_digest

log = structlog.get_logger(__name__)

# A checkpoint the gateway found inconsistent is still the counterparty's signed statement.
CHECKPOINT_OUTCOMES = frozenset({"sent", "archived", "inconsistent"})


@dataclass
class PartyState:
    party: str
    roster: Roster = field(default_factory=Roster)
    consent: ConsentRegistry = field(default_factory=ConsentRegistry)
    provenance: ProvenanceIndex = field(default_factory=ProvenanceIndex)
    receipts: ReceiptTracker = field(default_factory=ReceiptTracker)
    # Our own officers as each counterparty knows them: its gateway checks our envelopes
    # against its copy of our roster, which only the assignments sent to it build.
    announced: dict[str, Roster] = field(default_factory=dict)
    checkpoints: CheckpointBook = field(default_factory=CheckpointBook)

    @classmethod
    def bounded(cls, party: str, archived: ArchivedEnvelopes) -> PartyState:
        """State whose indexes keep a bounded part of what they know in memory and read the
        rest back from ``archived`` (see ``gateway.core.provenance``)."""
        return cls(
            party, provenance=ProvenanceIndex(archived), receipts=ReceiptTracker(archived=archived)
        )

    def apply(self, record: Record) -> None:
        """Rebuild from one archive record (see :meth:`replay_record`)."""
        self.replay_record(
            record.kind,
            record.outcome,
            record.payload,
            record.occurred_at,
            message_id=record.message_id,
        )

    def sent(
        self,
        envelope: Mapping[str, Any],
        submission_id: str,
        at: datetime,
        *,
        digest: str | None = None,
        known: KnownEnvelope | None = None,
    ) -> None:
        """Apply an envelope this gateway signed and is sending.

        ``digest`` and ``known`` save recomputing what signing and deciding already computed.
        """
        self.provenance.add(known or known_from_envelope(envelope, received=False))
        if envelope["type"] == "liaison.assignment":
            self.roster.apply(self.party, envelope["body"], at)
            recipient = envelope["recipient"]
            self.announced.setdefault(recipient, Roster()).apply(self.party, envelope["body"], at)
        if envelope["type"] != "receipt":
            self.receipts.expect(
                envelope["id"],
                digest or envelope_digest(envelope),
                envelope["recipient"],
                submission_id,
                envelope["type"],
                at,
                system=envelope["originator"]["system"],
            )

    def received(self, envelope: Mapping[str, Any], at: datetime) -> None:
        """Apply a verified, accepted envelope from a counterparty."""
        provider = envelope["originator"]["party"]
        kind = envelope["type"]
        if kind == "receipt":
            return
        self.provenance.add(known_from_envelope(envelope, received=True))
        if kind == "liaison.assignment":
            self.roster.apply(provider, envelope["body"], at)
        elif kind in ("consent.decision", "consent.revocation"):
            try:
                if kind == "consent.decision":
                    self.consent.apply_decision(envelope["id"], provider, envelope["body"], at)
                else:
                    self.consent.apply_revocation(provider, envelope["body"], at)
            except ValueError as exc:
                # A body the registry cannot read grants nothing; it must not stop a rebuild.
                log.warning("state.consent_unreadable", envelope_id=envelope["id"], reason=str(exc))

    def replay_record(
        self,
        kind: str,
        outcome: str,
        payload: bytes,
        occurred_at: datetime,
        *,
        message_id: str | None = None,
    ) -> None:
        """Rebuild from one archived record (kinds and outcomes of the workers' entries).

        ``message_id`` is the record's: toward a third party the envelope carries a
        gateway-made submission_id, not the back-office system's message_id.
        """
        if kind == "envelope.out" and outcome == "sent":
            envelope = json.loads(payload)
            submission_id = message_id or envelope["originator"]["submission_id"]
            self.sent(envelope, submission_id, occurred_at)
        elif kind == "envelope.in" and outcome == "delivered":
            self.received(json.loads(payload), occurred_at)
        elif kind in ("checkpoint.in", "checkpoint.out") and outcome in CHECKPOINT_OUTCOMES:
            self._replay_checkpoint(kind, json.loads(payload))
        elif kind == "receipt.in" and outcome == "delivered":
            receipt = json.loads(payload)
            body = receipt["body"]
            self.receipts.settle(
                body["envelope_id"], body["envelope_sha256"], receipt["originator"]["party"]
            )

    def _replay_checkpoint(self, kind: str, envelope: Mapping[str, Any]) -> None:
        try:
            checkpoint = Checkpoint.from_body(envelope["body"])
            if kind == "checkpoint.out":
                peer = str(envelope["recipient"])
            else:
                peer = str(envelope["originator"]["party"])
        except (ValueError, KeyError, TypeError) as exc:
            # Only the contract's checkpoints are archived as such; an unreadable one must
            # still not stop a rebuild (archive verify reports what is wrong with the record).
            log.warning(
                "state.checkpoint_unreadable", envelope_id=envelope.get("id"), reason=repr(exc)
            )
            return
        if kind == "checkpoint.out":
            self.checkpoints.sent(peer, checkpoint.head)
        else:
            self.checkpoints.received(peer, checkpoint)
