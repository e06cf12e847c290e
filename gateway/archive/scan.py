"""The archive's envelopes read back synchronously, for the in-memory indexes' fallback.

The provenance index and the receipt tracker keep a bounded part of what the archive holds
(``gateway.core.provenance``); what they let go is read back here when a decision asks for it. The
decisions are synchronous and run on the gateway's event loop, so the reader has its own thread,
event loop and connection pool: a read blocks the asking decision (a miss is rare), never
deadlocks on the loop that is waiting for it.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Coroutine, Iterator, Mapping
from dataclasses import replace
from typing import Any, Final, TypeVar

from gateway.archive.store import ArchiveStore, SearchFilter, open_archive

T = TypeVar("T")

# What each kind of envelope record must have become to count as held (design section 3).
HELD: Final = {"envelope.out": "sent", "envelope.in": "delivered"}
PAGE: Final = 2_000
TIMEOUT_S: Final = 60.0


class ArchiveReader:
    """:class:`gateway.core.provenance.ArchivedEnvelopes` over an archive URL."""

    def __init__(self, url: str, *, timeout: float = TIMEOUT_S) -> None:
        self._url = url
        self._timeout = timeout
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="archive-reader", daemon=True
        )
        self._store: ArchiveStore | None = None

    def _call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(self._timeout)

    def _opened(self) -> ArchiveStore:
        """The store, the thread started on the first read: most gateways never need one."""
        if self._store is None:
            self._thread.start()
            self._store = self._call(_store(self._url))
        return self._store

    def envelope(self, envelope_id: str) -> tuple[Mapping[str, Any], bool] | None:
        criteria = SearchFilter(envelope_ids=[envelope_id], kinds=sorted(HELD))
        for record in self._call(self._opened().search(criteria)):
            if HELD[record.kind] == record.outcome:
                return json.loads(record.payload), record.kind == "envelope.in"
        return None

    def received_from(self, provider: str) -> Iterator[Mapping[str, Any]]:
        # The archive's indexes pick the provider's delivered envelopes, a page at a time.
        criteria = SearchFilter(kinds=["envelope.in"], outcomes=["delivered"], provider=provider)
        while page := self._call(self._opened().search(criteria, limit=PAGE)):
            for record in page:
                yield json.loads(record.payload)
            criteria = replace(criteria, after_seq=page[-1].seq)

    def close(self) -> None:
        if self._store is not None:
            self._call(self._store.close())
            self._store = None
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(self._timeout)
        if not self._loop.is_closed():
            self._loop.close()


async def _store(url: str) -> ArchiveStore:
    # Made on the reader's own loop: the engine's pool belongs to the loop that uses it.
    return open_archive(url)
