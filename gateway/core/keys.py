"""Ed25519 key files: generation, loading with permission checks, and the keyring of pinned keys.

Two file forms, both JSON with RFC 3339 UTC timestamps ("...Z"):

- ``<key_id>.pub.json``, the *published* form handed to counterparties::

      {"party": "CICA", "key_id": "CICA-2026-1", "alg": "ed25519",
       "public_key": "<base64 of the raw 32-byte public key>",
       "valid_from": "2026-01-01T00:00:00Z", "valid_to": "2028-01-01T00:00:00Z"}

- ``<key_id>.key``, this Party's private key, mode 0600: the published members plus
  ``"private_key"``, the base64 of the raw 32-byte Ed25519 private key (the RFC 8032 seed).
  Raw bytes rather than PKCS8 PEM keep one JSON format for both files and need no PEM parsing.

A key is valid in the half-open window ``[valid_from, valid_to)``. Rotation with overlap means
publishing the next key while the current one is still valid; both then verify.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import stat
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from gateway.files import UnsafeFileError, create_exclusively, require_not_writable_by_others

ALG = "ed25519"
PRIVATE_SUFFIX = ".key"
PUBLIC_SUFFIX = ".pub.json"

_PARTY_RE = re.compile(r"^[A-Z][A-Z0-9-]{1,31}$")
# Key ids become file names, so they must not carry path separators or a leading dot.
_KEY_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_MAX_KEY_FILE_BYTES = 64 * 1024
_RAW_KEY_BYTES = 32


class KeyFileError(Exception):
    """A key file that cannot be used; the message names the file and what to do about it."""


def format_rfc3339(moment: datetime) -> str:
    """RFC 3339 in UTC with a ``Z`` suffix; fractional seconds only when present."""
    if moment.tzinfo is None:
        raise ValueError(f"naive datetime {moment!r}: pass a timezone-aware datetime")
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def parse_rfc3339(text: str) -> datetime:
    """Parse a timestamp that carries a UTC offset; the result is in UTC."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError(f"timestamp {text!r} has no UTC offset")
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"timestamp {text!r} is out of range") from None


@dataclass(frozen=True)
class PublicKey:
    party: str
    key_id: str
    valid_from: datetime
    valid_to: datetime
    # Ed25519PublicKey compares by value but is unhashable, so it stays out of __hash__.
    key: Ed25519PublicKey = field(hash=False)

    def is_valid_at(self, moment: datetime) -> bool:
        return self.valid_from <= moment < self.valid_to

    def public_bytes(self) -> bytes:
        return self.key.public_bytes(Encoding.Raw, PublicFormat.Raw)

    def published(self) -> dict[str, str]:
        """The ``.pub.json`` form of this key."""
        return {
            "party": self.party,
            "key_id": self.key_id,
            "alg": ALG,
            "public_key": base64.b64encode(self.public_bytes()).decode("ascii"),
            "valid_from": format_rfc3339(self.valid_from),
            "valid_to": format_rfc3339(self.valid_to),
        }


@dataclass(frozen=True)
class SigningKey:
    party: str
    key_id: str
    valid_from: datetime
    valid_to: datetime
    private_key: Ed25519PrivateKey = field(repr=False, hash=False)

    def is_valid_at(self, moment: datetime) -> bool:
        return self.valid_from <= moment < self.valid_to

    def public(self) -> PublicKey:
        """The matching public key, e.g. to put our own key into a Keyring."""
        return PublicKey(
            party=self.party,
            key_id=self.key_id,
            valid_from=self.valid_from,
            valid_to=self.valid_to,
            key=self.private_key.public_key(),
        )


def days_to_expiry(key: PublicKey | SigningKey, now: datetime) -> float:
    """Days until ``valid_to``; negative once the key has expired."""
    return (key.valid_to - now).total_seconds() / 86400.0


class Keyring:
    """Public keys by key id: counterparties' pinned keys, and possibly our own."""

    def __init__(self, keys: Iterable[PublicKey]) -> None:
        self._by_id: dict[str, PublicKey] = {}
        for key in keys:
            known = self._by_id.get(key.key_id)
            if known is not None and known != key:
                raise ValueError(f"two different public keys share the key id {key.key_id!r}")
            self._by_id[key.key_id] = key

    @classmethod
    def from_files(cls, paths: Iterable[Path]) -> Keyring:
        loaded: dict[str, tuple[Path, PublicKey]] = {}
        for path in paths:
            key = load_public_key(path)
            seen = loaded.setdefault(key.key_id, (path, key))
            if seen[1] != key:
                raise KeyFileError(
                    f"public key files {seen[0]} and {path} both claim key id {key.key_id!r} "
                    "with different keys; remove the wrong one"
                )
        return cls(key for _, key in loaded.values())

    def get(self, key_id: str) -> PublicKey | None:
        return self._by_id.get(key_id)

    def __iter__(self) -> Iterator[PublicKey]:
        return iter(sorted(self._by_id.values(), key=lambda k: k.key_id))

    def __len__(self) -> int:
        return len(self._by_id)


def generate_key_pair(
    party: str,
    out_dir: Path,
    *,
    key_id: str | None = None,
    valid_from: datetime | None = None,
    valid_days: int = 730,
    now: datetime | None = None,
) -> tuple[Path, Path]:
    """Write ``<key_id>.key`` (0600) and ``<key_id>.pub.json``; return (private, public) paths.

    ``out_dir`` is created (mode 0700) when missing. The default key id is
    ``<party>-<year of valid_from>-<n>`` with the first ``n`` whose files do not exist yet in
    ``out_dir``. Existing files are never overwritten. ``valid_from`` defaults to ``now``,
    truncated to the second.
    """
    if not _PARTY_RE.fullmatch(party):
        raise ValueError(f"party {party!r} is not a party id (e.g. CICA, SCO-RATS)")
    if key_id is not None and not _KEY_ID_RE.fullmatch(key_id):
        raise ValueError(f"key id {key_id!r} may only use letters, digits, '.', '_' and '-'")
    if valid_days < 1:
        raise ValueError(f"valid_days must be at least 1, got {valid_days}")
    start = valid_from or now or datetime.now(UTC)
    if start.tzinfo is None:
        raise ValueError("valid_from and now must be timezone-aware datetimes")
    start = start.astimezone(UTC).replace(microsecond=0)
    end = start + timedelta(days=valid_days)
    try:
        # Only the owner needs to list a directory of private keys; an existing one is kept.
        out_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise KeyFileError(f"cannot create key directory {out_dir}: {exc.strerror}") from None
    if key_id is None:
        key_id = _first_free_key_id(party, start.year, out_dir)
    private_path = out_dir / f"{key_id}{PRIVATE_SUFFIX}"
    public_path = out_dir / f"{key_id}{PUBLIC_SUFFIX}"
    for path in (private_path, public_path):
        if path.exists():
            raise KeyFileError(f"{path} already exists; refusing to overwrite a key file")

    private_key = Ed25519PrivateKey.generate()
    signing = SigningKey(party, key_id, start, end, private_key)
    published = signing.public().published()
    raw = private_key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    secret_doc = {**published, "private_key": base64.b64encode(raw).decode("ascii")}

    _create_exclusively(private_path, _json_bytes(secret_doc), 0o600)
    try:
        _create_exclusively(public_path, _json_bytes(published), 0o644)
    except BaseException:
        private_path.unlink(missing_ok=True)
        raise
    return private_path, public_path


def load_signing_key(path: Path) -> SigningKey:
    """Load this Party's private key; refuse it when group or others have any access to it."""
    doc = _parse_json(path, _read_owner_only(path))
    public = _public_from_doc(path, doc)
    encoded = doc.get("private_key")
    raw = _decode_raw_key(path, encoded, "private_key")
    private_key = Ed25519PrivateKey.from_private_bytes(raw)
    if private_key.public_key() != public.key:
        raise KeyFileError(
            f"{path}: public_key does not belong to private_key; the file is corrupt, "
            "restore it from backup or generate a new key"
        )
    return SigningKey(public.party, public.key_id, public.valid_from, public.valid_to, private_key)


def load_public_key(path: Path) -> PublicKey:
    """Load a published ``.pub.json`` key; refuse one that group or others may rewrite."""
    try:
        require_not_writable_by_others(path, "public key file")
        data = path.read_bytes()
    except FileNotFoundError:
        raise KeyFileError(
            f"public key file {path} does not exist; ask the counterparty for its .pub.json"
        ) from None
    except OSError as exc:
        raise KeyFileError(f"public key file {path} cannot be read: {exc.strerror}") from None
    except UnsafeFileError as exc:
        raise KeyFileError(str(exc)) from None
    doc = _parse_json(path, data)
    if "private_key" in doc:
        raise KeyFileError(
            f"{path} contains a private key; configure the .pub.json file instead and keep "
            "the private key away from public key lists"
        )
    return _public_from_doc(path, doc)


def _first_free_key_id(party: str, year: int, out_dir: Path) -> str:
    n = 1
    while True:
        candidate = f"{party}-{year}-{n}"
        paths = (out_dir / f"{candidate}{PRIVATE_SUFFIX}", out_dir / f"{candidate}{PUBLIC_SUFFIX}")
        if not any(p.exists() for p in paths):
            return candidate
        n += 1


def _json_bytes(doc: Mapping[str, str]) -> bytes:
    return (json.dumps(doc, indent=2) + "\n").encode("utf-8")


def _create_exclusively(path: Path, data: bytes, mode: int) -> None:
    try:
        create_exclusively(path, data, mode)
    except FileExistsError:
        raise KeyFileError(f"{path} already exists; refusing to overwrite a key file") from None


def _read_owner_only(path: Path) -> bytes:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise KeyFileError(
            f"signing key file {path} does not exist; create one with "
            "'gateway keys generate --party ID --out DIR' or fix keys.signing_key"
        ) from None
    except OSError as exc:
        raise KeyFileError(
            f"signing key file {path} cannot be read: {exc.strerror}; run the gateway as the "
            "file's owner"
        ) from None
    try:
        # fstat on the open descriptor checks the very file we read, not whatever the path
        # names a moment later.
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise KeyFileError(f"signing key file {path} is not a regular file")
        mode = stat.S_IMODE(info.st_mode)
        if mode & 0o077:
            access = "readable" if mode & 0o044 else "accessible"
            raise KeyFileError(
                f"signing key file {path} is {access} by others (mode {mode:04o}); "
                f"a private key must be accessible to its owner only: chmod 600 {path}"
            )
        with os.fdopen(os.dup(fd), "rb") as handle:
            return handle.read(_MAX_KEY_FILE_BYTES + 1)
    finally:
        os.close(fd)


def _parse_json(path: Path, data: bytes) -> dict[str, Any]:
    if len(data) > _MAX_KEY_FILE_BYTES:
        raise KeyFileError(f"{path} is too large to be a key file")
    try:
        doc = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise KeyFileError(f"{path} is not a JSON key file: {exc}") from None
    if not isinstance(doc, dict):
        raise KeyFileError(f"{path} is not a JSON key file: expected an object")
    return doc


def _public_from_doc(path: Path, doc: Mapping[str, Any]) -> PublicKey:
    if doc.get("alg") != ALG:
        raise KeyFileError(f"{path}: alg must be {ALG!r}, got {doc.get('alg')!r}")
    party, key_id = doc.get("party"), doc.get("key_id")
    if not isinstance(party, str) or not _PARTY_RE.fullmatch(party):
        raise KeyFileError(f"{path}: 'party' is missing or not a party id")
    if not isinstance(key_id, str) or not _KEY_ID_RE.fullmatch(key_id):
        raise KeyFileError(f"{path}: 'key_id' is missing or not a valid key id")
    valid_from = _timestamp(path, doc, "valid_from")
    valid_to = _timestamp(path, doc, "valid_to")
    if valid_to <= valid_from:
        raise KeyFileError(f"{path}: valid_to must be after valid_from")
    raw = _decode_raw_key(path, doc.get("public_key"), "public_key")
    return PublicKey(party, key_id, valid_from, valid_to, Ed25519PublicKey.from_public_bytes(raw))


def _timestamp(path: Path, doc: Mapping[str, Any], name: str) -> datetime:
    value = doc.get(name)
    if not isinstance(value, str):
        raise KeyFileError(f"{path}: {name!r} is missing; expected an RFC 3339 UTC timestamp")
    try:
        return parse_rfc3339(value)
    except ValueError:
        raise KeyFileError(f"{path}: {name!r} is not an RFC 3339 timestamp with offset") from None


def _decode_raw_key(path: Path, encoded: object, name: str) -> bytes:
    # Never echo the value: for private_key it is the secret.
    if not isinstance(encoded, str):
        raise KeyFileError(f"{path}: {name!r} is missing")
    try:
        raw = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise KeyFileError(f"{path}: {name!r} is not valid base64") from None
    if len(raw) != _RAW_KEY_BYTES:
        raise KeyFileError(f"{path}: {name!r} must encode {_RAW_KEY_BYTES} bytes")
    return raw
