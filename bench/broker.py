"""The benchmark's own corner of the local RabbitMQ: vhosts, queues and the dynamic shovel.

Everything lives in the vhosts ``<prefix>party-a/b/c`` (default prefix ``bench-``), copies of
the local vhosts with the users and permissions of deploy/rabbitmq/definitions.json, so the
benchmark never touches the vhosts of the tests or of the local set-up.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from dataclasses import dataclass

import aio_pika
import aiormq

from gateway import topology
from gateway.config import LimitsConfig
from tests.support.vhosts import copy_vhosts

HOST = "127.0.0.1:5672"
ADMIN_URL = "amqp://guest:guest@" + HOST + "/{vhost}"
# Every vhost gets an inbound queue per Party (its own one stays empty): simpler than three lists.
PARTIES = ("CICA", "SCO-RATS", "UNOCT")
GATEWAY_QUEUES = (
    topology.SUBMIT,
    *(topology.inbound_from(party) for party in PARTIES),
    topology.REJECTED,
    topology.QUARANTINE,
)


@dataclass(frozen=True)
class Vhosts:
    """The three Parties' vhosts of one benchmark run."""

    prefix: str

    @property
    def a(self) -> str:
        return self.prefix + "party-a"

    @property
    def b(self) -> str:
        return self.prefix + "party-b"

    @property
    def c(self) -> str:
        return self.prefix + "party-c"

    def all(self) -> tuple[str, str, str]:
        return (self.a, self.b, self.c)


def admin_url(vhost: str) -> str:
    return ADMIN_URL.format(vhost=vhost)


def user_url(user: str, vhost: str) -> str:
    """The local set-up's users have their name as password (deploy/rabbitmq/definitions.json)."""
    return f"amqp://{user}:{user}@{HOST}/{vhost}"


async def wait_reachable(timeout: float = 60.0) -> None:
    """Wait for the broker to accept connections (another session may be restarting it)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            connection = await aio_pika.connect(admin_url("/"))
            await connection.close()
            return
        except (aiormq.exceptions.AMQPError, ConnectionError) as exc:
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"RabbitMQ is not answering on {HOST} (run deploy/local/services.sh): {exc}"
                ) from exc
            await asyncio.sleep(1.0)


async def ensure_vhosts(vhosts: Vhosts, force: bool = False) -> bool:
    """Create the vhosts and permissions unless they are there already; True if created.

    The last permission copy_vhosts grants is unoct-peer's on party-b: when that user can
    connect there, the copy is complete (rabbitmqctl takes seconds a call, so skip it if so).
    """
    if not force:
        try:
            connection = await aio_pika.connect(user_url("unoct-peer", vhosts.b))
            await connection.close()
            return False
        except (aiormq.exceptions.AMQPError, ConnectionError):
            pass
    copy_vhosts(vhosts.prefix)
    return True


async def server_version() -> str:
    connection = await aio_pika.connect(admin_url("/"))
    try:
        properties = connection.transport.connection.server_properties  # type: ignore[union-attr]
        version = properties.get("version", b"?")
        return version.decode() if isinstance(version, bytes) else str(version)
    finally:
        await connection.close()


async def provision(vhosts: Vhosts) -> None:
    """The gateway's wire contract on every vhost (idempotent), as the gateway would declare it."""
    limit = LimitsConfig().submit_queue_max_length
    for vhost in vhosts.all():
        await topology.provision(admin_url(vhost), limit, PARTIES)


async def declare_queue(vhost: str, name: str, bind_to: tuple[str, str] | None = None) -> None:
    """A durable quorum queue, like the gateway's work queues, optionally bound to an exchange."""
    connection = await aio_pika.connect(admin_url(vhost))
    async with connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(
            name, durable=True, arguments={"x-queue-type": "quorum"}
        )
        if bind_to is not None:
            await queue.bind(bind_to[0], routing_key=bind_to[1])


async def delete_queue(vhost: str, name: str) -> None:
    connection = await aio_pika.connect(admin_url(vhost))
    async with connection:
        channel = await connection.channel()
        await channel.queue_delete(name)


async def purge(vhost: str, names: tuple[str, ...]) -> None:
    connection = await aio_pika.connect(admin_url(vhost))
    async with connection:
        for name in names:
            channel = await connection.channel()
            try:
                queue = await channel.declare_queue(name, passive=True)
                await queue.purge()
            except aiormq.exceptions.ChannelNotFoundEntity:
                continue


@dataclass(frozen=True)
class QueueState:
    messages: int
    consumers: int


async def queue_state(vhost: str, name: str) -> QueueState:
    connection = await aio_pika.connect(admin_url(vhost))
    async with connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(name, passive=True)
        result = queue.declaration_result
        return QueueState(int(result.message_count or 0), int(result.consumer_count or 0))


async def first_reason(vhost: str, queue_name: str) -> str | None:
    """The reason header of the first message in gw.rejected or gw.quarantine (left in place)."""
    connection = await aio_pika.connect(admin_url(vhost))
    async with connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(queue_name, passive=True)
        message = await queue.get(no_ack=False, fail=False)
        if message is None:
            return None
        await message.nack(requeue=True)
        headers = message.headers or {}
        reason, detail = (headers.get(h) for h in (topology.REASON_HEADER, topology.DETAIL_HEADER))
        return f"{reason!r}: {detail!r}"


def _rabbitmqctl(*args: str) -> None:
    result = subprocess.run(["rabbitmqctl", *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"rabbitmqctl {args[0]} failed: {result.stderr.strip()}")


def set_shovel(name: str, source: tuple[str, str], dest: tuple[str, str], prefetch: int) -> None:
    """A dynamic shovel from queue ``source`` to queue ``dest`` (each ``(vhost, queue)``).

    ``amqp:///<vhost>`` is the node's direct (in-VM) connection; ack-mode on-confirm acks the
    source only after the destination confirmed, the same guarantee as the bare forwarder.
    """
    value = {
        "src-protocol": "amqp091",
        "src-uri": f"amqp:///{source[0]}",
        "src-queue": source[1],
        "src-prefetch-count": prefetch,
        "dest-protocol": "amqp091",
        "dest-uri": f"amqp:///{dest[0]}",
        "dest-queue": dest[1],
        "ack-mode": "on-confirm",
    }
    _rabbitmqctl("set_parameter", "-p", source[0], "shovel", name, json.dumps(value))


def clear_shovel(name: str, vhost: str) -> None:
    _rabbitmqctl("clear_parameter", "-p", vhost, "shovel", name)
