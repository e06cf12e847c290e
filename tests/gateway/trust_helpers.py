"""Builders shared by the unit tests of the trust decisions: keys, envelopes, a fixed clock."""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.core.keys import SigningKey
from gateway.core.signing import sign_envelope
from gateway.core.stamping import rfc3339
from tests.support.parties import assignment, share

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
_ids = itertools.count(1)


def new_key(
    party: str, key_id: str, start: datetime = NOW - timedelta(days=30), days: int = 365
) -> SigningKey:
    return SigningKey(
        party, key_id, start, start + timedelta(days=days), Ed25519PrivateKey.generate()
    )


def next_id() -> str:
    """A fresh UUIDv7-shaped envelope id, deterministic within a run."""
    return f"01960f7e-0000-7000-8000-{next(_ids):012x}"


def envelope(
    type_: str = "information.share",
    body: dict[str, Any] | None = None,
    *,
    party: str = "CICA",
    recipient: str = "SCO-RATS",
    officer: str | None = "lo-0001",
    created_at: datetime = NOW,
    derived_from: list[str] | None = None,
    correlation_id: str | None = None,
) -> dict[str, Any]:
    """An unsigned envelope as ``party``'s gateway stamps it."""
    return {
        "id": next_id(),
        "type": type_,
        "version": 1,
        "originator": {
            "party": party,
            "system": "case-desk",
            "officer": officer,
            "submission_id": uuid.uuid4().hex,
        },
        "recipient": recipient,
        "created_at": rfc3339(created_at),
        "correlation_id": correlation_id,
        "in_reply_to": None,
        "derived_from": derived_from or [],
        "handling": {"onward": "consent-required", "pre_approved": []},
        "body": body if body is not None else share(recipient, "A report.")["body"],
    }


def signed(key: SigningKey, type_: str = "information.share", **kwargs: Any) -> dict[str, Any]:
    kwargs.setdefault("party", key.party)
    return sign_envelope(envelope(type_, **kwargs), key)


def assignment_envelope(
    key: SigningKey, officer: str, *, recipient: str = "SCO-RATS", **kwargs: Any
) -> dict[str, Any]:
    return signed(
        key,
        "liaison.assignment",
        body=assignment(officer),
        officer=None,
        recipient=recipient,
        **kwargs,
    )


def withdrawal_envelope(
    key: SigningKey, officer: str, *, recipient: str = "SCO-RATS", **kwargs: Any
) -> dict[str, Any]:
    body = {**assignment(officer), "action": "withdraw"}
    return signed(key, "liaison.assignment", body=body, officer=None, recipient=recipient, **kwargs)
