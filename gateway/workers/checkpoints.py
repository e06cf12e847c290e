"""The checkpoint sender: at an interval, sign the archive head and send it to each counterparty.

The checkpoint is archived (``checkpoint.out``) before it leaves, so a counterparty never holds
one of ours that our archive lacks. Before signing, the sender checks that the archive still
holds its previous checkpoint (as this process remembers it): a chain shortened or rewritten
under a running gateway is reported, and never signed as if it were genuine. One that cannot
be published (the counterparty's broker is down) is not retried: the next one supersedes it,
and the receiver accepts a ``previous`` it never saw (see gateway.core.checkpoints).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import structlog

from gateway import topology
from gateway.amqp import ConfirmingPublisher, PublishRefused
from gateway.archive import ArchiveStore, Entry
from gateway.core import publications
from gateway.core.checkpoints import (
    NOT_IN_ARCHIVE,
    ChainPoint,
    Checkpoint,
    CheckpointBook,
    chain_problem,
    checkpoint_envelope,
)
from gateway.core.keys import SigningKey
from gateway.core.stamping import new_envelope_id
from gateway.core.state import PartyState
from gateway.metrics import GatewayMetrics

log = structlog.get_logger(__name__)

RETRY_AFTER_FAILURE_S = 5.0


def checkpoint_entry(envelope: Mapping[str, Any], now: datetime) -> Entry:
    return Entry(
        kind="checkpoint.out",
        outcome="sent",
        occurred_at=now,
        payload=json.dumps(envelope, separators=(",", ":")).encode(),
        envelope_id=envelope["id"],
        type=envelope["type"],
        provider=envelope["originator"]["party"],
        recipient=envelope["recipient"],
        signature=envelope["signature"]["value"],
    )


class CheckpointSender:
    def __init__(
        self,
        *,
        party: str,
        recipients: Sequence[str],
        publishers: Mapping[str, ConfirmingPublisher],
        archive: ArchiveStore,
        metrics: GatewayMetrics,
        signing_key: SigningKey,
        state: Callable[[], PartyState],
        prepare: Callable[[], Awaitable[None]],
        interval_s: float,
    ) -> None:
        self._party = party
        self._recipients = list(recipients)
        self._publishers = publishers
        self._archive = archive
        self._metrics = metrics
        self._signing_key = signing_key
        self._state = state
        self._prepare = prepare
        self._interval_s = interval_s
        # One checkpoint at a time: two at once could both name the same previous one.
        self._lock = asyncio.Lock()

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self._interval_s)
            try:
                await self.send_now()
            except Exception:
                # The archive is down: the next round tries again; nothing is lost meanwhile.
                log.exception("checkpoint.failed")
                await asyncio.sleep(RETRY_AFTER_FAILURE_S)

    async def send_now(self, recipients: Sequence[str] | None = None) -> list[dict[str, Any]]:
        """Sign, archive and send a checkpoint of the current head to each of ``recipients``
        (those configured by default); returns the envelopes archived (none to a
        counterparty whose previous checkpoint our archive no longer holds)."""
        async with self._lock:
            await self._prepare()
            seq, head_hash = await self._archive.head()
            head = ChainPoint(seq, head_hash)
            now = datetime.now(UTC)
            book = self._state().checkpoints
            peers = [
                peer
                for peer in (self._recipients if recipients is None else recipients)
                if await self._still_holds(book, peer, head.seq)
            ]
            envelopes = [
                checkpoint_envelope(
                    Checkpoint(head, book.last_sent(peer), book.held(peer)),
                    party=self._party,
                    recipient=peer,
                    now=now,
                    new_id=new_envelope_id,
                    key=self._signing_key,
                )
                for peer in peers
            ]
            frames = [
                publications.frame(
                    [envelope],
                    frame_id=new_envelope_id(),
                    exchange=topology.inbound_from(self._party),
                )
                for envelope in envelopes
            ]
            if envelopes:
                await self._archive.append([checkpoint_entry(e, now) for e in envelopes])
            for envelope in envelopes:
                book.sent(envelope["recipient"], head)
        await asyncio.gather(*(self._publish(e, f) for e, f in zip(envelopes, frames, strict=True)))
        return envelopes

    async def _still_holds(self, book: CheckpointBook, peer: str, head_seq: int) -> bool:
        previous = book.last_sent(peer)
        if previous is None:
            return True
        why = chain_problem(previous, head_seq, await self._archive.hash_at(previous.seq))
        if why is None:
            return True
        self._metrics.record_checkpoint_problem(peer, NOT_IN_ARCHIVE)
        log.error(
            "checkpoint.own_archive_broken",
            recipient=peer,
            reason=NOT_IN_ARCHIVE,
            detail=f"our checkpoint to {peer} at {previous.short()} is no longer in our "
            f"archive: {why}; no checkpoint is signed until an operator has looked",
        )
        return False

    async def _publish(self, envelope: Mapping[str, Any], frame: publications.Outgoing) -> None:
        recipient = envelope["recipient"]
        try:
            await self._publishers[recipient].publish_all([frame])
        except PublishRefused as exc:
            log.warning("checkpoint.not_sent", recipient=recipient, error=str(exc))
            return
        log.info("checkpoint.sent", recipient=recipient, seq=envelope["body"]["seq"])
