"""AMQP names of wire contract v1: exchanges, queues, routing keys, headers, properties.

They are part of the contract (design section 3): change them only with a new contract
version. Each Party has all of them on its own broker (its own vhost).
"""

from __future__ import annotations

from typing import Final

SUBMIT_EXCHANGE: Final = "gw.submit"
"""Topic exchange; back-office systems publish submissions with routing key = message type."""
SUBMIT_QUEUE: Final = "gw.submit"
"""Durable queue bound to gw.submit with '#'; the gateway's outbound worker consumes it."""
INBOUND_EXCHANGE: Final = "gw.inbound"
"""Topic exchange; only the peer gateway publishes to it (envelopes or frames)."""
INBOUND_QUEUE: Final = "gw.inbound"
"""Durable queue bound to gw.inbound with '#'; the gateway's inbound worker consumes it."""
DELIVER_EXCHANGE: Final = "gw.deliver"
"""Topic exchange; the gateway delivers accepted envelopes with key <provider>.<type>."""
STATUS_EXCHANGE: Final = "gw.status"
"""Topic exchange; the gateway publishes status events with key <status>.<type>."""
REJECTED_QUEUE: Final = "gw.rejected"
"""Durable queue of invalid, unverifiable or undeliverable messages, with the reason."""
QUARANTINE_QUEUE: Final = "gw.quarantine"
"""Durable queue of messages the third-party rule stopped, with the reason."""

EXCHANGE_TYPE: Final = "topic"
"""Every gw.* exchange is a durable topic exchange."""

REASON_HEADER: Final = "x-gw-reason"
"""On gw.rejected and gw.quarantine: the stable reason code, e.g. schema.missing_field."""
DETAIL_HEADER: Final = "x-gw-detail"
"""On gw.rejected and gw.quarantine: a human explanation naming the field or rule."""

CONTENT_TYPE: Final = "application/json"
"""content_type of every contract message."""

UNKNOWN_TYPE_KEY: Final = "unknown"
"""Routing-key segment used for a message whose type could not be read."""


def deliver_routing_key(provider: str, message_type: str) -> str:
    """Routing key on gw.deliver: ``<provider>.<type>``, e.g. ``CICA.information.share``."""
    return f"{provider}.{message_type}"


def status_routing_key(status: str, message_type: str | None) -> str:
    """Routing key on gw.status: ``<status>.<type>``, e.g. ``delivered.information.share``."""
    return f"{status}.{message_type or UNKNOWN_TYPE_KEY}"
