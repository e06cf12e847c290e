"""What an attachment contains, whatever its wrapping: the texts and files a reader would get.

The third-party rule compares content, not bytes, so before comparing it looks inside: gzip, zip
and tar are unpacked (members of members too, up to ``MAX_DEPTH`` levels), text that is itself
standard base64 is decoded and looked into in turn, and whatever decodes as UTF-8 (or UTF-16 with
a byte order mark) without control characters is text; anything else is a binary file.

Unpacking is bounded, because a small attachment can expand without limit (a "zip bomb"):
at most ``MAX_TOTAL_BYTES`` unpacked per message, ``MAX_RATIO`` times the packed size for any one
member, ``MAX_MEMBERS`` archive members and ``MAX_DEPTH`` nesting levels. Going over a limit
*refuses* the message with reason ``attachment.unpack_refused`` (the gateway cannot say what it
would be sending), rather than comparing only a part. An archive that is not valid (a file that
merely looks like one) is compared as a binary file.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import io
import re
import tarfile
import zipfile
import zlib
from dataclasses import dataclass, field

UNPACK_REFUSED = "attachment.unpack_refused"
MAX_TOTAL_BYTES = 16 * 1024 * 1024
MAX_RATIO = 100
MAX_MEMBERS = 256
MAX_DEPTH = 4
MIN_BASE64_CHARS = 32

_BASE64 = re.compile(r"[A-Za-z0-9+/\r\n]+={0,2}\s*")
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f]")


class UnpackRefused(Exception):
    """An attachment the gateway will not unpack; the message carrying it is refused."""


@dataclass
class Unpacked:
    """Texts and binary files found, each under a path naming where it was found."""

    texts: list[tuple[str, str]] = field(default_factory=list)
    files: list[tuple[str, bytes]] = field(default_factory=list)
    budget: int = field(default_factory=lambda: MAX_TOTAL_BYTES)

    def spend(self, size: int, packed: int, where: str) -> None:
        if size > max(packed, 1) * MAX_RATIO:
            raise UnpackRefused(f"{where} expands {size} bytes from {packed}: over {MAX_RATIO}x")
        self.budget -= size
        if self.budget < 0:
            raise UnpackRefused(f"{where}: more than {MAX_TOTAL_BYTES} bytes unpacked")


def _bounded_gunzip(data: bytes, limit: int) -> bytes:
    return gzip.GzipFile(fileobj=io.BytesIO(data)).read(limit + 1)


def as_text(data: bytes) -> str | None:
    """``data`` as text when it is UTF-8 (or BOM-marked UTF-16) without control characters."""
    encoding = "utf-16" if data[:2] in (b"\xff\xfe", b"\xfe\xff") else "utf-8-sig"
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError:
        return None
    return None if _CONTROL.search(text) else text


def decode_base64(text: str) -> bytes | None:
    """The bytes of ``text`` when it is standard base64 (line breaks allowed), else None."""
    if len(text) < MIN_BASE64_CHARS or _BASE64.fullmatch(text) is None:
        return None
    compact = re.sub(r"\s+", "", text)
    if len(compact) % 4:
        return None
    try:
        return base64.b64decode(compact, validate=True)
    except binascii.Error:
        return None


def _members(data: bytes, where: str) -> list[tuple[str, bytes]] | None:
    """The members of a gzip, zip or tar ``data``; None when it is none of them."""
    if data[:2] == b"\x1f\x8b":
        try:
            inner = _bounded_gunzip(data, MAX_TOTAL_BYTES)
        except (OSError, EOFError, zlib.error):
            return None
        return [("gunzip", inner)]
    if zipfile.is_zipfile(io.BytesIO(data)):
        return _zip_members(data, where)
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as archive:
            found = [info for info in archive.getmembers() if info.isfile()]
            if len(found) > MAX_MEMBERS:
                raise UnpackRefused(f"{where}: more than {MAX_MEMBERS} members")
            return [(info.name, _tar_read(archive, info)) for info in found]
    except tarfile.TarError:
        return None


def _tar_read(archive: tarfile.TarFile, info: tarfile.TarInfo) -> bytes:
    reader = archive.extractfile(info)
    return reader.read(MAX_TOTAL_BYTES + 1) if reader is not None else b""


def _zip_members(data: bytes, where: str) -> list[tuple[str, bytes]] | None:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            infos = [info for info in archive.infolist() if not info.is_dir()]
            if len(infos) > MAX_MEMBERS:
                raise UnpackRefused(f"{where}: more than {MAX_MEMBERS} members")
            members = []
            for info in infos:
                if info.file_size > max(info.compress_size, 1) * MAX_RATIO:
                    raise UnpackRefused(
                        f"{where}/{info.filename} declares {info.file_size} bytes "
                        f"from {info.compress_size}: over {MAX_RATIO}x"
                    )
                with archive.open(info) as reader:
                    members.append((info.filename, reader.read(MAX_TOTAL_BYTES + 1)))
            return members
    except (zipfile.BadZipFile, RuntimeError, NotImplementedError, OSError, zlib.error):
        # Encrypted or damaged: compared as the bytes it is.
        return None


def _look_into(data: bytes, where: str, depth: int, found: Unpacked) -> None:
    members = _members(data, where)
    if members is not None:
        if depth >= MAX_DEPTH:
            raise UnpackRefused(f"{where}: archives nested more than {MAX_DEPTH} deep")
        for name, inner in members:
            found.spend(len(inner), len(data), f"{where}/{name}")
            _look_into(inner, f"{where}/{name}", depth + 1, found)
        return
    text = as_text(data)
    if text is None:
        found.files.append((where, data))
        return
    found.texts.append((where, text))
    decoded = decode_base64(text)
    if decoded is not None and depth < MAX_DEPTH:
        found.spend(len(decoded), len(text), f"{where}/base64")
        _look_into(decoded, f"{where}/base64", depth + 1, found)


def unpack(where: str, data: bytes, found: Unpacked) -> None:
    """Add what ``data`` contains to ``found``; raises UnpackRefused over a limit."""
    found.spend(len(data), max(len(data), 1), where)
    _look_into(data, where, 0, found)
