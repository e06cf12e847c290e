"""A broker that stays down: one log line per attempt, with a growing delay (issue 14)."""

from __future__ import annotations

import asyncio
import logging
import socket

import pytest
import structlog

from gateway import amqp
from gateway.reconnect import MAX_DELAY_S, backoff_s
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
