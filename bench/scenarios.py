"""The four systems under test, each moving the same messages from vhost party-a to party-b.

(a) a bare aio-pika forwarder, (b) one gateway hop, (c) both gateways end to end with
receipts, (d) a RabbitMQ dynamic shovel. Every scenario declares where messages are published,
which final queues are consumed (the first one times latency; all must receive every message)
and which processes do the work.
"""

from __future__ import annotations

import asyncio
import sys
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import aio_pika
from aio_pika.abc import AbstractConnection

from bench import broker
from bench.broker import Vhosts, admin_url, user_url
from bench.gateways import GatewayProcess
from bench.load import (
    KeysOf,
    Sink,
    Target,
    as_published,
    delivered_envelope,
    delivered_status,
    envelopes_in_frame,
)
from bench.messages import assignment_bytes
from bench.procs import Child, broker_pid
from gateway import topology


@dataclass(frozen=True)
class Context:
    vhosts: Vhosts
    workdir: Path
    keys: Path
    prefetch: int


class ConnectionLost(Exception):
    """The broker closed one of the benchmark's connections, e.g. because it was restarted."""


@dataclass
class FinalQueue:
    """A queue the benchmark consumes (as guest), feeding a Sink.

    The consumer does not ack (no_ack): it adds nothing to the system under test. A broker that
    closes the connection (another session restarting RabbitMQ) loses what was on its way, so
    a lost connection fails the measurement at once, to be retried, instead of reconnecting.
    """

    name: str
    vhost: str
    queue: str
    sink: Sink
    connection: AbstractConnection | None = None
    lost: str | None = None
    _closing: bool = False

    async def open(self) -> None:
        self.connection = await aio_pika.connect(admin_url(self.vhost))
        self.connection.close_callbacks.add(self._closed)
        channel = await self.connection.channel()
        queue = await channel.declare_queue(self.queue, passive=True)
        await queue.consume(self.sink.on_message, no_ack=True)

    def _closed(self, _: object, exc: BaseException | None = None) -> None:
        if not self._closing:
            self.lost = repr(exc)

    def check(self) -> None:
        if self.lost is not None:
            raise ConnectionLost(f"consumer of {self.vhost}/{self.queue}: {self.lost}")

    async def close(self) -> None:
        self._closing = True
        if self.connection is not None:
            await self.connection.close()


def final(name: str, vhost: str, queue: str, keys_of: KeysOf) -> FinalQueue:
    return FinalQueue(name, vhost, queue, Sink(keys_of))


class Scenario(ABC):
    key: ClassVar[str]
    title: ClassVar[str]

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.finals: list[FinalQueue] = []
        self.children: list[Child] = []

    @property
    @abstractmethod
    def target(self) -> Target: ...

    @abstractmethod
    async def start(self) -> None: ...

    @abstractmethod
    def workers(self) -> dict[str, int]:
        """The processes that do the forwarding, by label."""

    def preamble(self) -> list[tuple[str, bytes]]:
        """Messages that must pass before the first measured one: none by default."""
        return []

    async def open_finals(self) -> None:
        for queue in self.finals:
            await queue.open()

    def gateways(self) -> dict[str, GatewayProcess]:
        return {c.name: c for c in self.children if isinstance(c, GatewayProcess)}

    def check(self) -> None:
        for queue in self.finals:
            queue.check()
        for child in self.children:
            child.check()

    async def stop(self) -> None:
        for queue in self.finals:
            await queue.close()
        for child in self.children:
            await child.stop()

    async def diagnose(self) -> str:
        """What to look at when messages stop arriving."""
        lines = []
        for child in self.children:
            lines.append(f"--- end of {child.log_path}\n{child.log_tail()}")
        return "\n".join(lines)

    async def leftovers(self) -> dict[str, int]:
        """Messages left where there should be none (rejections, quarantine)."""
        return {}


async def wait_for_consumer(
    vhost: str, queue: str, check: Callable[[], None], timeout: float = 30.0
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        check()
        if (await broker.queue_state(vhost, queue)).consumers > 0:
            return
        await asyncio.sleep(0.2)
    raise TimeoutError(f"nothing consumes {vhost}/{queue} after {timeout:.0f} s")


class BareForwarder(Scenario):
    key = "a"
    title = "bare aio-pika forwarder"
    SOURCE = "bench.forward.in"
    DEST = "bench.forward.out"

    @property
    def target(self) -> Target:
        return Target(admin_url(self.ctx.vhosts.a), "", self.SOURCE, "guest")

    async def start(self) -> None:
        v = self.ctx.vhosts
        await broker.declare_queue(v.a, self.SOURCE)
        await broker.declare_queue(v.b, self.DEST)
        await broker.purge(v.a, (self.SOURCE,))
        await broker.purge(v.b, (self.DEST,))
        self.finals = [final("arrived at party-b", v.b, self.DEST, as_published)]
        await self.open_finals()
        forwarder = Child(
            "bare forwarder",
            [
                sys.executable,
                "-m",
                "bench.bare_forwarder",
                "--source",
                admin_url(v.a),
                "--source-queue",
                self.SOURCE,
                "--dest",
                admin_url(v.b),
                "--dest-queue",
                self.DEST,
                "--prefetch",
                str(self.ctx.prefetch),
            ],
            self.ctx.workdir / "bare-forwarder.log",
        )
        self.children = [forwarder]
        forwarder.start()
        await wait_for_consumer(v.a, self.SOURCE, forwarder.check)

    def workers(self) -> dict[str, int]:
        return {"forwarder": self.children[0].pid}

    async def stop(self) -> None:
        await super().stop()
        await broker.delete_queue(self.ctx.vhosts.a, self.SOURCE)
        await broker.delete_queue(self.ctx.vhosts.b, self.DEST)

    async def diagnose(self) -> str:
        v = self.ctx.vhosts
        source = await broker.queue_state(v.a, self.SOURCE)
        return f"{self.SOURCE}: {source}\n" + await super().diagnose()


class Shovel(Scenario):
    key = "d"
    title = "RabbitMQ dynamic shovel"
    SOURCE = "bench.shovel.in"
    DEST = "bench.shovel.out"
    NAME = "bench-shovel"

    @property
    def target(self) -> Target:
        return Target(admin_url(self.ctx.vhosts.a), "", self.SOURCE, "guest")

    async def start(self) -> None:
        v = self.ctx.vhosts
        await broker.declare_queue(v.a, self.SOURCE)
        await broker.declare_queue(v.b, self.DEST)
        await broker.purge(v.a, (self.SOURCE,))
        await broker.purge(v.b, (self.DEST,))
        self.finals = [final("arrived at party-b", v.b, self.DEST, as_published)]
        await self.open_finals()
        broker.set_shovel(self.NAME, (v.a, self.SOURCE), (v.b, self.DEST), self.ctx.prefetch)
        await wait_for_consumer(v.a, self.SOURCE, self.check)

    def workers(self) -> dict[str, int]:
        pid = broker_pid()
        return {"broker (shovel)": pid} if pid is not None else {}

    async def stop(self) -> None:
        await super().stop()
        broker.clear_shovel(self.NAME, self.ctx.vhosts.a)
        await broker.delete_queue(self.ctx.vhosts.a, self.SOURCE)
        await broker.delete_queue(self.ctx.vhosts.b, self.DEST)


class _Gateways(Scenario):
    """Scenarios with CICA's gateway reading the back office's submissions from gw.submit."""

    @property
    def target(self) -> Target:
        return Target(
            user_url("case-desk", self.ctx.vhosts.a),
            topology.SUBMIT,
            "information.share",
            "case-desk",
        )

    async def _fresh_topology(self) -> None:
        await broker.provision(self.ctx.vhosts)
        for vhost in self.ctx.vhosts.all():
            await broker.purge(vhost, broker.GATEWAY_QUEUES)

    def _gateway(self, party: str) -> GatewayProcess:
        return GatewayProcess(party, self.ctx.vhosts, self.ctx.keys, self.ctx.workdir)

    def preamble(self) -> list[tuple[str, bytes]]:
        # information.share needs its officer on the roster: the assignment goes first, and
        # the warm-up that follows only arrives if it was accepted.
        return [(f"bench-assignment-{time.time_ns()}", assignment_bytes())]

    async def diagnose(self) -> str:
        lines = []
        for vhost in self.ctx.vhosts.all():
            for name in broker.GATEWAY_QUEUES:
                state = await broker.queue_state(vhost, name)
                lines.append(f"{vhost}/{name}: {state}")
                if name in (topology.REJECTED, topology.QUARANTINE) and state.messages:
                    lines.append(f"  first reason: {await broker.first_reason(vhost, name)}")
        return "\n".join(lines) + "\n" + await super().diagnose()

    async def leftovers(self) -> dict[str, int]:
        found = {}
        for vhost in self.ctx.vhosts.all():
            for name in (topology.REJECTED, topology.QUARANTINE):
                count = (await broker.queue_state(vhost, name)).messages
                if count:
                    found[f"{vhost}/{name}"] = count
        return found


class OneHop(_Gateways):
    key = "b"
    title = "one gateway hop (CICA outbound)"

    async def start(self) -> None:
        await self._fresh_topology()
        v = self.ctx.vhosts
        # SCO-RATS's gateway is not running: its gw.inbound.CICA just fills, and this consumer
        # counts the envelopes in the frames that land there.
        self.finals = [
            final(
                "envelopes in SCO-RATS gw.inbound.CICA",
                v.b,
                topology.inbound_from("CICA"),
                envelopes_in_frame,
            )
        ]
        await self.open_finals()
        cica = self._gateway("CICA")
        self.children = [cica]
        await cica.start_ready()

    def workers(self) -> dict[str, int]:
        return {"CICA gateway": self.children[0].pid}


class EndToEnd(_Gateways):
    key = "c"
    title = "end to end, both gateways + receipts"
    INBOX = "bench.inbox"
    RECEIPTS = "bench.status.delivered"

    async def start(self) -> None:
        await self._fresh_topology()
        v = self.ctx.vhosts
        await broker.declare_queue(v.b, self.INBOX, bind_to=(topology.DELIVER, "CICA.#"))
        await broker.declare_queue(v.a, self.RECEIPTS, bind_to=(topology.STATUS, "*.delivered.#"))
        await broker.purge(v.b, (self.INBOX,))
        await broker.purge(v.a, (self.RECEIPTS,))
        self.finals = [
            final("delivered to SCO-RATS back office", v.b, self.INBOX, delivered_envelope),
            final("receipt settled at CICA", v.a, self.RECEIPTS, delivered_status),
        ]
        await self.open_finals()
        sco_rats, cica = self._gateway("SCO-RATS"), self._gateway("CICA")
        self.children = [cica, sco_rats]
        await sco_rats.start_ready()
        await cica.start_ready()

    def workers(self) -> dict[str, int]:
        return {"CICA gateway": self.children[0].pid, "SCO-RATS gateway": self.children[1].pid}

    async def stop(self) -> None:
        await super().stop()
        await broker.delete_queue(self.ctx.vhosts.b, self.INBOX)
        await broker.delete_queue(self.ctx.vhosts.a, self.RECEIPTS)


SCENARIOS: dict[str, type[Scenario]] = {
    cls.key: cls for cls in (BareForwarder, OneHop, EndToEnd, Shovel)
}
