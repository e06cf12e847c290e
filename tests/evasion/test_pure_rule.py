"""The proof, on the pure rule: no transformed copy of CICA's information passes unreviewed.

CICA provided paragraphs (English and Russian), short subjects and two files to SCO-RATS. An
insider at SCO-RATS sends UNOCT copies made by composing the transforms of
``tests.evasion.transforms``. Each message goes through the same extraction and rule as a real
submission (``known_from_envelope`` then ``decide_route``); a message the rule lets through is
recorded as sent, so the next piece of a spread copy is compared with it. Every copy must be
*blocked* (``consent.undeclared_derivation``, naming CICA's envelope) or, at the least, carry a
review-level resemblance to it that no consent covers (a release review holds it).
"""

from __future__ import annotations

import itertools
import random
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.core.consent import UNDECLARED_DERIVATION, decide_route
from gateway.core.consent_registry import ConsentRegistry
from gateway.core.provenance import ProvenanceIndex, known_from_envelope
from tests.evasion import transforms as tf
from tests.gateway.fresh_text import ENGLISH, RUSSIAN

A, B, C = "CICA", "SCO-RATS", "UNOCT"
AT = datetime(2026, 6, 1, tzinfo=UTC)
PARAGRAPHS = ENGLISH[:8] + RUSSIAN[:8]
SUBJECTS = [
    "Courier routes observed this spring in the border regions",
    "Safe houses along the northern route",
    "Маршруты курьеров на северном направлении весной",
]
TABLE = "\n".join(
    f"{n};courier-{n};route {chr(65 + n % 26)}{n * 7 % 90};safe house {n * 13 % 97};observed"
    for n in range(120)
).encode()
BINARY = random.Random(7).randbytes(6000)
FILES = [TABLE, BINARY]
SETTINGS = settings(
    max_examples=120,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def provided_id(n: int) -> str:
    return f"cica-{n}"


def _provided_envelopes() -> list[dict[str, Any]]:
    bodies: list[dict[str, Any]] = [
        {"subject": {"en": "Information"}, "text": {"en": text}} for text in PARAGRAPHS
    ]
    bodies += [{"subject": {"en": subject}, "text": {"en": "See annex."}} for subject in SUBJECTS]
    bodies += [
        {
            "subject": {"en": "Annex"},
            "text": {"en": "Attached."},
            "attachments": [tf.attachment("annex.bin", data)],
        }
        for data in FILES
    ]
    return [
        envelope(A, B, "information.share", body, provided_id(n)) for n, body in enumerate(bodies)
    ]


def envelope(
    sender: str,
    recipient: str,
    type_: str,
    body: dict[str, Any],
    envelope_id: str,
    message_id: str = "m",
) -> dict[str, Any]:
    return {
        "id": envelope_id,
        "type": type_,
        "originator": {
            "party": sender,
            "system": "desk",
            "officer": "lo-b",
            "submission_id": message_id,
        },
        "recipient": recipient,
        "correlation_id": None,
        "in_reply_to": None,
        "derived_from": [],
        "handling": {"onward": "consent-required", "pre_approved": []},
        "body": body,
    }


PROVIDED = _provided_envelopes()


@dataclass(frozen=True)
class Outcome:
    level: str  # "block", "review" or "passed"
    reason: str | None
    matched: frozenset[str]
    detail: str


def send(leak: tf.Leak) -> Outcome:
    """Run every submission of ``leak`` through the rule, as SCO-RATS's gateway would with
    review off: a message with only a review-level resemblance is sent (and remembered), so a
    copy spread over messages must still be blocked by the time its last piece goes."""
    index = ProvenanceIndex()
    for provided in PROVIDED:
        index.add(known_from_envelope(provided, received=True))
    registry = ConsentRegistry()
    reviewed: list[Outcome] = []
    for n, message in enumerate(leak.messages):
        for m, (type_, body, message_id) in enumerate(tf.submissions(message)):
            sent = envelope(B, C, type_, body, f"b-{n}-{m}", message_id or f"msg-{n}-{m}")
            known = known_from_envelope(sent, received=False)
            content = known.readable()
            assert content.refusal is None
            decision = decide_route(
                this_party=B,
                recipient=C,
                derived_from=(),
                attachment_sha256=known.attachment_sha256,
                texts=known.texts,
                content=content,
                index=index,
                registry=registry,
                at=AT,
            )
            if not decision.allowed:
                return Outcome(
                    "block", decision.reason, frozenset(decision.matched), decision.detail
                )
            if decision.unconsented:
                matched = frozenset(r.matched_envelope_id for r in decision.unconsented)
                detail = "; ".join(r.describe() for r in decision.unconsented)
                reviewed.append(Outcome("review", None, matched, detail))
            index.add(known)
    return reviewed[0] if reviewed else Outcome("passed", None, frozenset(), "")


def assert_caught(leak: tf.Leak, source: str) -> Outcome:
    outcome = send(leak)
    assert outcome.level != "passed", leak.how
    assert source in outcome.matched, (leak.how, outcome)
    if outcome.level == "block":
        assert outcome.reason == UNDECLARED_DERIVATION
        assert f"reproduces received envelope {source} of {A}" in outcome.detail
    return outcome


@SETTINGS
@given(st.data())
def test_transformed_paragraphs_never_pass(data: st.DataObject) -> None:
    n = data.draw(st.integers(0, len(PARAGRAPHS) - 1))
    leak = data.draw(tf.text_leaks([PARAGRAPHS[n]]))
    assert_caught(leak, provided_id(n))


@SETTINGS
@given(st.data())
def test_transformed_short_subjects_never_pass(data: st.DataObject) -> None:
    n = data.draw(st.integers(0, len(SUBJECTS) - 1))
    leak = data.draw(tf.text_leaks([SUBJECTS[n]], lossy=False))
    assert_caught(leak, provided_id(len(PARAGRAPHS) + n))


@SETTINGS
@given(st.data())
def test_transformed_files_never_pass(data: st.DataObject) -> None:
    n = data.draw(st.integers(0, len(FILES) - 1))
    leak = data.draw(tf.file_leaks([FILES[n]]))
    assert_caught(leak, provided_id(len(PARAGRAPHS) + len(SUBJECTS) + n))


def _census() -> list[tuple[str, tf.Leak, str]]:
    """Every single transform in every placement, for two English and two Russian paragraphs."""
    chosen = [0, 3, 8, 11]
    leaks = []
    for n, name, where in itertools.product(chosen, sorted(tf.TEXT_TRANSFORMS), tf.PLACEMENTS):
        text = tf.TEXT_TRANSFORMS[name](PARAGRAPHS[n])
        leaks.append((f"{name}/{where}", tf.Leak((tf.place(text, where),)), provided_id(n)))
    for n, count in itertools.product(chosen, (2, 3, 4)):
        leaks.append((f"spread:{count}", tf.Leak(tf.spread(PARAGRAPHS[n], count)), provided_id(n)))
        split = tf.split_fields(PARAGRAPHS[n], tf.PLACEMENTS[:count])
        leaks.append((f"split:{count}", tf.Leak((split,)), provided_id(n)))
    return leaks


def test_census_of_single_transforms(capsys: pytest.CaptureFixture[str]) -> None:
    """Every class blocked outright, not merely held for review; the figures are printed."""
    levels: Counter[str] = Counter()
    reviewed = []
    for label, leak, source in _census():
        outcome = assert_caught(leak, source)
        levels[outcome.level] += 1
        if outcome.level == "review":
            reviewed.append(label)
    with capsys.disabled():
        print(f"\nevasion census: {dict(levels)} reviewed={sorted(set(reviewed))}")
    assert levels["passed"] == 0
    assert reviewed == []
