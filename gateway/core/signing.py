"""Ed25519 signatures over the RFC 8785 canonical JSON of an envelope without ``signature``.

``verify_envelope`` runs on the raw decoded JSON before schema validation, so it treats every
member as untrusted: anything missing or of the wrong type is ``signature.malformed``, never a
KeyError or TypeError.

Checks run in this order, so that every code after ``signature.bad`` describes an envelope whose
signature is authentic and which is refused by policy:

1. ``signature.missing``: no ``signature`` member (or null).
2. ``signature.malformed``: ``signature`` is not exactly ``{alg: "ed25519", key_id, value}`` with
   ``value`` the canonical base64 of 64 bytes (a second spelling of the same bytes would change
   the envelope digest used in receipts), or ``originator.party`` / ``created_at`` is missing or
   unusable, or the envelope cannot be canonicalised (e.g. integers beyond 2**53).
3. ``signature.unknown_key``: ``key_id`` is not in the keyring.
4. ``signature.bad``: the signature does not verify.
5. ``signature.party_mismatch``: ``originator.party`` is not the key's owner.
6. ``signature.key_not_valid``: the key's window does not contain both ``created_at`` and
   ``now``. ``created_at`` alone is chosen by the signer, so a retired or leaked key could go on
   signing back-dated envelopes; ``now`` alone would let a key sign envelopes dated before it
   existed. Consequence for rotation: stop signing with the old key at least
   ``max_envelope_age`` (plus transit time) before its ``valid_to``. To re-check an archived
   envelope after its key expired, pass its ``created_at`` as ``now``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal

from cryptography.exceptions import InvalidSignature

from gateway.core.canonical import dumps as canonicalise
from gateway.core.keys import ALG, Keyring, PublicKey, SigningKey, parse_rfc3339

SignatureCode = Literal[
    "signature.missing",
    "signature.malformed",
    "signature.unknown_key",
    "signature.key_not_valid",
    "signature.bad",
    "signature.party_mismatch",
]

_SIGNATURE_BYTES = 64
_SIGNATURE_MEMBERS = frozenset({"alg", "key_id", "value"})


class SignatureError(Exception):
    """An envelope whose signature cannot be accepted; ``code`` is the rejection reason."""

    def __init__(self, code: SignatureCode, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code: SignatureCode = code
        self.detail = detail


def canonical_bytes(obj: Mapping[str, Any]) -> bytes:
    """RFC 8785 canonical JSON of ``obj`` without its top-level ``signature`` member."""
    return canonicalise({k: v for k, v in obj.items() if k != "signature"})


def envelope_digest(envelope: Mapping[str, Any]) -> str:
    """Hex SHA-256 of the canonical form of the whole signed envelope, signature included."""
    return hashlib.sha256(canonicalise(dict(envelope))).hexdigest()


def sign_envelope(envelope: Mapping[str, Any], key: SigningKey) -> dict[str, Any]:
    """A copy of ``envelope`` with a fresh ``signature``; an existing one is replaced.

    Raises ``rfc8785.CanonicalizationError`` (a ValueError) for values JSON cannot carry exactly.
    """
    return sign_envelope_with_digest(envelope, key)[0]


def sign_envelope_with_digest(
    envelope: Mapping[str, Any], key: SigningKey
) -> tuple[dict[str, Any], str]:
    """``sign_envelope`` and ``envelope_digest`` of the result, canonicalising only once.

    RFC 8785 sorts members and canonicalises each value on its own, so the canonical form of
    the signed envelope is the unsigned one with the ``signature`` member inserted at its sorted
    place. The insertion is checked against the members that sort after ``signature``; if the
    check fails the whole envelope is canonicalised again.
    """
    unsigned = {k: v for k, v in envelope.items() if k != "signature"}
    canonical = canonicalise(unsigned)
    value = key.private_key.sign(canonical)
    signature = {
        "alg": ALG,
        "key_id": key.key_id,
        "value": base64.b64encode(value).decode("ascii"),
    }
    signed = {**unsigned, "signature": signature}
    return signed, hashlib.sha256(_with_signature(canonical, unsigned, signature)).hexdigest()


def _utf16(key: str) -> bytes:
    return key.encode("utf-16-be")


def _with_signature(
    canonical: bytes, unsigned: Mapping[str, Any], signature: Mapping[str, Any]
) -> bytes:
    member = b'"signature":' + canonicalise(dict(signature))
    after = {k: v for k, v in unsigned.items() if _utf16(k) > _utf16("signature")}
    if not after:
        if canonical == b"{}":
            return b"{" + member + b"}"
        return canonical[:-1] + b"," + member + b"}"
    tail = canonicalise(after)[1:]
    if not canonical.endswith(b"," + tail):
        return canonicalise({**unsigned, "signature": dict(signature)})
    return canonical[: -len(tail)] + member + b"," + tail


def verify_envelope(envelope: Mapping[str, Any], keyring: Keyring, now: datetime) -> PublicKey:
    """Return the key that verified ``envelope``, or raise SignatureError with a reason code."""
    if now.tzinfo is None:
        raise ValueError("now must be a timezone-aware datetime")
    if not isinstance(envelope, Mapping):
        raise SignatureError("signature.malformed", "the envelope is not a JSON object")
    signature = envelope.get("signature")
    if signature is None:
        raise SignatureError("signature.missing", "the envelope has no signature")
    key_id, raw_signature = _parse_signature(signature)
    party = _originator_party(envelope)
    created_at = _created_at(envelope)
    try:
        message = canonical_bytes(envelope)
    except (ValueError, TypeError, RecursionError) as exc:
        raise SignatureError("signature.malformed", f"not canonicalisable JSON: {exc}") from None

    key = keyring.get(key_id)
    if key is None:
        raise SignatureError("signature.unknown_key", f"no pinned public key {_short(key_id)}")
    try:
        key.key.verify(raw_signature, message)
    except InvalidSignature:
        raise SignatureError(
            "signature.bad", f"signature does not verify with key {key.key_id}"
        ) from None
    if key.party != party:
        raise SignatureError(
            "signature.party_mismatch",
            f"originator.party {_short(party)} but key {key.key_id} belongs to {key.party}",
        )
    for label, moment in (("created_at", created_at), ("now", now)):
        if not key.is_valid_at(moment):
            raise SignatureError(
                "signature.key_not_valid",
                f"key {key.key_id} is valid from {key.valid_from.isoformat()} to "
                f"{key.valid_to.isoformat()}, not at {label} {moment.isoformat()}",
            )
    return key


def _parse_signature(signature: object) -> tuple[str, bytes]:
    if not isinstance(signature, Mapping):
        raise SignatureError("signature.malformed", "signature is not an object")
    if set(signature) != _SIGNATURE_MEMBERS:
        raise SignatureError("signature.malformed", "signature must have alg, key_id, value only")
    alg, key_id, value = signature["alg"], signature["key_id"], signature["value"]
    if alg != ALG:
        raise SignatureError("signature.malformed", f"unsupported alg {_short(alg)}")
    if not isinstance(key_id, str) or not key_id:
        raise SignatureError("signature.malformed", "key_id is not a non-empty string")
    if not isinstance(value, str):
        raise SignatureError("signature.malformed", "value is not a base64 string")
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise SignatureError("signature.malformed", "value is not valid base64") from None
    if len(raw) != _SIGNATURE_BYTES or base64.b64encode(raw).decode("ascii") != value:
        raise SignatureError(
            "signature.malformed", "value is not the canonical base64 of a 64-byte signature"
        )
    return key_id, raw


def _originator_party(envelope: Mapping[str, Any]) -> str:
    originator = envelope.get("originator")
    party = originator.get("party") if isinstance(originator, Mapping) else None
    if not isinstance(party, str):
        raise SignatureError("signature.malformed", "originator.party is missing")
    return party


def _created_at(envelope: Mapping[str, Any]) -> datetime:
    value = envelope.get("created_at")
    if not isinstance(value, str):
        raise SignatureError("signature.malformed", "created_at is missing")
    try:
        return parse_rfc3339(value)
    except ValueError:
        raise SignatureError(
            "signature.malformed", f"created_at {_short(value)} is not an RFC 3339 timestamp"
        ) from None


def _short(value: object) -> str:
    """A bounded repr, so a hostile member cannot flood the logs or the rejection reason."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
