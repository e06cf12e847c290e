"""AMQP names of wire contract v1: exchanges, queues, routing keys, headers, content types.

They are part of the contract (design section 3): change them only with a new contract
version. Each Party has all of them on its own broker (its own vhost); every exchange is
durable and every queue is durable and bound to the exchange of the same name with ``#``.
Names with ``{party}`` exist once per counterparty, with the counterparty's Party id.
"""

from __future__ import annotations

from typing import Final

INBOUND_PREFIX: Final = "gw.inbound"
"""What every inbound exchange and queue name starts with; ``inbound_name`` adds the Party."""
SUBMIT_EXCHANGE: Final = "gw.submit"
"""Topic exchange; back-office systems publish submissions with routing key = message type."""
SUBMIT_QUEUE: Final = "gw.submit"
"""The gateway's outbound worker consumes it."""
INBOUND_EXCHANGE: Final = INBOUND_PREFIX + ".{party}"
"""Fanout exchange, one per counterparty, named after the sending Party (e.g. gw.inbound.CICA);
only that Party's gateway publishes to it, frames of signed envelopes."""
INBOUND_QUEUE: Final = INBOUND_EXCHANGE
"""The gateway's inbound worker consumes it, taking batches from each sender's queue in turn."""
DELIVER_EXCHANGE: Final = "gw.deliver"
"""Topic exchange; the gateway delivers accepted envelopes with key <provider>.<type>."""
STATUS_EXCHANGE: Final = "gw.status"
"""Topic exchange; the gateway publishes status events with key <system>.<status>.<type>."""
REJECTED_EXCHANGE: Final = "gw.rejected"
"""Fanout exchange in front of the queue gw.rejected; routing key = the reason code."""
REJECTED_QUEUE: Final = "gw.rejected"
"""Invalid, unverifiable or undeliverable messages, with the reason."""
QUARANTINE_EXCHANGE: Final = "gw.quarantine"
"""Fanout exchange in front of the queue gw.quarantine; routing key = the reason code."""
QUARANTINE_QUEUE: Final = "gw.quarantine"
"""Messages the third-party rule stopped, with the reason."""

EXCHANGE_TYPES: Final[dict[str, str]] = {
    SUBMIT_EXCHANGE: "topic",
    INBOUND_EXCHANGE: "fanout",
    DELIVER_EXCHANGE: "topic",
    STATUS_EXCHANGE: "topic",
    REJECTED_EXCHANGE: "fanout",
    QUARANTINE_EXCHANGE: "fanout",
}
QUEUES: Final = (SUBMIT_QUEUE, INBOUND_QUEUE, REJECTED_QUEUE, QUARANTINE_QUEUE)

CONTROL_EXCHANGE: Final = "gw.control"
"""Not part of the wire contract: operator requests (replay, release, operator submissions) to
the running gateway, on its own broker only. Only the gateway's own broker user may write gw.*;
back-office users may write gw.submit alone (deploy/rabbitmq/definitions.json)."""
CONTROL_QUEUE: Final = CONTROL_EXCHANGE
"""The gateway's control worker consumes it."""

REASON_HEADER: Final = "x-gw-reason"
"""On gw.rejected and gw.quarantine: the stable reason code, e.g. schema.missing_field."""
DETAIL_HEADER: Final = "x-gw-detail"
"""On gw.rejected and gw.quarantine: a human explanation naming the field or rule."""
PROVIDER_HEADER: Final = "x-gw-provider"
"""On gw.deliver: the originating Party."""
TYPE_HEADER: Final = "x-gw-type"
"""On gw.deliver: the message type."""
REPLAY_OF_HEADER: Final = "x-gw-replay-of"
"""On gw.deliver, for a replayed envelope: the archive sequence number it was replayed from."""

CONTENT_TYPE: Final = "application/json"
"""content_type of submissions, deliveries and status events."""
FRAME_CONTENT_TYPE: Final = "application/vnd.liaison.frame+json"
"""content_type of frames on gw.inbound.{party}."""

UNKNOWN_TYPE_KEY: Final = "unknown"
"""Routing-key segment used for a message whose type could not be read."""
UNKNOWN_SYSTEM_KEY: Final = "unknown"
"""Routing-key segment used for a submission without a user_id (no system to tell)."""
OPERATOR_SYSTEM: Final = "operator"
"""The system of operator requests and submissions; their status events carry it."""


def inbound_name(party: str) -> str:
    """The inbound exchange (and queue) for frames from ``party``, e.g. ``gw.inbound.CICA``.

    One per counterparty, so that the broker's permissions say who sent a frame, and a flood
    from one counterparty waits in its own queue instead of in front of another's frames.
    """
    return INBOUND_EXCHANGE.format(party=party)


def deliver_routing_key(provider: str, message_type: str) -> str:
    """Routing key on gw.deliver: ``<provider>.<type>``, e.g. ``CICA.information.share``."""
    return f"{provider}.{message_type}"


def status_routing_key(system: str | None, status: str, message_type: str | None) -> str:
    """Routing key on gw.status: ``<system>.<status>.<type>``, e.g.
    ``case-desk.delivered.information.share``. The system comes first so that RabbitMQ topic
    permissions (``^{username}\\.``) let each system bind to its own statuses only."""
    return f"{system or UNKNOWN_SYSTEM_KEY}.{status}.{message_type or UNKNOWN_TYPE_KEY}"
