"""The archive: a tamper-evident, append-only, hash-chained record of every message and decision.

``open_archive(url)`` gives an :class:`ArchiveStore` over SQLite (one file per Party) or
PostgreSQL (shared by several replicas); ``verify_archive`` and the bundle functions check it.

The record types and the chain are pure and imported at once; the store (SQLAlchemy) is loaded
on first use of one of its names, so that pure modules reading :class:`Record` lists do not pull
the database layer in (tests/test_layers.py checks it).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from gateway.archive.chain import GENESIS, ChainReport, record_hash, verify_chain
from gateway.archive.records import Appended, Entry, Record

if TYPE_CHECKING:
    from gateway.archive.store import ArchiveStore, SearchFilter, open_archive

_STORE_NAMES = frozenset({"ArchiveStore", "SearchFilter", "open_archive"})

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


def __getattr__(name: str) -> Any:
    if name in _STORE_NAMES:
        return getattr(importlib.import_module("gateway.archive.store"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
