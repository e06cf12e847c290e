"""The reference a RabbitMQ user would write: a bare aio-pika forwarder between two brokers.

Consume from a queue, publish every message to a queue on another broker (here another vhost)
with publisher confirms, and ack the source only once the destination confirmed: at-least-once,
nothing lost when either side fails. It is pipelined: the prefetch bounds how many messages are
in hand, and aio-pika runs the callback of every delivery as its own task, so up to ``prefetch``
publishes wait for their confirms at the same time.

    python -m bench.bare_forwarder --source URL --source-queue Q --dest URL --dest-queue Q
"""

from __future__ import annotations

import argparse
import asyncio
import signal

import aio_pika
from aio_pika.abc import AbstractIncomingMessage, DeliveryMode


async def forward(
    source_url: str, source_queue: str, dest_url: str, dest_queue: str, prefetch: int
) -> None:
    source = await aio_pika.connect_robust(source_url)
    dest = await aio_pika.connect_robust(dest_url)
    async with source, dest:
        out_channel = await dest.channel(publisher_confirms=True)
        out = out_channel.default_exchange
        in_channel = await source.channel()
        await in_channel.set_qos(prefetch_count=prefetch)
        queue = await in_channel.declare_queue(source_queue, passive=True)

        async def on_message(message: AbstractIncomingMessage) -> None:
            copy = aio_pika.Message(
                message.body,
                headers=message.headers,
                content_type=message.content_type,
                message_id=message.message_id,
                correlation_id=message.correlation_id,
                timestamp=message.timestamp,
                delivery_mode=DeliveryMode.PERSISTENT,
            )
            try:
                await out.publish(copy, routing_key=dest_queue)
            except aio_pika.exceptions.DeliveryError:
                await message.nack(requeue=True)
                return
            await message.ack()

        await queue.consume(on_message)
        await _until_signalled()


async def _until_signalled() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", required=True, help="AMQP URL of the source vhost")
    parser.add_argument("--source-queue", required=True)
    parser.add_argument("--dest", required=True, help="AMQP URL of the destination vhost")
    parser.add_argument("--dest-queue", required=True)
    parser.add_argument("--prefetch", type=int, default=512)
    args = parser.parse_args()
    asyncio.run(forward(args.source, args.source_queue, args.dest, args.dest_queue, args.prefetch))


if __name__ == "__main__":
    main()
