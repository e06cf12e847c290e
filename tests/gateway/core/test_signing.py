from __future__ import annotations

import base64
import copy
import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.core.keys import Keyring, SigningKey, format_rfc3339
from gateway.core.signing import (
    SignatureError,
    canonical_bytes,
    envelope_digest,
    sign_envelope,
    sign_envelope_with_digest,
    verify_envelope,
)

NOW = datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC)


def _key(party: str, key_id: str, start: datetime, days: int) -> SigningKey:
    return SigningKey(
        party, key_id, start, start + timedelta(days=days), Ed25519PrivateKey.generate()
    )


# Two CICA keys overlapping from NOW-10d to NOW+20d: the rotation window.
CICA_OLD = _key("CICA", "CICA-2026-1", NOW - timedelta(days=300), 320)
CICA_NEW = _key("CICA", "CICA-2026-2", NOW - timedelta(days=10), 730)
RATS = _key("SCO-RATS", "SCO-RATS-2026-1", NOW - timedelta(days=100), 730)
EXPIRED = _key("CICA", "CICA-2024-1", NOW - timedelta(days=800), 730)
FUTURE = _key("CICA", "CICA-2027-1", NOW + timedelta(days=30), 730)
KEYRING = Keyring(k.public() for k in (CICA_OLD, CICA_NEW, RATS, EXPIRED, FUTURE))


def _envelope(party: str = "CICA", created_at: datetime = NOW, **extra: Any) -> dict[str, Any]:
    envelope: dict[str, Any] = {
        "id": "01964f6e-8a43-7c1e-9a3b-0c1d2e3f4a5b",
        "type": "information.share",
        "version": 1,
        "originator": {
            "party": party,
            "system": "case-desk",
            "officer": "lo-0042",
            "submission_id": "sub-1",
        },
        "recipient": "SCO-RATS" if party == "CICA" else "CICA",
        "created_at": format_rfc3339(created_at),
        "correlation_id": None,
        "in_reply_to": None,
        "derived_from": [],
        "handling": {"onward": "consent-required", "pre_approved": []},
        "body": {"title": {"en": "Report", "ru": "Отчёт"}, "score": 0.25, "items": [1, 2, 3]},
    }
    envelope.update(extra)
    return envelope


def _code(envelope: Any, now: datetime = NOW, keyring: Keyring = KEYRING) -> str:
    with pytest.raises(SignatureError) as caught:
        verify_envelope(envelope, keyring, now)
    return caught.value.code


# --- canonical form and digest ---------------------------------------------------------------


def test_canonical_bytes_drop_signature_and_ignore_member_order() -> None:
    envelope = _envelope()
    signed = sign_envelope(envelope, CICA_NEW)
    reordered = dict(reversed(list(signed.items())))
    assert canonical_bytes(signed) == canonical_bytes(envelope) == canonical_bytes(reordered)
    assert canonical_bytes(envelope) == rfc8785.dumps(envelope)
    assert b'"signature"' not in canonical_bytes(signed)


def test_envelope_digest_covers_the_whole_signed_envelope() -> None:
    signed = sign_envelope(_envelope(), CICA_NEW)
    assert envelope_digest(signed) == hashlib.sha256(rfc8785.dumps(signed)).hexdigest()
    assert envelope_digest(signed) != hashlib.sha256(canonical_bytes(signed)).hexdigest()
    resigned = sign_envelope(signed, CICA_OLD)
    assert envelope_digest(resigned) != envelope_digest(signed)
    assert envelope_digest(json.loads(json.dumps(signed))) == envelope_digest(signed)


# --- signing and the happy path --------------------------------------------------------------


def test_sign_returns_new_dict_with_signature_and_verifies() -> None:
    envelope = _envelope()
    before = copy.deepcopy(envelope)
    signed = sign_envelope(envelope, CICA_NEW)
    assert envelope == before
    assert "signature" not in envelope
    signature = signed["signature"]
    assert set(signature) == {"alg", "key_id", "value"}
    assert signature["alg"] == "ed25519"
    assert signature["key_id"] == "CICA-2026-2"
    assert len(base64.b64decode(signature["value"], validate=True)) == 64
    assert verify_envelope(signed, KEYRING, NOW) == CICA_NEW.public()


def test_signed_envelope_survives_a_json_round_trip() -> None:
    signed = sign_envelope(_envelope(), CICA_NEW)
    wire = json.dumps(signed, ensure_ascii=False, indent=3).encode()
    assert verify_envelope(json.loads(wire), KEYRING, NOW).key_id == "CICA-2026-2"


def test_resigning_replaces_the_old_signature() -> None:
    signed = sign_envelope(sign_envelope(_envelope(), CICA_OLD), CICA_NEW)
    assert signed["signature"]["key_id"] == "CICA-2026-2"
    assert verify_envelope(signed, KEYRING, NOW).key_id == "CICA-2026-2"


def test_rotation_with_overlap_both_keys_verify() -> None:
    in_overlap = NOW + timedelta(days=5)
    for key in (CICA_OLD, CICA_NEW):
        signed = sign_envelope(_envelope(created_at=in_overlap), key)
        assert verify_envelope(signed, KEYRING, in_overlap).key_id == key.key_id
    assert [k.key_id for k in KEYRING if k.party == "CICA"] == [
        "CICA-2024-1",
        "CICA-2026-1",
        "CICA-2026-2",
        "CICA-2027-1",
    ]


# --- each rejection with its own code --------------------------------------------------------


def test_forged_signature_is_bad() -> None:
    impostor = SigningKey(
        "CICA", "CICA-2026-2", CICA_NEW.valid_from, CICA_NEW.valid_to, Ed25519PrivateKey.generate()
    )
    forged = sign_envelope(_envelope(), impostor)
    assert _code(forged) == "signature.bad"


def test_tampered_body_is_bad() -> None:
    signed = sign_envelope(_envelope(), CICA_NEW)
    signed["body"]["items"].append(4)
    assert _code(signed) == "signature.bad"


@pytest.mark.parametrize("member", ["recipient", "created_at", "derived_from", "handling"])
def test_tampered_envelope_member_is_bad(member: str) -> None:
    signed = sign_envelope(_envelope(), CICA_NEW)
    signed[member] = {
        "recipient": "UNOCT",
        "created_at": format_rfc3339(NOW - timedelta(minutes=1)),
        "derived_from": ["01964f6e-0000-7000-8000-000000000000"],
        "handling": {"onward": "free", "pre_approved": ["UNOCT"]},
    }[member]
    assert _code(signed) == "signature.bad"


def test_added_member_is_bad() -> None:
    signed = sign_envelope(_envelope(), CICA_NEW)
    signed["extra"] = None
    assert _code(signed) == "signature.bad"


@pytest.mark.parametrize("other", ["CICA-2026-1", "SCO-RATS-2026-1"])
def test_swapped_key_id_is_bad(other: str) -> None:
    signed = sign_envelope(_envelope(), CICA_NEW)
    signed["signature"]["key_id"] = other
    assert _code(signed) == "signature.bad"


def test_unknown_key_id() -> None:
    signed = sign_envelope(_envelope(), _key("CICA", "CICA-2099-1", NOW, 10))
    with pytest.raises(SignatureError) as caught:
        verify_envelope(signed, KEYRING, NOW)
    assert caught.value.code == "signature.unknown_key"
    assert "CICA-2099-1" in caught.value.detail


def test_party_mismatch() -> None:
    signed = sign_envelope(_envelope(party="CICA"), RATS)
    with pytest.raises(SignatureError) as caught:
        verify_envelope(signed, KEYRING, NOW)
    assert caught.value.code == "signature.party_mismatch"
    assert "SCO-RATS" in caught.value.detail


def test_expired_key_is_not_valid() -> None:
    signed = sign_envelope(_envelope(), EXPIRED)
    assert _code(signed) == "signature.key_not_valid"


def test_key_not_yet_valid() -> None:
    signed = sign_envelope(_envelope(), FUTURE)
    assert _code(signed) == "signature.key_not_valid"


def test_key_must_be_valid_at_created_at_not_only_now() -> None:
    backdated = sign_envelope(
        _envelope(created_at=CICA_NEW.valid_from - timedelta(seconds=1)), CICA_NEW
    )
    assert _code(backdated) == "signature.key_not_valid"


def test_key_must_be_valid_now_not_only_at_created_at() -> None:
    created = CICA_OLD.valid_to - timedelta(seconds=1)
    signed = sign_envelope(_envelope(created_at=created), CICA_OLD)
    assert verify_envelope(signed, KEYRING, created).key_id == "CICA-2026-1"
    assert _code(signed, now=CICA_OLD.valid_to) == "signature.key_not_valid"


@pytest.mark.parametrize("signature", [None, ...])
def test_missing_signature(signature: Any) -> None:
    envelope = _envelope()
    if signature is not ...:
        envelope["signature"] = signature
    assert _code(envelope) == "signature.missing"


def _signed_then(change: Any) -> dict[str, Any]:
    signed = sign_envelope(_envelope(), CICA_NEW)
    change(signed)
    return signed


def _noncanonical_base64(signed: dict[str, Any]) -> None:
    value = signed["signature"]["value"]
    # The last character before "==" carries 4 unused bits: flipping one keeps the same bytes.
    last = value[-3]
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    twin = alphabet[alphabet.index(last) ^ 1]
    signed["signature"]["value"] = value[:-3] + twin + "=="
    assert base64.b64decode(signed["signature"]["value"]) == base64.b64decode(value)


MALFORMED: dict[str, Any] = {
    "envelope is a list": [],
    "envelope is a string": "envelope",
    "envelope is null": None,
    "signature is a string": _envelope(signature="abc"),
    "signature is a list": _envelope(signature=[]),
    "signature lacks value": _signed_then(lambda e: e["signature"].pop("value")),
    "signature has extra member": _signed_then(lambda e: e["signature"].update(x=1)),
    "alg is rsa": _signed_then(lambda e: e["signature"].update(alg="rsa")),
    "alg is a list": _signed_then(lambda e: e["signature"].update(alg=["ed25519"])),
    "key_id is int": _signed_then(lambda e: e["signature"].update(key_id=7)),
    "key_id is empty": _signed_then(lambda e: e["signature"].update(key_id="")),
    "value is int": _signed_then(lambda e: e["signature"].update(value=12)),
    "value is not base64": _signed_then(lambda e: e["signature"].update(value="@@@@")),
    "value is short": _signed_then(lambda e: e["signature"].update(value="AAAA")),
    "value has whitespace": _signed_then(
        lambda e: e["signature"].update(
            value=e["signature"]["value"][:10] + "\n" + e["signature"]["value"][10:]
        )
    ),
    "value is non-canonical base64": _signed_then(_noncanonical_base64),
    "originator missing": _signed_then(lambda e: e.pop("originator")),
    "originator is a list": _signed_then(lambda e: e.update(originator=["CICA"])),
    "originator.party is int": _signed_then(lambda e: e["originator"].update(party=1)),
    "created_at missing": _signed_then(lambda e: e.pop("created_at")),
    "created_at is a number": _signed_then(lambda e: e.update(created_at=1700000000)),
    "created_at is naive": _signed_then(lambda e: e.update(created_at="2026-06-01T12:00:00")),
    "created_at is garbage": _signed_then(lambda e: e.update(created_at="yesterday")),
    "created_at out of range": _signed_then(
        lambda e: e.update(created_at="0001-01-01T00:00:00+01:00")
    ),
    "integer beyond 2**53": _signed_then(lambda e: e["body"].update(n=2**60)),
    "NaN in body": _signed_then(lambda e: e["body"].update(n=float("nan"))),
    "lone surrogate": _signed_then(lambda e: e["body"].update(n=json.loads('"\\ud800"'))),
    "non-string key": _signed_then(lambda e: e["body"].update({1: "x"})),
    "non-JSON value": _signed_then(lambda e: e["body"].update(n=object())),
}


@pytest.mark.parametrize("envelope", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_is_coded_never_a_crash(envelope: Any) -> None:
    assert _code(envelope) == "signature.malformed"


def test_naive_now_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        verify_envelope(sign_envelope(_envelope(), CICA_NEW), KEYRING, datetime(2026, 6, 1))


def test_error_detail_is_bounded() -> None:
    signed = sign_envelope(_envelope(), CICA_NEW)
    signed["signature"]["key_id"] = "k" * 10_000
    with pytest.raises(SignatureError) as caught:
        verify_envelope(signed, KEYRING, NOW)
    assert caught.value.code == "signature.unknown_key"
    assert len(caught.value.detail) < 200


# --- properties ------------------------------------------------------------------------------

_SAFE_INT = 2**53 - 1

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-_SAFE_INT, _SAFE_INT)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=12,
)


@st.composite
def envelopes(draw: st.DrawFn) -> dict[str, Any]:
    envelope: dict[str, Any] = draw(
        st.dictionaries(
            st.text(max_size=8).filter(
                lambda k: k not in {"signature", "originator", "created_at"}
            ),
            json_values,
            max_size=6,
        )
    )
    originator: dict[str, Any] = draw(st.dictionaries(st.text(max_size=6), json_values, max_size=3))
    originator["party"] = "CICA"
    envelope["originator"] = originator
    created = draw(st.datetimes(min_value=datetime(2026, 5, 25), max_value=datetime(2026, 6, 1)))
    envelope["created_at"] = format_rfc3339(created.replace(tzinfo=UTC))
    return envelope


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            found += _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            found += _paths(v, (*prefix, i))
    return found


@st.composite
def mutations(draw: st.DrawFn, signed: dict[str, Any]) -> dict[str, Any]:
    """One change at one place: replace a value, delete a member or item, or add a member."""
    mutated = copy.deepcopy(signed)
    path = draw(st.sampled_from(_paths(mutated)[1:]))
    parent = mutated
    for step in path[:-1]:
        parent = parent[step]
    last = path[-1]
    kind = draw(st.sampled_from(["replace", "delete", "add"]))
    if kind == "delete":
        del parent[last]
    elif kind == "add" and isinstance(parent[last], dict):
        parent[last][draw(st.text(max_size=6))] = draw(json_values)
    elif kind == "add" and isinstance(parent[last], list):
        parent[last].insert(draw(st.integers(0, len(parent[last]))), draw(json_values))
    else:
        parent[last] = draw(json_values)
    return mutated


PROPERTY = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(envelopes())
def test_any_json_envelope_signs_and_verifies(envelope: dict[str, Any]) -> None:
    signed = sign_envelope(envelope, CICA_NEW)
    assert verify_envelope(json.loads(json.dumps(signed)), KEYRING, NOW).key_id == "CICA-2026-2"


@PROPERTY
@given(st.data(), envelopes())
def test_any_single_mutation_breaks_verification(
    data: st.DataObject, envelope: dict[str, Any]
) -> None:
    signed = sign_envelope(envelope, CICA_NEW)
    mutated = data.draw(mutations(signed))
    # A change invisible to RFC 8785 (1 -> 1.0, 0.0 -> -0.0) is no change at all; every other
    # change must be refused.
    changed = rfc8785.dumps(mutated) != rfc8785.dumps(signed)
    if changed:
        with pytest.raises(SignatureError):
            verify_envelope(mutated, KEYRING, NOW)
    else:
        assert verify_envelope(mutated, KEYRING, NOW).key_id == "CICA-2026-2"


@PROPERTY
@given(json_values)
def test_arbitrary_json_only_ever_raises_signature_error(value: Any) -> None:
    with pytest.raises(SignatureError):
        verify_envelope(value, KEYRING, NOW)


@given(
    st.dictionaries(
        st.sampled_from(["id", "recipient", "sig", "signaturf", "type", "version", "\U0001f600"])
        | st.text(min_size=1, max_size=12),
        st.recursive(
            st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | st.text(max_size=20),
            lambda children: (
                st.lists(children, max_size=3)
                | st.dictionaries(st.text(max_size=8), children, max_size=3)
            ),
            max_leaves=8,
        ),
        max_size=8,
    )
)
@settings(max_examples=300, deadline=None)
def test_the_digest_from_signing_equals_the_digest_of_the_signed_envelope(
    envelope: dict[str, Any],
) -> None:
    key = CICA_NEW
    signed, digest = sign_envelope_with_digest(envelope, key)
    assert signed == sign_envelope(envelope, key)
    assert digest == envelope_digest(signed)
