"""Files that hold secrets or evidence, and files the gateway trusts: created owner-only from
birth, and refused when someone else could have rewritten them."""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path
from typing import BinaryIO

PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700
PUBLIC_FILE = 0o644


class UnsafeFileError(Exception):
    """A trusted file that others can write; the message names the file and the fix."""


def create_exclusively(path: Path, data: bytes, mode: int) -> None:
    """Create ``path`` with ``mode`` from birth, complete or not at all, never replacing a file
    (FileExistsError if it exists).

    The data goes to a temporary file opened with the final mode, then a hard link publishes it:
    unlike rename, link fails when the target exists, so a concurrent writer cannot be clobbered.
    """
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
    try:
        if stat.S_IMODE(os.fstat(fd).st_mode) != mode:
            os.fchmod(fd, mode)  # a strict umask must not hide a certificate from the broker
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.link(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    dir_fd = os.open(path.parent, os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def create_private(path: Path, data: bytes) -> None:
    create_exclusively(path, data, PRIVATE_FILE)


def create_public(path: Path, data: bytes) -> None:
    create_exclusively(path, data, PUBLIC_FILE)


def open_private(path: Path) -> BinaryIO:
    """``path`` truncated for writing, owner-only from birth (an export bundle)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, PRIVATE_FILE)
    os.fchmod(fd, PRIVATE_FILE)  # an existing file keeps its mode through O_CREAT
    return os.fdopen(fd, "wb")


def private_database(path: Path) -> None:
    """Prepare a SQLite file: its directory, when missing, created 0700; the file created (or
    tightened) 0600 before SQLite opens it, so that the WAL and shared-memory files SQLite
    creates beside it, which copy its mode, are owner-only too. Existing ones are tightened."""
    path.parent.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, PRIVATE_FILE))
    for file in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        if file.exists() and stat.S_IMODE(file.stat().st_mode) & 0o077:
            file.chmod(PRIVATE_FILE)


def require_not_writable_by_others(path: Path, what: str) -> None:
    """Refuse a pinned key or certificate that group or others may write: whoever can rewrite
    it decides whom this gateway trusts. OSError (e.g. a missing file) is the caller's."""
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o022:
        raise UnsafeFileError(
            f"{what} {path} is writable by group or others (mode {mode:04o}); "
            f"whoever can rewrite it decides whom this gateway trusts: chmod go-w {path}"
        )
