"""CPU per envelope of the receiving gateway's decisions, in-process, stage by stage.

``python -m bench.receiving --count 2000`` signs ``count`` envelopes of the benchmark's
message (``bench.messages.share``) as CICA's gateway would, then times on the same input, each
stage in turn over all envelopes (CPU time of this process, best of ``--repeat``): verifying
and parsing them (``decide_envelope``), applying them to a fresh state (``PartyState.received``,
mostly the text index), its text normalisation alone (``normalise.tokens``), the fast path's
acceptance check alone, and signing their receipts. A busy machine disturbs CPU time far less
than wall-clock time, so before/after figures of one lever can be compared back to back.
"""

from __future__ import annotations

import argparse
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bench.messages import OFFICER, RECIPIENT, SENDER, share
from gateway.core.canonical import fast_path_accepts
from gateway.core.envelope_content import content_of
from gateway.core.inbound_decision import InboundContext, Verified, decide_envelope
from gateway.core.keys import Keyring, SigningKey
from gateway.core.normalise import tokens
from gateway.core.signing import sign_envelope
from gateway.core.stamping import new_envelope_id, rfc3339
from gateway.core.state import PartyState
from gateway.workers.arrivals import receipt_envelope


def _envelopes(count: int, key: SigningKey, now: datetime) -> list[dict[str, Any]]:
    envelopes = []
    for seq in range(count):
        submission = share(seq)
        unsigned = {
            "id": new_envelope_id(),
            "type": submission["type"],
            "version": 1,
            "originator": {
                "party": SENDER,
                "system": "bench",
                "officer": OFFICER,
                "submission_id": uuid.uuid4().hex,
            },
            "recipient": RECIPIENT,
            "created_at": rfc3339(now),
            "correlation_id": submission["correlation_id"],
            "in_reply_to": None,
            "derived_from": [],
            "handling": submission["handling"],
            "body": submission["body"],
        }
        envelopes.append(sign_envelope(unsigned, key))
    return envelopes


def _cpu_us(stage: Callable[[], object], items: int, repeat: int) -> float:
    """Best CPU µs per item of ``stage`` over ``repeat`` runs, after one to warm up (the text
    normalisation builds its tables on first use)."""
    stage()
    best = float("inf")
    for _ in range(repeat):
        start = time.process_time()
        stage()
        best = min(best, time.process_time() - start)
    return best / items * 1e6


def _key(party: str, now: datetime) -> SigningKey:
    day = timedelta(days=1)
    return SigningKey(party, f"{party}-bench", now - day, now + day, Ed25519PrivateKey.generate())


def measure(count: int, repeat: int) -> dict[str, float]:
    now = datetime.now(UTC)
    key, receiver = _key(SENDER, now), _key(RECIPIENT, now)
    envelopes = _envelopes(count, key, now)
    ctx = InboundContext(
        RECIPIENT,
        Keyring([key.public()]),
        PartyState(RECIPIENT),
        now,
        timedelta(hours=1),
        timedelta(minutes=2),
    )
    decisions = [decide_envelope(raw, ctx) for raw in envelopes]
    verified = [d for d in decisions if isinstance(d, Verified)]
    assert len(verified) == count, "every benchmark envelope must be accepted"
    texts = [text for raw in envelopes for _, text in content_of(raw, identifiers=False).texts]

    def received() -> None:
        state = PartyState(RECIPIENT)
        for raw in envelopes:
            state.received(raw, now)

    def receipts() -> None:
        for decision in verified:
            sign_envelope(
                receipt_envelope(RECIPIENT, decision.envelope, decision.raw, now), receiver
            )

    stages: dict[str, Callable[[], object]] = {
        "decide_envelope": lambda: [decide_envelope(raw, ctx) for raw in envelopes],
        "PartyState.received": received,
        "normalise.tokens": lambda: [tokens(text) for text in texts],
        "fast_path_accepts": lambda: [fast_path_accepts(raw) for raw in envelopes],
        "receipt signed": receipts,
    }
    return {name: _cpu_us(stage, count, repeat) for name, stage in stages.items()}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    for name, micros in measure(args.count, args.repeat).items():
        print(f"{name:24} {micros:8.1f} µs of CPU per envelope")


if __name__ == "__main__":
    main()
