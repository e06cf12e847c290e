"""What the gateway knows, kept in step with the archive it may share with other replicas.

``PartyState`` is rebuilt from the archive at start and after a lost write; between batches
the gateway applies only the records other replicas of its Party appended since it last
looked, which it tells apart by remembering the records this process appended.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import structlog

from gateway.archive import Appended, ArchiveStore, Entry
from gateway.archive.scan import ArchiveReader
from gateway.archive.store import async_url
from gateway.core.state import PartyState

log = structlog.get_logger(__name__)


class FollowedArchive(ArchiveStore):
    """The archive, remembering which records this process appended, so that the gateway can
    tell the records other replicas of its Party appended (see :meth:`ArchiveFollower.follow`).

    ``lock`` is held from an append until its records are remembered, so a reader holding it
    never mistakes one of ours for another replica's.
    """

    def __init__(self, url: str) -> None:
        super().__init__(async_url(url))
        self.lock = asyncio.Lock()
        self.own: set[int] = set()

    async def append(self, entries: Sequence[Entry]) -> list[Appended]:
        async with self.lock:
            appended = await super().append(entries)
            self.own.update(a.record.seq for a in appended)
        return appended


class ArchiveFollower:
    """One Party's ``PartyState`` and the archive position it reflects."""

    def __init__(self, party: str, archive: FollowedArchive, reader: ArchiveReader) -> None:
        self.party = party
        self.archive = archive
        self._reader = reader  # answers for what the state's bounded indexes let go
        self.state = PartyState.bounded(party, reader)
        self._applied_seq = 0  # self.state reflects every archive record up to this one
        self._lost = False

    def lose(self) -> None:
        """The state may have missed a write: rebuild it before the next batch."""
        self._lost = True

    async def prepare(self) -> None:
        """Bring the state up to date before a batch."""
        if self._lost:
            await self.rebuild()
        else:
            await self.follow()

    async def follow(self) -> None:
        """Apply what other replicas sharing the archive appended since we last looked: their
        roster, consent and provenance changes, the envelopes whose receipts may come to us.
        Alone on the archive this is one look at its head."""
        archive = self.archive
        async with archive.lock:
            head, _ = await archive.head()
            ours = sum(1 for seq in archive.own if seq > self._applied_seq)
            if head - self._applied_seq > ours:
                async for record in archive.iter_records(after_seq=self._applied_seq):
                    if record.seq not in archive.own:
                        self.state.apply(record)
                    head = max(head, record.seq)
            self._applied_seq = head
            archive.own.clear()

    async def rebuild(self) -> None:
        """Replay the whole archive into a fresh state."""
        state = PartyState.bounded(self.party, self._reader)
        count = 0
        async with self.archive.lock:
            async for record in self.archive.iter_records():
                state.apply(record)
                count += 1
                self._applied_seq = record.seq
            self.archive.own.clear()
            self.state = state
            self._lost = False
        log.info("gateway.state_rebuilt", records=count, party=self.party)
