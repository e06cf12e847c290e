"""ArchiveReader: the archive's envelopes read back synchronously, on both backends."""

from __future__ import annotations

import json

from gateway.archive import ArchiveStore
from gateway.archive.scan import ArchiveReader

from .helpers import Party, envelope_entry

CICA, RATS = Party("CICA"), Party("SCO-RATS")


async def test_envelopes_are_read_back_by_id_and_by_provider(
    store: ArchiveStore, archive_url: str
) -> None:
    sent = envelope_entry(RATS, 1)
    received = [envelope_entry(CICA, n, kind="envelope.in", outcome="delivered") for n in (2, 3)]
    duplicate = envelope_entry(CICA, 4, kind="envelope.in", outcome="duplicate")
    await store.append([sent, received[0], duplicate, received[1]])
    reader = ArchiveReader(archive_url)
    try:
        assert reader.envelope(str(sent.envelope_id)) == (json.loads(sent.payload), False)
        assert reader.envelope(str(received[0].envelope_id)) == (
            json.loads(received[0].payload),
            True,
        )
        assert reader.envelope(str(duplicate.envelope_id)) is None
        assert reader.envelope("never-archived") is None
        assert list(reader.received_from("CICA")) == [json.loads(e.payload) for e in received]
        assert list(reader.received_from("UNOCT")) == []
    finally:
        reader.close()


def test_a_reader_never_used_closes_without_a_connection(archive_url: str) -> None:
    reader = ArchiveReader(archive_url)
    reader.close()
    reader.close()
