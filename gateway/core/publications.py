"""Messages the gateway publishes, as plain data: status events, deliveries, frames, and the
copies it leaves in gw.rejected and gw.quarantine. The AMQP shell turns them into frames."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from contracts import MAX_FRAME_ENVELOPES, amqp, encode_frame
from contracts.frame import encode_envelope, frame_of
from gateway.core.stamping import rfc3339


@dataclass(frozen=True)
class Outgoing:
    exchange: str
    routing_key: str
    body: bytes
    message_id: str | None = None
    content_type: str = amqp.CONTENT_TYPE
    headers: Mapping[str, Any] = field(default_factory=dict)
    correlation_id: str | None = None
    timestamp: datetime | None = None


def status(
    status: str,
    *,
    system: str | None,
    at: datetime,
    submission_id: str | None,
    envelope_id: str | None,
    type: str | None,
    reason: str | None = None,
    detail: str | None = None,
    results: Sequence[Mapping[str, Any]] | None = None,
) -> Outgoing:
    """A status event on gw.status, routing key ``<system>.<status>.<type>``; ``system`` is
    the submitting back-office system (the AMQP user_id), the only one allowed to read it.
    ``results``: each record's, in the answer to an operator request naming many records."""
    event: dict[str, Any] = {
        "submission_id": submission_id,
        "envelope_id": envelope_id,
        "type": type,
        "status": status,
        "reason": reason,
        "detail": detail,
        "at": rfc3339(at),
    }
    if results is not None:
        event["results"] = list(results)
    return Outgoing(
        exchange=amqp.STATUS_EXCHANGE,
        routing_key=amqp.status_routing_key(system, status, type),
        body=status_json(event),
        correlation_id=submission_id,
    )


def status_json(event: Mapping[str, Any]) -> bytes:
    """A status event as the standard library writes it (compact, non-ASCII escaped).

    orjson when every key and value is null or a string of printable ASCII, where the two
    write the same bytes: orjson leaves other characters unescaped, and json escapes DEL. The
    standard library's encoder was 2 % of a sending gateway's CPU, one event per submission.
    """
    for key, value in event.items():
        if not (_printable(key) and (value is None or _printable(value))):
            return json.dumps(event, separators=(",", ":")).encode()
    return orjson.dumps(event)


def _printable(value: object) -> bool:
    return type(value) is str and value.isascii() and value.isprintable()


def held_copy(
    exchange: str,
    body: bytes,
    *,
    reason: str,
    detail: str,
    message_id: str | None,
    content_type: str | None,
    extra: Mapping[str, str] | None = None,
) -> Outgoing:
    """A copy of a message for gw.rejected or gw.quarantine, with the machine-readable reason."""
    headers: dict[str, Any] = {
        amqp.REASON_HEADER: reason,
        amqp.DETAIL_HEADER: detail[:1000],
    }
    headers.update(extra or {})
    return Outgoing(
        exchange=exchange,
        routing_key=reason,
        body=body,
        message_id=message_id,
        content_type=content_type or "application/octet-stream",
        headers=headers,
    )


def delivery(envelope_bytes: bytes, *, envelope_id: str, provider: str, type: str) -> Outgoing:
    """An accepted envelope for the local back-office, routing key ``<provider>.<type>``."""
    return Outgoing(
        exchange=amqp.DELIVER_EXCHANGE,
        routing_key=amqp.deliver_routing_key(provider, type),
        body=envelope_bytes,
        message_id=envelope_id,
        headers={amqp.PROVIDER_HEADER: provider, amqp.TYPE_HEADER: type},
    )


def frame(envelopes: Sequence[Mapping[str, Any]], *, frame_id: str, exchange: str) -> Outgoing:
    """Small envelopes (receipts, single replays) in one AMQP message to a counterparty."""
    return Outgoing(
        exchange=exchange,
        routing_key="",
        body=encode_frame(envelopes),
        message_id=frame_id,
        content_type=amqp.FRAME_CONTENT_TYPE,
    )


# An envelope is its submission plus a few hundred bytes of originator, handling and
# signature; frames may exceed the submission limit by this much, so that the largest
# acceptable submission still fits in a frame of its own.
FRAME_SLACK_BYTES = 64 * 1024


def max_frame_bytes(max_message_bytes: int) -> int:
    return max_message_bytes + FRAME_SLACK_BYTES


def frames(
    envelopes: Sequence[Mapping[str, Any]],
    *,
    max_bytes: int,
    exchange: str,
    new_id: Callable[[], str],
) -> list[Outgoing]:
    """Signed envelopes packed into as few AMQP messages as fit under ``max_bytes`` and
    MAX_FRAME_ENVELOPES each.

    One frame is one publish and one confirm for many envelopes; each envelope keeps its own
    signature and is accepted or refused on its own by the receiver.
    """
    groups: list[list[bytes]] = []
    size = max_bytes
    for envelope in envelopes:
        # Encoded once: its length sizes the frame and its bytes go in it.
        encoded = encode_envelope(envelope)
        length = len(encoded)
        full = bool(groups) and len(groups[-1]) >= MAX_FRAME_ENVELOPES
        if full or size + length + 1 > max_bytes - FRAME_SLACK_BYTES // 2:
            groups.append([])
            size = 0
        groups[-1].append(encoded)
        size += length + 1
    return [
        Outgoing(
            exchange=exchange,
            routing_key="",
            body=frame_of(group),
            message_id=new_id(),
            content_type=amqp.FRAME_CONTENT_TYPE,
        )
        for group in groups
    ]
