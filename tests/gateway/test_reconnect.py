"""A broker that stays down: one log line per attempt, with a growing delay (issue 14)."""

from __future__ import annotations

import asyncio
import logging
import socket

import pytest
import structlog

from gateway import amqp
from gateway.reconnect import FIRST_DELAY_S, MAX_DELAY_S, BackoffWhileDown, backoff_s
from tests.support.parties import PREFIX
from tests.support.services import RABBITMQ, require
from tests.support.waiting import wait_until


def test_the_delay_doubles_up_to_a_minute() -> None:
    assert [backoff_s(n) for n in range(8)] == [1, 2, 4, 8, 16, 32, 60, 60]
    assert backoff_s(10_000) == MAX_DELAY_S


def _closed_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


async def test_a_partner_that_stays_down_is_retried_with_backoff_and_one_line_each(
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = f"amqp://peer:secret@127.0.0.1:{_closed_port()}/party-b"
    caplog.set_level(logging.DEBUG)
    with structlog.testing.capture_logs() as events:
        link = asyncio.ensure_future(amqp.connect(url, "to SCO-RATS", fail_fast=False))

        def attempts() -> list[dict[str, object]]:
            return [e for e in events if e["event"] == "broker.unreachable"]

        try:
            await wait_until(lambda: len(attempts()) >= 3, timeout=15, message="three attempts")
        finally:
            link.cancel()
    assert [e["retry_in_s"] for e in attempts()[:3]] == [1.0, 2.0, 4.0]
    assert [e["attempt"] for e in attempts()[:3]] == [1, 2, 3]
    assert "cannot reach broker 127.0.0.1:" in attempts()[0]["error"]
    assert "secret" not in str(attempts())
    library = [r for r in caplog.records if r.name.startswith(("aio_pika", "aiormq"))]
    assert [r.getMessage() for r in library if r.levelno >= logging.WARNING] == []


class _DownConnection:
    """What BackoffWhileDown reads of a robust connection: lost, not yet closed."""

    def __init__(self) -> None:
        self.is_closed = False
        self.close_called = False
        self.connected = asyncio.Event()
        self.reconnect_interval = FIRST_DELAY_S


def _pending_watches() -> list[asyncio.Task[object]]:
    return [
        task
        for task in asyncio.all_tasks()
        if not task.done() and task.get_coro().__qualname__ == "BackoffWhileDown._while_down"
    ]


async def test_closing_the_connection_cancels_and_awaits_the_watch_of_a_lost_one() -> None:
    connection = _DownConnection()
    watch = BackoffWhileDown(connection, "to SCO-RATS", first=30.0)  # type: ignore[arg-type]
    with structlog.testing.capture_logs() as events:
        await watch.on_closed(connection, ConnectionError("lost"))
        await wait_until(
            lambda: any(e["event"] == "broker.reconnecting" for e in events),
            timeout=5,
            message="the watch's first line",
        )
        assert len(_pending_watches()) == 1  # waiting out its 30 s delay

        connection.close_called = True  # what RobustConnection.close() sets before closing
        await watch.on_closed(connection, asyncio.CancelledError())

        assert _pending_watches() == []
        reconnecting = [e for e in events if e["event"] == "broker.reconnecting"]
    assert len(reconnecting) == 1


async def test_a_deliberate_close_starts_no_watch() -> None:
    connection = _DownConnection()
    connection.close_called = True
    watch = BackoffWhileDown(connection, "to SCO-RATS", first=30.0)  # type: ignore[arg-type]
    with structlog.testing.capture_logs() as events:
        await watch.on_closed(connection, asyncio.CancelledError())
    assert _pending_watches() == []
    assert [e for e in events if e["event"] == "broker.reconnecting"] == []


class _CuttableProxy:
    """A TCP relay to the local broker that the test can cut, as a partner going down."""

    def __init__(self) -> None:
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*RABBITMQ)
        self._writers += [writer, up_writer]
        await asyncio.gather(
            self._pipe(reader, up_writer), self._pipe(up_reader, writer), return_exceptions=True
        )

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while chunk := await reader.read(65536):
            writer.write(chunk)
            await writer.drain()
        writer.close()

    async def cut(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.transport.abort()
        await self._server.wait_closed()


@pytest.mark.broker
async def test_a_real_link_closed_while_down_leaves_no_task_behind() -> None:
    require(RABBITMQ, "RabbitMQ")
    proxy = _CuttableProxy()
    port = await proxy.start()
    url = f"amqp://guest:guest@127.0.0.1:{port}/{PREFIX}party-b"
    connection = await amqp.connect(url, "to SCO-RATS")
    with structlog.testing.capture_logs() as events:
        await proxy.cut()
        await wait_until(
            lambda: any(e["event"] == "broker.reconnecting" for e in events),
            timeout=10,
            message="the link's first reconnecting line",
        )
        await connection.close()
        assert _pending_watches() == []
