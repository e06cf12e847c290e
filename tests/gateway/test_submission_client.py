"""The back-office client's pure parts: building, the AMQP message, the status inbox.

Publishing and consuming against a real broker is covered by the integration tests.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import aio_pika
import pytest

from contracts import (
    BilingualText,
    ContractError,
    InformationShareV1,
    StatusEvent,
    Submission,
    parse_submission,
)
from gateway.submission_client import (
    FINAL_STATUSES,
    StatusInbox,
    SubmissionClient,
    status_queue_name,
    submission_message,
    user_from_url,
)

BODY = {"subject": {"en": "Subject"}, "text": {"en": "Text"}}
AUTHORIZATION = {"reference": "MS-CONSENT/2026/04"}


def event(submission_id: str | None, status: str) -> StatusEvent:
    return StatusEvent.model_validate(
        {
            "submission_id": submission_id,
            "envelope_id": None,
            "type": "information.share",
            "status": status,
            "reason": None,
            "detail": None,
            "at": datetime(2026, 3, 1, tzinfo=UTC),
        }
    )


@dataclass
class RecordingExchange:
    published: list[tuple[aio_pika.Message, str]] = field(default_factory=list)
    fail_with: BaseException | None = None

    async def publish(self, message: aio_pika.Message, routing_key: str) -> None:
        if self.fail_with is not None:
            raise self.fail_with
        self.published.append((message, routing_key))


@dataclass
class IncomingMessage:
    body: bytes


@pytest.mark.parametrize(
    ("url", "user"),
    [
        ("amqp://case-desk:secret@127.0.0.1:5672/party-a", "case-desk"),
        ("amqp://desk%40cica:secret@broker/party-a", "desk@cica"),
        ("amqp://127.0.0.1/", "guest"),
    ],
)
def test_user_comes_from_the_url(url: str, user: str) -> None:
    assert user_from_url(url) == user


def test_status_queues_are_fresh_and_under_the_users_prefix() -> None:
    first, second = status_queue_name("case-desk"), status_queue_name("case-desk")
    assert first != second
    assert first.startswith("bo.case-desk.status.")


def test_build_validates_and_fills_the_envelope_fields() -> None:
    submission = SubmissionClient.build(
        "information.share",
        "SCO-RATS",
        BODY,
        officer="lo-0042",
        derived_from=["01960f7e-8a5c-7b3e-9c1d-2f4a6b8c0d1e"],
        correlation_id="case-1",
        pre_approved=["UNOCT"],
    )
    assert submission.version == 1
    assert submission.handling.pre_approved == ("UNOCT",)
    assert submission.derived_from == ("01960f7e-8a5c-7b3e-9c1d-2f4a6b8c0d1e",)
    assert submission.body == BODY


def test_build_accepts_a_body_model_and_python_dates() -> None:
    typed = InformationShareV1(subject=BilingualText(en="S"), text=BilingualText(ru="Текст"))
    submission = SubmissionClient.build("information.share", "SCO-RATS", typed, officer="lo-1")
    assert submission.typed_body() == typed
    assignment = SubmissionClient.build(
        "liaison.assignment",
        "SCO-RATS",
        {
            "action": "assign",
            "officer": {"id": "lo-1", "name": "N", "role": "R", "contact": "c"},
            "valid_from": date(2026, 3, 1),
            "authorization": AUTHORIZATION,
        },
    )
    assert assignment.body["valid_from"] == "2026-03-01"


@pytest.mark.parametrize(
    ("arguments", "code"),
    [
        ({"type": "information.gossip"}, "schema.unknown_type"),
        ({"officer": None}, "schema.missing_field"),
        ({"body": {"subject": {"en": " "}, "text": {"en": "T"}}}, "text.empty"),
        ({"recipient": "sco-rats"}, "schema.invalid_value"),
        ({"version": 3}, "schema.unknown_version"),
    ],
)
def test_build_raises_contract_errors(arguments: dict[str, Any], code: str) -> None:
    call: dict[str, Any] = {
        "type": "information.share",
        "recipient": "SCO-RATS",
        "body": BODY,
        "officer": "lo-1",
    }
    call.update(arguments)
    with pytest.raises(ContractError) as caught:
        SubmissionClient.build(**call)
    assert caught.value.code == code


def test_submission_message_carries_the_contract_properties() -> None:
    submission = SubmissionClient.build("information.share", "SCO-RATS", BODY, officer="lo-1")
    message = submission_message(submission, "abc123", "case-desk")
    assert message.message_id == "abc123"
    assert message.user_id == "case-desk"
    assert message.content_type == "application/json"
    assert message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
    assert parse_submission(message.body) == submission


async def test_submit_publishes_to_the_type_and_tracks_the_id() -> None:
    client = SubmissionClient()
    exchange = RecordingExchange()
    client._exchange = exchange  # type: ignore[assignment]
    submission = SubmissionClient.build("information.share", "SCO-RATS", BODY, officer="lo-1")
    first = await client.submit(submission)
    second = await client.submit(submission)
    assert first != second
    assert len(first) == 32
    assert [(m.message_id, key) for m, key in exchange.published] == [
        (first, "information.share"),
        (second, "information.share"),
    ]
    await client._on_status(IncomingMessage(event(first, "delivered").model_dump_json().encode()))  # type: ignore[arg-type]
    assert (await client.wait_status(first, timeout=1)).status == "delivered"


async def test_submit_needs_a_connection_and_forgets_failed_publishes() -> None:
    client = SubmissionClient()
    submission: Submission = SubmissionClient.build(
        "information.share", "SCO-RATS", BODY, officer="lo-1"
    )
    with pytest.raises(RuntimeError, match="not connected"):
        await client.submit(submission)
    client._exchange = RecordingExchange(fail_with=ConnectionError("gone"))  # type: ignore[assignment]
    with pytest.raises(ConnectionError):
        await client.submit(submission)
    assert client._inbox._events == {}


async def test_bad_status_messages_are_ignored() -> None:
    client = SubmissionClient()
    client._inbox.track("abc")
    await client._on_status(IncomingMessage(b"not json"))  # type: ignore[arg-type]
    assert client._inbox.find("abc", FINAL_STATUSES) is None


async def test_context_manager_needs_a_url() -> None:
    with pytest.raises(ValueError, match="url"):
        async with SubmissionClient():
            pass


async def test_inbox_keeps_events_that_arrive_before_the_wait() -> None:
    inbox = StatusInbox()
    inbox.track("abc")
    assert inbox.offer(event("abc", "sent"))
    assert inbox.offer(event("abc", "delivered"))
    found = await inbox.wait("abc", FINAL_STATUSES)
    assert found.status == "delivered"


async def test_inbox_wakes_a_waiter_on_a_matching_event_only() -> None:
    inbox = StatusInbox()
    waiting = asyncio.create_task(inbox.wait("abc", {"rejected"}))
    await asyncio.sleep(0)
    assert inbox._waiters
    assert not inbox.offer(event("other", "rejected"))
    assert inbox.offer(event("abc", "sent"))
    await asyncio.sleep(0)
    assert not waiting.done()
    assert inbox.offer(event("abc", "rejected"))
    assert (await waiting).status == "rejected"


async def test_wait_status_times_out_and_leaves_no_waiter() -> None:
    client = SubmissionClient()
    with pytest.raises(TimeoutError):
        await client.wait_status("abc", timeout=0.01)
    assert client._inbox._waiters == set()


def test_inbox_ignores_untracked_events_and_forgets_the_oldest() -> None:
    inbox = StatusInbox(max_tracked=2)
    assert not inbox.offer(event(None, "delivered"))
    assert not inbox.offer(event("x", "delivered"))
    for submission_id in ("a", "b", "c"):
        inbox.track(submission_id)
    assert not inbox.offer(event("a", "delivered"))
    assert inbox.offer(event("c", "delivered"))
    assert inbox.find("c", {"delivered"}) is not None
