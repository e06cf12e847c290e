"""Mount the console on the gateway's aiohttp application."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import aiohttp_jinja2
import aiohttp_session
import jinja2
from aiohttp import web

from gateway.config import ConsoleConfig
from gateway.console.overview import LiveStatusSource
from gateway.console.replays import add_replay_routes
from gateway.console.review import add_review_routes
from gateway.console.security import (
    OPERATOR_KEY,
    SESSIONLESS_PATHS,
    LoginThrottle,
    csrf_token,
    session_key,
    setup_security,
)
from gateway.console.verification import add_verification_routes
from gateway.console.views import CONSOLE_KEY, Console, add_routes
from gateway.core.archive_views import format_age, missing_providers
from gateway.core.keys import Keyring
from gateway.core.stamping import rfc3339
from gateway.desk.accounts import OperatorAccounts
from gateway.desk.operations import Desk

STATIC = Path(__file__).parent / "static"


async def _page_context(request: web.Request) -> dict[str, Any]:
    # aiohttp_jinja2 asks for every request; only pages get a session (and its cookie).
    if request.path in SESSIONLESS_PATHS:
        return {}
    session = await aiohttp_session.get_session(request)
    console = request.app[CONSOLE_KEY]
    return {
        "party": console.desk.config.party,
        "operator": request.get(OPERATOR_KEY),
        "csrf": await csrf_token(request),
        "flash": session.pop("flash", None),
    }


def setup_console(app: web.Application, console: Console, *, https: bool) -> None:
    """Add the console's pages, guards and templates to ``app``."""
    config = console.desk.config.console
    app[CONSOLE_KEY] = console
    # The guards first: the templates' context (the session's CSRF token) needs the session.
    setup_security(app, console.accounts, session_key(config.session_key_file), https=https)
    env = aiohttp_jinja2.setup(
        app,
        loader=jinja2.PackageLoader("gateway.console", "templates"),
        autoescape=jinja2.select_autoescape(["html"]),
        context_processors=[_page_context],
    )
    env.filters["time"] = rfc3339
    env.filters["age"] = format_age
    env.filters["providers"] = missing_providers
    app.router.add_static("/static", STATIC)
    add_routes(app)
    add_replay_routes(app)
    add_verification_routes(app)
    add_review_routes(app)


def https_context(config: ConsoleConfig) -> ssl.SSLContext | None:
    """The TLS context of the HTTP port when console.tls_cert is set, else None (plain HTTP)."""
    if config.tls_cert is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(config.tls_cert, config.tls_key)
    return context


def console_for(
    desk: Desk, *, live_status: LiveStatusSource | None = None, keyring: Keyring | None = None
) -> Console:
    config = desk.config.console
    return Console(
        desk=desk,
        accounts=OperatorAccounts(config.operators_file),
        throttle=LoginThrottle(config.max_failed_logins, config.lockout_s),
        live_status=live_status,
        keyring=keyring,
    )
