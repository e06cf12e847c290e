"""Reconnecting to a broker that stays down: one log line per attempt, with a growing delay.

aio-pika retries a robust connection at a fixed interval and logs every failed attempt itself
(two or three lines a second for a partner that is down). The gateway takes over that report:
the libraries' per-attempt lines are silenced, and each attempt logs one ``broker.unreachable``
line saying when the next one comes, 1 s, 2 s, 4 s ... up to a minute.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Final

import aiormq.abc
import structlog
from aio_pika import RobustConnection
from aio_pika.abc import AbstractRobustConnection

from gateway.broker_errors import BROKER_ERRORS, describe_broker_error

log = structlog.get_logger(__name__)

FIRST_DELAY_S: Final = 1.0
MAX_DELAY_S: Final = 60.0
# The loggers that report each failed attempt; the gateway's own line replaces them.
_ATTEMPT_LOGGERS: Final = ("aio_pika.robust_connection", "aiormq.connection")


def backoff_s(attempt: int, first: float = FIRST_DELAY_S, cap: float = MAX_DELAY_S) -> float:
    """The wait after the ``attempt``-th failure in a row (0-based): doubling, capped."""
    return float(min(cap, first * 2 ** min(attempt, 32)))


def quiet_attempt_logs() -> None:
    for name in _ATTEMPT_LOGGERS:
        logging.getLogger(name).setLevel(logging.CRITICAL)


async def first_connection(
    open_connection: Callable[[], Awaitable[WatchedConnection]],
    name: str,
    url: str,
    first: float = FIRST_DELAY_S,
) -> WatchedConnection:
    """Open a connection, trying again with backoff until the broker first answers."""
    attempt = 0
    while True:
        try:
            return await open_connection()
        except BROKER_ERRORS as exc:
            delay = backoff_s(attempt, first)
            log.warning(
                "broker.unreachable",
                connection=name,
                attempt=attempt + 1,
                retry_in_s=delay,
                error=describe_broker_error(exc, url),
            )
            attempt += 1
            await asyncio.sleep(delay)


class BackoffWhileDown:
    """Grows a robust connection's reconnect interval while it stays down and logs each step;
    back to the first delay once it is up again.

    The watch is a task this object owns: ``close()`` cancels and awaits it, and a
    ``WatchedConnection`` calls that when it is closed, so no task outlives the connection to
    log after the session, and its streams, are gone.
    """

    def __init__(self, connection: AbstractRobustConnection, name: str, first: float) -> None:
        self._connection = connection
        self._name = name
        self._first = first
        self._task: asyncio.Task[None] | None = None

    async def on_closed(self, *_: Any) -> None:
        if self._connection.close_called:
            await self.close()
        elif self._task is None or self._task.done():
            self._task = asyncio.ensure_future(self._while_down())

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        # The watch ends in the CancelledError asked for here: expected, so not raised.
        await asyncio.gather(task, return_exceptions=True)

    def _down(self) -> bool:
        connection = self._connection
        return not (
            connection.is_closed or connection.close_called or connection.connected.is_set()
        )

    async def _while_down(self) -> None:
        connection = self._connection
        attempt = 0
        while self._down():
            delay = backoff_s(attempt, self._first)
            connection.reconnect_interval = delay  # type: ignore[attr-defined]
            log.warning("broker.reconnecting", connection=self._name, retry_in_s=delay)
            attempt += 1
            try:
                await asyncio.wait_for(connection.connected.wait(), delay)
            except TimeoutError:
                continue
        connection.reconnect_interval = self._first  # type: ignore[attr-defined]


class WatchedConnection(RobustConnection):
    """A robust connection that owns the watch growing its reconnect interval.

    Its ``close()`` ends the watch too: aio-pika runs no close callback when the connection
    is closed while it is down (there is no transport left to close), which is exactly when
    a watch is running.
    """

    _watch: BackoffWhileDown | None = None

    def watch_while_down(self, name: str, first: float = FIRST_DELAY_S) -> None:
        self._watch = BackoffWhileDown(self, name, first)
        self.close_callbacks.add(self._watch.on_closed)

    async def close(self, exc: aiormq.abc.ExceptionType | None = asyncio.CancelledError) -> None:
        # Closing first marks the connection closed, so no new watch can start after this one.
        await super().close(exc)
        if self._watch is not None:
            await self._watch.close()
