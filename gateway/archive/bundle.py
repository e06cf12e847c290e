"""Signed, self-verifying export bundles of an archive time range.

A bundle is JSON lines::

    {"header": {format, version, party, key_id, created_at, since, until, prev_seq, prev_hash}}
    {"record": {every field of one record, payload in base64}}        (one line per record)
    {"manifest": {records, first_seq, last_seq, head_hash, sha256, alg, key_id, signature}}

``prev_seq``/``prev_hash`` are the chain link into the range: the first record must follow
them. ``sha256`` is the digest of every byte before the manifest line, and ``signature`` is the
exporting Party's Ed25519 signature over the RFC 8785 form of the manifest without it. Anyone
holding the Parties' public keys can check a bundle offline: every record hash and link, the
manifest, and the signature of every archived envelope.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import rfc8785
from cryptography.exceptions import InvalidSignature

from gateway.archive.chain import GENESIS, ChainVerifier
from gateway.archive.records import parse_time, record_from_json, record_to_json
from gateway.archive.store import ArchiveStore
from gateway.archive.verify import envelope_problem, signed_envelope
from gateway.core.keys import ALG, Keyring, SigningKey
from gateway.core.stamping import rfc3339
from gateway.files import open_private

FORMAT = "liaison-gateway-archive-bundle"
VERSION = 1


class BundleError(Exception):
    """An export that cannot be made (the range in the archive is itself broken)."""


@dataclass(frozen=True)
class ExportSummary:
    path: Path
    records: int
    first_seq: int | None
    last_seq: int | None
    head_hash: str


@dataclass(frozen=True)
class BundleReport:
    records: int
    party: str | None = None
    key_id: str | None = None
    first_seq: int | None = None
    last_seq: int | None = None
    problem: str | None = None
    line: int | None = None
    # Where the bundle's chain ends: its last record, or the link into it when it is empty.
    head_seq: int | None = None
    head_hash: str | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None


def _line(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8") + b"\n"


def _manifest_message(manifest: dict[str, Any]) -> bytes:
    return rfc8785.dumps({k: v for k, v in manifest.items() if k != "signature"})


class _HashingWriter:
    def __init__(self, handle: IO[bytes]) -> None:
        self._handle = handle
        self.digest = hashlib.sha256()

    def write(self, data: bytes) -> None:
        self._handle.write(data)
        self.digest.update(data)


async def _link_into(store: ArchiveStore, first_seq: int) -> str:
    """The hash the range's first record must follow."""
    if first_seq <= 1:
        return GENESIS
    before = await store.get(first_seq - 1)
    if before is None:
        raise BundleError(f"record {first_seq - 1} is missing from the archive")
    return before.hash


async def _write_records(
    store: ArchiveStore,
    writer: _HashingWriter,
    chain: ChainVerifier,
    after_seq: int,
    head_seq: int,
    until: datetime,
) -> int | None:
    """Write the records after ``after_seq`` up to the head and ``until``, checking the chain;
    the last seq written, if any."""
    last_seq: int | None = None
    async for record in store.iter_records(after_seq=after_seq):
        if record.seq > head_seq or record.recorded_at >= until:
            break
        if not chain.feed(record):
            raise BundleError(
                f"the archive is broken at seq {record.seq}: {chain.report().reason}; "
                "run 'gateway archive verify'"
            )
        writer.write(_line({"record": record_to_json(record)}))
        last_seq = record.seq
    return last_seq


def _signed_manifest(
    chain: ChainVerifier,
    first_seq: int,
    last_seq: int | None,
    digest: str,
    signing_key: SigningKey,
) -> dict[str, Any]:
    report = chain.report()
    manifest: dict[str, Any] = {
        "records": report.count,
        "first_seq": first_seq if last_seq is not None else None,
        "last_seq": last_seq,
        "head_hash": report.head_hash,
        "sha256": digest,
        "alg": ALG,
        "key_id": signing_key.key_id,
    }
    signature = signing_key.private_key.sign(_manifest_message(manifest))
    manifest["signature"] = base64.b64encode(signature).decode("ascii")
    return manifest


async def export_bundle(
    store: ArchiveStore,
    since: datetime,
    until: datetime,
    signing_key: SigningKey,
    out: Path,
) -> ExportSummary:
    """Write the records recorded in ``[since, until)`` to ``out`` as a signed bundle.

    The range is chain-checked while it is written, so a broken archive is never signed; the
    file appears complete or not at all.
    """
    created_at = datetime.now(UTC)
    if not signing_key.is_valid_at(created_at):
        raise BundleError(
            f"signing key {signing_key.key_id} is not valid now (valid from "
            f"{rfc3339(signing_key.valid_from)} to {rfc3339(signing_key.valid_to)})"
        )
    head_seq, _ = await store.head()
    first_seq = await store.first_seq_at(since)
    prev_hash = await _link_into(store, first_seq)
    header = {
        "format": FORMAT,
        "version": VERSION,
        "party": signing_key.party,
        "key_id": signing_key.key_id,
        "created_at": rfc3339(created_at),
        "since": rfc3339(since),
        "until": rfc3339(until),
        "prev_seq": first_seq - 1,
        "prev_hash": prev_hash,
    }
    chain = ChainVerifier(first_seq - 1, prev_hash)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        with open_private(tmp) as handle:
            writer = _HashingWriter(handle)
            writer.write(_line({"header": header}))
            last_seq = await _write_records(store, writer, chain, first_seq - 1, head_seq, until)
            digest = writer.digest.hexdigest()
            manifest = _signed_manifest(chain, first_seq, last_seq, digest, signing_key)
            handle.write(_line({"manifest": manifest}))
            handle.flush()
            os.fsync(handle.fileno())
        tmp.replace(out)
    finally:
        tmp.unlink(missing_ok=True)
    report = chain.report()
    return ExportSummary(out, report.count, manifest["first_seq"], last_seq, report.head_hash)


def _object(line: bytes, member: str) -> dict[str, Any]:
    try:
        doc = json.loads(line)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"not JSON: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get(member), dict):
        raise ValueError(f"expected a {member!r} object")
    value: dict[str, Any] = doc[member]
    return value


def _check_manifest(
    manifest: dict[str, Any], header: dict[str, Any], digest: str, keyring: Keyring
) -> str | None:
    if manifest.get("sha256") != digest:
        return "manifest sha256 does not match the bundle content"
    key_id = manifest.get("key_id")
    if manifest.get("alg") != ALG or key_id != header.get("key_id"):
        return "manifest alg or key_id does not match the header"
    key = keyring.get(str(key_id))
    if key is None:
        return f"no public key {key_id!r} to check the manifest signature"
    if key.party != header.get("party"):
        return f"key {key_id} belongs to {key.party}, not to the exporting party"
    try:
        signature = base64.b64decode(str(manifest.get("signature")), validate=True)
        key.key.verify(signature, _manifest_message(manifest))
    except (binascii.Error, ValueError, InvalidSignature):
        return "manifest signature does not verify"
    if not key.is_valid_at(parse_time(str(header.get("created_at")))):
        return f"key {key_id} was not valid when the bundle was created"
    return None


def verify_bundle(path: Path, public_keys: Keyring) -> BundleReport:
    """Check a bundle offline with public keys only; report the first problem."""
    lines = path.read_bytes().splitlines(keepends=True)
    if len(lines) < 2:
        return BundleReport(0, problem="not a bundle: needs a header and a manifest line")
    try:
        header = _object(lines[0], "header")
        manifest = _object(lines[-1], "manifest")
        if header.get("format") != FORMAT or header.get("version") != VERSION:
            raise ValueError(f"not a version {VERSION} {FORMAT}")
        party, key_id = str(header["party"]), str(header["key_id"])
        chain = ChainVerifier(int(header["prev_seq"]), str(header["prev_hash"]))
        digest = hashlib.sha256(b"".join(lines[:-1])).hexdigest()
        problem = _check_manifest(manifest, header, digest, public_keys)
    except (ValueError, KeyError, TypeError) as exc:
        return BundleReport(0, problem=f"malformed bundle: {exc}")

    def failed(why: str, line: int) -> BundleReport:
        count = chain.report().count
        return BundleReport(count, party=party, key_id=key_id, problem=why, line=line)

    if problem is not None:
        return failed(problem, len(lines))
    first_seq: int | None = None
    for number, line in enumerate(lines[1:-1], start=2):
        try:
            record = record_from_json(_object(line, "record"))
        except (ValueError, KeyError, TypeError) as exc:
            return failed(f"bad record: {exc}", number)
        first_seq = record.seq if first_seq is None else first_seq
        if not chain.feed(record):
            return failed(f"seq {record.seq}: {chain.report().reason}", number)
        envelope = signed_envelope(record)
        why = None if envelope is None else envelope_problem(record, envelope, public_keys)
        if why is not None:
            return failed(f"seq {record.seq} ({record.kind}): {why}", number)
    report = chain.report()
    if (manifest.get("records"), manifest.get("head_hash")) != (report.count, report.head_hash):
        return failed("manifest record count or head hash does not match the records", len(lines))
    return BundleReport(
        report.count,
        party=party,
        key_id=key_id,
        first_seq=first_seq,
        last_seq=report.head_seq if report.count else None,
        head_seq=report.head_seq,
        head_hash=report.head_hash,
    )
