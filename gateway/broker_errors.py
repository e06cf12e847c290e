"""Broker failures as one line that names the problem and the fix, for commands to print
instead of a traceback (``gateway run``, ``provision``, ``submit``)."""

from __future__ import annotations

import re
import ssl
from typing import Final

from aiormq.exceptions import (
    AMQPConnectionError,
    AMQPError,
    ChannelAccessRefused,
    ChannelNotFoundEntity,
    IncompatibleProtocolError,
    InvalidFrameError,
    ProbableAuthenticationError,
)
from yarl import URL

BROKER_ERRORS: Final = (AMQPError, OSError, TimeoutError)
"""What connecting to or using a broker raises when the broker, not the program, is at fault."""


def is_refusal(exc: BaseException) -> bool:
    """The broker answered and said no (credentials, vhost, permissions): retrying the same
    thing cannot succeed, unlike an unreachable broker."""
    return isinstance(
        exc,
        ProbableAuthenticationError
        | InvalidFrameError
        | IncompatibleProtocolError
        | ChannelAccessRefused
        | ChannelNotFoundEntity
        | ssl.SSLError,
    )


def _where(url: str) -> tuple[str, str, str]:
    """(host:port, vhost, user) of an AMQP URL, without its password."""
    parsed = URL(url)
    vhost = parsed.path[1:] if parsed.path not in ("", "/") else "/"
    port = parsed.port or (5671 if parsed.scheme == "amqps" else 5672)
    return f"{parsed.host}:{port}", vhost, parsed.user or "guest"


def _first_reason(exc: BaseException) -> str:
    text = " ".join(str(arg) for arg in exc.args) if exc.args else str(exc)
    match = re.search(r"ACCESS_REFUSED - ([^\"]+)", text)
    return match.group(1).strip() if match else text.strip()


def describe_broker_error(exc: BaseException, url: str) -> str:
    """One line: what went wrong with the broker at ``url`` and what to do about it."""
    address, vhost, user = _where(url)
    if isinstance(exc, ProbableAuthenticationError):
        return (
            f"broker {address} refused the login of user {user!r}: wrong password or no such "
            "user; fix the URL's credentials or the user (rabbitmqctl change_password)"
        )
    if isinstance(exc, InvalidFrameError | IncompatibleProtocolError):
        # RabbitMQ closes the connection while opening it when the user may not use the vhost.
        return (
            f"broker {address} refused user {user!r} access to vhost {vhost!r}: grant it "
            f"(rabbitmqctl set_permissions -p {vhost} {user} ...) or fix the URL's vhost"
        )
    if isinstance(exc, ChannelAccessRefused):
        return (
            f"broker {address} refused user {user!r}: {_first_reason(exc)}; check the user's "
            "permissions (deploy/rabbitmq/definitions.json)"
        )
    if isinstance(exc, ChannelNotFoundEntity):
        return (
            f"broker {address} vhost {vhost!r} lacks an exchange or queue "
            f"({_first_reason(exc)}); run `gateway provision --config ...` first"
        )
    if isinstance(exc, ssl.SSLError):
        return (
            f"TLS with broker {address} failed ({exc.reason or exc}): check the pinned CA, the "
            "client certificate and key, and the URL's host name (the [broker.tls] settings)"
        )
    if isinstance(exc, AMQPConnectionError | OSError | TimeoutError):
        cause = exc.args[-1] if isinstance(exc, AMQPConnectionError) and exc.args else exc
        return (
            f"cannot reach broker {address} ({cause or type(exc).__name__}): is RabbitMQ "
            "running, and are the URL's host and port right?"
        )
    return f"broker {address} failed: {type(exc).__name__}: {_first_reason(exc)}"
