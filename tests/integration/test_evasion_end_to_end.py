"""The proof, end to end across three vhosts: one sample of every evasion class.

CICA (party-a) gives SCO-RATS (party-b) a paragraph, a subject line and a file. SCO-RATS's
insider then sends UNOCT (party-c) copies disguised as the evasion classes of issue 16, each
built with ``tests.evasion.transforms``. Every one must end ``blocked`` with reason
``consent.undeclared_derivation`` naming CICA's envelope, land in SCO-RATS's ``gw.quarantine``,
and never reach UNOCT: a legitimate message sent last must arrive there, and be all that did.
"""

from __future__ import annotations

import json
import random
import re
from typing import Any

import pytest

from tests.evasion import transforms as tf
from tests.integration import test_third_party_rule as third_party
from tests.integration.conftest import Network
from tests.integration.test_third_party_rule import Scene
from tests.support.broker import Vhost
from tests.support.parties import submission
from tests.support.waiting import wait_until

pytestmark = pytest.mark.broker

PARAGRAPH = (
    "Our liaison office observed three couriers crossing the northern border at Kordai every "
    "second Tuesday since March. They carry cash for two charities in Bishkek and stay at a safe "
    "house near the old bus station. The couriers change vehicles at the customs post and use "
    "phones registered to a transport company."
)
SUBJECT = "Couriers crossing the northern border at Kordai"
FILE = random.Random(16).randbytes(6000)
CONSENT_REASON = "consent.undeclared_derivation"
# CICA and SCO-RATS running, officers accredited, UNOCT's inbound queue watched.
scene = third_party.scene


def evasions() -> dict[str, list[tf.Message]]:
    """One sample per evasion class of the issue: (class, messages SCO-RATS sends)."""
    one = tf.Message
    first, second = tf.halves(FILE)
    return {
        "topics": [tf.place(PARAGRAPH, tf.TOPICS)],
        "meeting_names": [tf.place(PARAGRAPH, tf.PARTICIPANT)],
        "meeting_place": [tf.place(SUBJECT, tf.PLACE)],
        "text_attachment": [tf.place(PARAGRAPH, tf.ATTACHMENT_TEXT)],
        "split_fields": [tf.split_fields(PARAGRAPH, [tf.SUBJECT, tf.TOPICS, tf.ATTACHMENT_NAME])],
        "short_verbatim": [tf.place(SUBJECT, tf.TEXT)],
        "invisible": [tf.place(tf.invisible(PARAGRAPH, 1), tf.TEXT)],
        "lookalikes": [tf.place(tf.lookalikes(PARAGRAPH), tf.TEXT)],
        "fillers": [tf.place(tf.insert_fillers(PARAGRAPH), tf.TEXT)],
        "drop_every_third": [tf.place(tf.drop_words(PARAGRAPH), tf.TEXT)],
        "file_byte_changed": [one(files=(("a.bin", tf.change_byte(FILE)),))],
        "file_appended": [one(files=(("a.bin", tf.append_tail(FILE)),))],
        "file_zip": [one(files=(("a.zip", tf.zipped(FILE)),))],
        "file_gzip": [one(files=(("a.gz", tf.gzipped(FILE)),))],
        "file_base64": [one(files=(("a.txt", tf.base64_wrapped(FILE)),))],
        "file_split": [one(files=(("a.1", first), ("a.2", second)))],
    }


async def cica_provides(scene: Scene) -> str:
    body = {
        "subject": {"en": SUBJECT},
        "text": {"en": PARAGRAPH},
        "topics": ["couriers"],
        "attachments": [tf.attachment("routes.bin", FILE)],
    }
    await scene.a.submit(submission("information.share", "SCO-RATS", body, officer="lo-a"))
    return str((await scene.arrival_at_b("information.share"))["id"])


async def outcome(scene: Scene, message_id: str) -> dict[str, Any]:
    """The status that ends a submission's way through SCO-RATS's gateway (held included)."""
    final = {"sent", "blocked", "rejected", "held"}

    def found() -> list[dict[str, Any]]:
        return [
            s
            for s in scene.status_b.bodies()
            if s["submission_id"] == message_id and s["status"] in final
        ]

    await wait_until(lambda: bool(found()), message=f"status of {message_id}")
    return found()[0]


async def b_sends(scene: Scene, message: tf.Message, label: str) -> list[dict[str, Any]]:
    """Submit every submission carrying ``message``; their final statuses."""
    statuses = []
    for n, (type_, body, message_id) in enumerate(tf.submissions(message)):
        sent = await scene.b.submit(
            submission(type_, "UNOCT", body, officer="lo-b"), message_id or f"{label}-{n}"
        )
        statuses.append(await outcome(scene, sent))
    return statuses


async def test_every_evasion_class_is_quarantined_and_never_reaches_unoct(scene: Scene) -> None:
    original = await cica_provides(scene)
    blocked = 0
    for label, messages in evasions().items():
        statuses = [s for message in messages for s in await b_sends(scene, message, label)]
        assert any(s["status"] == "blocked" for s in statuses), (label, statuses)
        for status in statuses:
            assert status["status"] == "blocked", (label, json.dumps(status))
            assert status["reason"] == CONSENT_REASON, (label, status)
            assert f"reproduces received envelope {original} of CICA" in status["detail"], label
        blocked += len(statuses)

    await wait_until(lambda: len(scene.quarantine_b.messages) == blocked, message="quarantined")
    assert {(m.headers or {}).get("x-gw-reason") for m in scene.quarantine_b.messages} == {
        CONSENT_REASON
    }
    # The AMQP message_id never reaches a third party: the envelope carries a gateway-made one.
    (carrier,) = await b_sends(scene, tf.place(SUBJECT, tf.MESSAGE_ID), "message-id")
    assert carrier["status"] == "sent", json.dumps(carrier)
    # The sentinel: SCO-RATS's own fresh text goes through; with the message_id carrier it is
    # all UNOCT ever received.
    sentinel = tf.Message(((tf.TEXT, "Our own assessment: no new travel routes this month."),))
    (status,) = await b_sends(scene, sentinel, "sentinel")
    assert status["status"] == "sent", json.dumps(status)
    await wait_until(
        lambda: any(e["id"] == status["envelope_id"] for e in scene.envelopes_at_unoct()),
        message="sentinel at UNOCT",
    )
    arrived = {e["id"]: e for e in scene.envelopes_at_unoct()}
    assert set(arrived) == {carrier["envelope_id"], status["envelope_id"]}
    assert SUBJECT not in json.dumps(arrived[carrier["envelope_id"]])


def sentences() -> list[str]:
    """The paragraph's sentences, the one with CICA's subject line last."""
    first, *others = re.split(r"(?<=[.])\s+", PARAGRAPH)
    return [*others, first]


async def test_a_piece_of_a_spread_text_is_held_for_review(scene: Scene) -> None:
    """With the third party's default review (on_match), the first sentence already waits."""
    original = await cica_provides(scene)
    (status,) = await b_sends(scene, tf.Message(((tf.TEXT, sentences()[0]),)), "piece")
    assert status["status"] == "held", json.dumps(status)
    assert original in status["detail"]


async def test_a_text_spread_over_messages_is_stopped_once_most_of_it_went(
    network: Network, vhosts: dict[str, Vhost]
) -> None:
    """With review off, one sentence per message: pieces below the blocking threshold go, and
    the piece that brings what went to UNOCT over ``ACCUMULATED_BLOCK`` of it is blocked."""
    network.configure("SCO-RATS", review={"UNOCT": "off"})
    scene = Scene(network, vhosts)
    await scene.set_up()
    original = await cica_provides(scene)
    went: list[str] = []
    for n, sentence in enumerate(sentences()):
        (status,) = await b_sends(scene, tf.Message(((tf.TEXT, sentence),)), f"piece-{n}")
        if status["status"] != "sent":
            break
        went.append(status["envelope_id"])
    assert len(went) >= 2, went
    assert status["status"] == "blocked", json.dumps(status)
    assert status["reason"] == CONSENT_REASON
    assert original in status["detail"]
    assert "with earlier messages" in status["detail"]
    # The sentinel: a fresh message after the blocked piece arrives; before it, only the pieces.
    sentinel = tf.Message(((tf.TEXT, "Our own assessment: no new travel routes this month."),))
    (last,) = await b_sends(scene, sentinel, "sentinel")
    await wait_until(
        lambda: any(e["id"] == last["envelope_id"] for e in scene.envelopes_at_unoct()),
        message="sentinel at UNOCT",
    )
    assert sorted(e["id"] for e in scene.envelopes_at_unoct()) == sorted(
        [*went, last["envelope_id"]]
    )
