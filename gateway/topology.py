"""The wire contract's exchanges and queues (design section 3), declared idempotently.

The names are part of contract v1 and live in :mod:`contracts.amqp`; this module declares them.
"""

from __future__ import annotations

import ssl
from collections.abc import Sequence
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel, ExchangeType

from contracts import amqp
from contracts.amqp import inbound_name as inbound_from

# Short names for the shell; the names themselves are defined once, in contracts.amqp.
SUBMIT = amqp.SUBMIT_EXCHANGE
DELIVER = amqp.DELIVER_EXCHANGE
STATUS = amqp.STATUS_EXCHANGE
REJECTED = amqp.REJECTED_EXCHANGE
QUARANTINE = amqp.QUARANTINE_EXCHANGE
CONTROL = amqp.CONTROL_EXCHANGE
REASON_HEADER = amqp.REASON_HEADER
DETAIL_HEADER = amqp.DETAIL_HEADER
REPLAY_OF_HEADER = amqp.REPLAY_OF_HEADER
FRAME_CONTENT_TYPE = amqp.FRAME_CONTENT_TYPE
JSON_CONTENT_TYPE = amqp.CONTENT_TYPE

__all__ = [
    "CONTROL",
    "DELIVER",
    "DETAIL_HEADER",
    "FRAME_CONTENT_TYPE",
    "JSON_CONTENT_TYPE",
    "QUARANTINE",
    "REASON_HEADER",
    "REJECTED",
    "REPLAY_OF_HEADER",
    "STATUS",
    "SUBMIT",
    "declare",
    "declare_internal",
    "holding_queue_arguments",
    "inbound_from",
    "provision",
    "work_queue_arguments",
]

# The broker's own poison-message backstop: a message redelivered this many times (for example
# because it crashes the process every time) is dead-lettered to gw.rejected. The gateway's own
# attempt limit (config limits.max_attempts) is lower and rejects with a reason first.
BROKER_DELIVERY_LIMIT = 20
HOLDING_QUEUE_MAX_LENGTH = 1_000_000


def work_queue_arguments(max_length: int) -> dict[str, Any]:
    """Arguments of gw.submit and the gw.inbound.<party> queues: quorum, bounded, poison
    messages dead-lettered.

    ``reject-publish`` pushes back on publishers (a nack) instead of dropping when full, so a
    full queue never loses a message silently.
    """
    return {
        "x-queue-type": "quorum",
        "x-delivery-limit": BROKER_DELIVERY_LIMIT,
        "x-dead-letter-exchange": REJECTED,
        "x-max-length": max_length,
        "x-overflow": "reject-publish",
    }


def holding_queue_arguments() -> dict[str, Any]:
    return {
        "x-queue-type": "quorum",
        "x-max-length": HOLDING_QUEUE_MAX_LENGTH,
        "x-overflow": "reject-publish",
    }


async def declare(channel: AbstractChannel, submit_max_length: int, senders: Sequence[str]) -> None:
    """Declare every exchange and queue of the wire contract on this Party's vhost, with an
    inbound exchange and queue for each of ``senders`` (its counterparties)."""
    work_args = work_queue_arguments(submit_max_length)
    inbound = [inbound_from(party) for party in senders]
    exchanges = {
        SUBMIT: ExchangeType.TOPIC,
        **dict.fromkeys(inbound, ExchangeType.FANOUT),
        DELIVER: ExchangeType.TOPIC,
        STATUS: ExchangeType.TOPIC,
        REJECTED: ExchangeType.FANOUT,
        QUARANTINE: ExchangeType.FANOUT,
    }
    # Deliveries nobody is bound for are unroutable; the alternate exchange turns them into
    # copies in gw.rejected instead of letting the broker drop them.
    exchange_arguments: dict[str, dict[str, Any]] = {DELIVER: {"alternate-exchange": REJECTED}}
    declared = {
        name: await channel.declare_exchange(
            name, kind, durable=True, arguments=exchange_arguments.get(name)
        )
        for name, kind in exchanges.items()
    }
    queues = {
        SUBMIT: work_args,
        **dict.fromkeys(inbound, work_args),
        REJECTED: holding_queue_arguments(),
        QUARANTINE: holding_queue_arguments(),
    }
    for name, arguments in queues.items():
        queue = await channel.declare_queue(name, durable=True, arguments=arguments)
        await queue.bind(declared[name], routing_key="#")


async def declare_internal(channel: AbstractChannel, max_length: int) -> None:
    """Declare the gateway's internal names (not the contract's): the gw.control queue."""
    exchange = await channel.declare_exchange(CONTROL, ExchangeType.FANOUT, durable=True)
    queue = await channel.declare_queue(
        CONTROL, durable=True, arguments=work_queue_arguments(max_length)
    )
    await queue.bind(exchange, routing_key="#")


async def provision(
    url: str,
    submit_max_length: int,
    senders: Sequence[str],
    ssl_context: ssl.SSLContext | None = None,
) -> None:
    connection = await aio_pika.connect(url, ssl_context=ssl_context)
    async with connection:
        channel = await connection.channel()
        await declare(channel, submit_max_length, senders)
        await declare_internal(channel, submit_max_length)
