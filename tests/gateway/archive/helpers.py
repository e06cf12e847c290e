"""Builders shared by the archive tests: entries, signed envelopes, raw SQL and a manual clock."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import text

from gateway.archive import ArchiveStore, Entry
from gateway.core.keys import Keyring, SigningKey
from gateway.core.signing import sign_envelope

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@dataclass
class ManualClock:
    """The archive's clock in tests: moves only when told to."""

    now: datetime = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


class Party:
    """A Party's signing key (valid around T0 unless given) and its id."""

    def __init__(self, party: str, key: SigningKey | None = None) -> None:
        self.party = party
        self.key = key or SigningKey(
            party=party,
            key_id=f"{party}-2026-1",
            valid_from=T0 - timedelta(days=30),
            valid_to=T0 + timedelta(days=365 * 50),  # still valid whenever the tests run
            private_key=Ed25519PrivateKey.generate(),
        )


def keyring(*parties: Party) -> Keyring:
    return Keyring(p.key.public() for p in parties)


def envelope(party: Party, n: int, **overrides: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "id": f"env-{party.party}-{n:05d}",
        "type": "information.share",
        "version": 1,
        "originator": {
            "party": party.party,
            "system": "case-desk",
            "officer": "lo-0042",
            "submission_id": f"msg-{n:05d}",
        },
        "recipient": "SCO-RATS" if party.party == "CICA" else "CICA",
        "created_at": "2026-03-01T11:59:00Z",
        "correlation_id": None,
        "in_reply_to": None,
        "derived_from": [],
        "handling": {"onward": "consent-required", "pre_approved": []},
        "body": {"text": {"en": f"note {n}", "ru": f"заметка {n}"}},
    }
    doc.update(overrides)
    return sign_envelope(doc, party.key)


def envelope_entry(
    party: Party, n: int, *, kind: str = "envelope.out", outcome: str = "sent", **fields: Any
) -> Entry:
    env = envelope(party, n)
    values: dict[str, Any] = {
        "message_id": env["originator"]["submission_id"],
        "system": "case-desk",
        "envelope_id": env["id"],
        "type": env["type"],
        "provider": party.party,
        "recipient": env["recipient"],
        "signature": env["signature"]["value"],
        "dedup_key": f"case-desk/{env['originator']['submission_id']}",
    }
    values.update(fields)
    return Entry(
        kind=kind,
        outcome=outcome,
        occurred_at=T0,
        payload=json.dumps(env, ensure_ascii=False).encode("utf-8"),
        **values,
    )


def plain_entry(n: int, **fields: Any) -> Entry:
    values: dict[str, Any] = {
        "kind": "submission",
        "outcome": "sent",
        "occurred_at": T0,
        "payload": json.dumps({"n": n}).encode(),
        "message_id": f"m-{n}",
    }
    values.update(fields)
    return Entry(**values)


async def sql(store: ArchiveStore, statement: str, **params: Any) -> None:
    """Change the archive behind the store's back, as an intruder with database access would."""
    async with store.engine.begin() as conn:
        await conn.execute(text(statement), params)
