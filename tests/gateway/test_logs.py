"""JSON lines with bound context variables, a console for humans, and never a secret."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
import structlog
from structlog.testing import capture_logs

from gateway.logs import OMITTED, REDACTED, configure_logging, redact_secrets


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()
    root.handlers[:] = handlers
    root.setLevel(level)


def _lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_json_lines_carry_level_iso_timestamp_and_fields() -> None:
    stream = io.StringIO()
    configure_logging("json", stream=stream)

    structlog.get_logger("t").info("envelope_forwarded", batch=3)

    (line,) = _lines(stream)
    assert line["event"] == "envelope_forwarded"
    assert line["level"] == "info"
    assert line["batch"] == 3
    assert line["timestamp"].endswith("Z")
    assert datetime.fromisoformat(line["timestamp"]).utcoffset() is not None


def test_context_and_redaction_with_structlog_capture() -> None:
    configure_logging("json", stream=io.StringIO())
    processors = [structlog.contextvars.merge_contextvars, redact_secrets]

    with (
        capture_logs(processors=processors) as logs,
        structlog.contextvars.bound_contextvars(envelope_id="e-1"),
    ):
        structlog.get_logger("t").warning("peer_refused", token="abc", reason="signature.bad")

    assert logs == [
        {
            "event": "peer_refused",
            "log_level": "warning",
            "envelope_id": "e-1",
            "token": REDACTED,
            "reason": "signature.bad",
        }
    ]


def test_secrets_never_reach_the_output() -> None:
    stream = io.StringIO()
    configure_logging("json", stream=stream)
    secrets = ["hunter2", "s3cr3t", "PRIVATEKEYBYTES", "tok-123", "pgpass"]

    structlog.get_logger("t").info(
        "connecting",
        url="amqp://cica-gateway:hunter2@127.0.0.1:5672/party-a",
        password="s3cr3t",
        private_key="PRIVATEKEYBYTES",
        settings={"api_token": "tok-123", "archive": "postgresql://gw:pgpass@db/archive"},
        peers=["amqps://cica-peer:hunter2@broker-b:5671/party-b"],
    )

    output = stream.getvalue()
    for secret in secrets:
        assert secret not in output
    (line,) = _lines(stream)
    assert line["url"] == "amqp://cica-gateway:***@127.0.0.1:5672/party-a"
    assert line["password"] == REDACTED
    assert line["private_key"] == REDACTED
    assert line["settings"] == {"api_token": REDACTED, "archive": "postgresql://gw:***@db/archive"}
    assert line["peers"] == ["amqps://cica-peer:***@broker-b:5671/party-b"]


def test_exceptions_and_library_logs_are_redacted_too() -> None:
    stream = io.StringIO()
    configure_logging("json", stream=stream)

    try:
        raise ConnectionError("cannot reach amqp://cica-peer:hunter2@broker-b/party-b")
    except ConnectionError:
        structlog.get_logger("t").exception("link_lost")
    logging.getLogger("aio_pika.connection").warning(
        "reconnecting to %s", "amqp://cica-peer:hunter2@broker-b/party-b"
    )

    assert "hunter2" not in stream.getvalue()
    link_lost, library = _lines(stream)
    assert "ConnectionError" in link_lost["exception"]
    assert library["event"] == "reconnecting to amqp://cica-peer:***@broker-b/party-b"
    assert library["logger"] == "aio_pika.connection"
    assert library["level"] == "warning"


def test_bodies_only_at_debug() -> None:
    stream = io.StringIO()
    configure_logging("json", level="debug", stream=stream)
    log = structlog.get_logger("t")

    log.info("received", body={"text": "confidential"})
    log.debug("received_detail", body={"text": "confidential"})

    info, debug = _lines(stream)
    assert info["body"] == OMITTED
    assert debug["body"] == {"text": "confidential"}


def test_level_filters_both_structlog_and_library_events() -> None:
    stream = io.StringIO()
    configure_logging("json", level="warning", stream=stream)

    structlog.get_logger("t").info("dropped")
    logging.getLogger("aiohttp").info("dropped too")
    structlog.get_logger("t").warning("kept")

    assert [line["event"] for line in _lines(stream)] == ["kept"]


def test_unknown_level_is_refused() -> None:
    with pytest.raises(ValueError, match="loud"):
        configure_logging("json", level="loud", stream=io.StringIO())


def test_auto_is_json_off_a_terminal_and_console_on_one() -> None:
    piped = io.StringIO()
    configure_logging("auto", stream=piped)
    structlog.get_logger("t").info("piped_event", key="value")
    assert json.loads(piped.getvalue())["event"] == "piped_event"

    terminal = _Terminal()
    configure_logging("auto", stream=terminal)
    structlog.get_logger("t").info("terminal_event", key="value")
    text = terminal.getvalue()
    assert "terminal_event" in text
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)


def test_console_forced_off_a_terminal_has_no_colour_codes() -> None:
    stream = io.StringIO()
    configure_logging("console", stream=stream)

    structlog.get_logger("t").info("plain_event", password="s3cr3t")

    text = stream.getvalue()
    assert "plain_event" in text
    assert "\x1b[" not in text
    assert "s3cr3t" not in text


def test_configuring_again_replaces_the_library_handler() -> None:
    first, second = io.StringIO(), io.StringIO()
    configure_logging("json", stream=first)
    configure_logging("json", stream=second)

    logging.getLogger("aio_pika").warning("once")

    assert first.getvalue() == ""
    assert [line["event"] for line in _lines(second)] == ["once"]


def test_values_the_fast_encoder_refuses_still_make_a_json_line() -> None:
    stream = io.StringIO()
    configure_logging("json", stream=stream)
    log = structlog.get_logger("t")

    log.info("hostile", message_id="\ud800", big=2**70, odd=object(), text="é\u2028")
    log.info("plain", url="amqp://gw:hunter2@broker/", n=1)

    hostile, plain = _lines(stream)
    assert (hostile["message_id"], hostile["big"]) == ("\ud800", 2**70)
    assert hostile["odd"].startswith("<object")
    assert hostile["text"] == "é\u2028"
    assert (plain["url"], plain["n"]) == ("amqp://gw:***@broker/", 1)
