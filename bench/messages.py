"""The one message shape every scenario moves: a realistic ``information.share`` submission.

A liaison officer's report is a subject line and a paragraph or two of prose, about 1 KB of
JSON in all. Each message draws its sentences in a different order and carries its sequence
number, so no two texts are identical (the gateway indexes received texts for near-duplicates,
and identical texts would make that index unrealistically cheap or expensive).
"""

from __future__ import annotations

import json
from typing import Any, Final

SENT_AT_HEADER: Final = "x-bench-sent-at-ns"
"""Nanoseconds since the epoch at the moment of publishing, an integer.

AMQP's ``timestamp`` property has whole seconds, and a float header does not help: pamqp encodes
Python floats in tables as 32-bit ``f``, which at today's epoch resolves only 128 seconds.
"""

SENDER: Final = "CICA"
RECIPIENT: Final = "SCO-RATS"
OFFICER: Final = "lo-bench-1"

_SENTENCES: Final = (
    "Field reporting indicates that a listed group has shifted its courier routes towards the "
    "southern border crossings over the past six weeks.",
    "Two financial intermediaries previously linked to the network resumed transfers through "
    "small money service businesses in the capital.",
    "Online recruitment material attributed to the group reappeared on three messaging channels "
    "after the platform takedowns of last month.",
    "The travel pattern of the individuals named in our earlier note is consistent with "
    "preparation for a meeting rather than with an operation.",
    "Our analysts assess with moderate confidence that the logistics cell relies on a single "
    "procurement contact for communications equipment.",
    "Border services recorded four entries under documents that were reported lost in the "
    "neighbouring region during the spring.",
    "No indication has been found so far of contact between the cell and the criminal networks "
    "operating in the port area.",
    "We would welcome any information your service holds on the vehicles registered to the "
    "companies listed in the attachment of our previous message.",
)


def share(seq: int) -> dict[str, Any]:
    """Submission number ``seq``: about 1 KB once encoded."""
    start = seq % len(_SENTENCES)
    order = _SENTENCES[start:] + _SENTENCES[:start]
    text = " ".join(order[:5]) + f" Reference number {seq}."
    return {
        "type": "information.share",
        "recipient": RECIPIENT,
        "officer": OFFICER,
        "correlation_id": f"bench-case-{seq % 97}",
        "in_reply_to": None,
        "derived_from": [],
        "handling": {"onward": "consent-required", "pre_approved": []},
        "body": {
            "subject": {"en": f"Situation report {seq}: movements of a listed group"},
            "text": {"en": text},
            "topics": ["counter-terrorism", "travel", "financing"],
            "attachments": [],
        },
    }


def share_bytes(seq: int) -> bytes:
    return json.dumps(share(seq)).encode()


def small_share_bytes(seq: int) -> bytes:
    """A minimal valid submission (about 200 bytes), for the million-message backlog."""
    submission: dict[str, Any] = {
        "type": "information.share",
        "recipient": RECIPIENT,
        "officer": OFFICER,
        "body": {
            "subject": {"en": f"Note {seq}"},
            "text": {"en": f"Short note number {seq} for the liaison desk."},
        },
    }
    return json.dumps(submission).encode()


ASSIGNMENT = "liaison.assignment"


def assignment_bytes() -> bytes:
    """Accredits :data:`OFFICER`: ``information.share`` needs an officer on the roster."""
    submission: dict[str, Any] = {
        "type": ASSIGNMENT,
        "recipient": RECIPIENT,
        "officer": None,
        "correlation_id": None,
        "in_reply_to": None,
        "derived_from": [],
        "handling": {"onward": "consent-required", "pre_approved": []},
        "body": {
            "action": "assign",
            "officer": {
                "id": OFFICER,
                "name": "Benchmark Officer",
                "role": "liaison officer",
                "contact": "lo-bench-1@example.org",
            },
            "valid_from": "2020-01-01",
            "valid_to": None,
            "authorization": {"reference": "MS-CONSENT-2017-09"},
        },
    }
    return json.dumps(submission).encode()
