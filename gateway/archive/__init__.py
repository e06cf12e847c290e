"""The archive: a tamper-evident, append-only, hash-chained record of every message and decision.

``open_archive(url)`` gives an :class:`ArchiveStore` over SQLite (one file per Party) or
PostgreSQL (shared by several replicas); ``verify_archive`` and the bundle functions check it.
"""

from __future__ import annotations

from gateway.archive.chain import GENESIS, ChainReport, record_hash, verify_chain
from gateway.archive.records import Appended, Entry, Record
from gateway.archive.store import ArchiveStore, SearchFilter, open_archive

__all__ = [
    "GENESIS",
    "Appended",
    "ArchiveStore",
    "ChainReport",
    "Entry",
    "Record",
    "SearchFilter",
    "open_archive",
    "record_hash",
    "verify_chain",
]
