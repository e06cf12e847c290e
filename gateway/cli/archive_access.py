"""Opening the archive for an operator command: the one that exists, never a new empty one."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from gateway.archive import ArchiveStore, open_archive
from gateway.config import ConfigError

SQLITE_PREFIX = "sqlite:///"


def existing_archive(url: str) -> str:
    """``url`` if its archive exists; operator commands only read, so a mistyped path must not
    create an empty archive. ConfigError otherwise."""
    if url.startswith(SQLITE_PREFIX) and not Path(url[len(SQLITE_PREFIX) :]).is_file():
        raise ConfigError(f"no archive file at {url[len(SQLITE_PREFIX) :]}")
    return url


async def with_archive(url: str, use: Callable[[ArchiveStore], Awaitable[int]]) -> int:
    """Open the existing archive at ``url``, run ``use`` on it and close it."""
    store = open_archive(existing_archive(url))
    try:
        await store.open()
        return await use(store)
    finally:
        await store.close()
