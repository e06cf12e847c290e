"""Structured logs: JSON lines for machines, a console renderer for a human at a terminal.

Both structlog events and the standard library's records (aio-pika, aiohttp) go through the
same processors, so every line carries the context variables bound around it and no line
carries a secret.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import sys
from collections.abc import Mapping
from typing import Any, Final, Literal, TextIO

import orjson
import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

LogFormat = Literal["auto", "json", "console"]

REDACTED: Final = "[REDACTED]"
OMITTED: Final = "[omitted below debug]"

_SECRET_KEY = re.compile(
    r"password|passwd|passphrase|private_key|secret|token|credential|api_key|authorization",
    re.IGNORECASE,
)
# scheme://user:password@host -> scheme://user:***@host; AMQP and database URLs alike.
_URL_PASSWORD = re.compile(r"(?P<head>\b[a-z][a-z0-9+.\-]*://[^:/@\s]*:)[^@/\s]+@", re.IGNORECASE)
# Message content belongs in the archive, not in the logs, unless someone asked for debug.
_BODY_KEYS: Final = frozenset({"body", "payload"})


def _redact(value: object) -> object:
    if isinstance(value, str):
        # The test first: a log line has a dozen strings, and next to none of them is a URL.
        return _URL_PASSWORD.sub(r"\g<head>***@", value) if "://" in value else value
    if isinstance(value, Mapping):
        return {k: REDACTED if _is_secret_key(k) else _redact(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redact(v) for v in value]
    return value


def _is_secret_key(key: object) -> bool:
    return isinstance(key, str) and _SECRET_KEY.search(key) is not None


@functools.lru_cache(maxsize=512)
def _is_secret_field(key: object) -> bool:
    """``_is_secret_key`` for the fields of a log call, which the code names: a few dozen
    names, each searched once (the search of every field was ~40 % of a log line's cost)."""
    return _is_secret_key(key)


def redact_secrets(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
    """Blank secret-looking keys and URL passwords, and message bodies above debug level."""
    for key, value in event_dict.items():
        if _is_secret_field(key):
            event_dict[key] = REDACTED
        elif key in _BODY_KEYS and method_name != "debug":
            event_dict[key] = OMITTED
        else:
            event_dict[key] = _redact(value)
    return event_dict


def _level_number(level: str) -> int:
    try:
        return logging.getLevelNamesMapping()[level.upper()]
    except KeyError:
        raise ValueError(f"unknown log level {level!r}") from None


def _renderer(format: LogFormat, stream: TextIO) -> Processor:
    console = format == "console" or (format == "auto" and stream.isatty())
    if console:
        return structlog.dev.ConsoleRenderer(colors=stream.isatty())
    return structlog.processors.JSONRenderer(serializer=_json_line)


def _json_line(event: Any, **_: Any) -> str:
    """One JSON log line; orjson where it can (the renderer ran a line per message through
    the standard library's encoder), the standard library for what orjson refuses: a lone
    surrogate in a hostile message id, an integer beyond 64 bits."""
    try:
        return orjson.dumps(event, default=repr, option=orjson.OPT_NON_STR_KEYS).decode()
    except orjson.JSONEncodeError:
        return json.dumps(event, default=repr)


class _GatewayHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Marks the root handler this module installed, so reconfiguring replaces only it."""


def configure_logging(
    format: LogFormat = "auto", level: str = "info", *, stream: TextIO | None = None
) -> None:
    """Configure structlog and the standard library's root logger; call once at startup.

    ``stream`` defaults to standard error; ``auto`` picks the console renderer when it is a
    terminal and JSON lines otherwise.
    """
    out = stream if stream is not None else sys.stderr
    min_level = _level_number(level)
    # Exceptions are formatted before redaction so that a URL in an error message is caught.
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
        structlog.processors.format_exc_info,
        redact_secrets,
    ]
    renderer = _renderer(format, out)

    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(min_level),
        logger_factory=structlog.WriteLoggerFactory(file=out),
        cache_logger_on_first_use=True,
    )

    handler = _GatewayHandler(out)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _GatewayHandler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(min_level)
