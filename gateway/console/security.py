"""The console's guards: sessions, login, roles, CSRF tokens, security headers, lock-out.

Every request except the probes (``/metrics``, ``/healthz``, ``/readyz``), the login page and
the stylesheet needs a logged-in operator; every POST needs the session's CSRF token; a route
marked with :func:`requires` needs that role, checked here on the server for every request.
"""

from __future__ import annotations

import hmac
import os
import secrets
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Final

import aiohttp_session
from aiohttp import web
from aiohttp_session.cookie_storage import EncryptedCookieStorage
from cryptography import fernet

from gateway.desk.accounts import Operator, OperatorAccounts, Role

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# Served without a session: the probes (no console data in them) and the stylesheet.
SESSIONLESS_PATHS: Final = frozenset({"/metrics", "/healthz", "/readyz", "/static/console.css"})
OPEN_PATHS: Final = SESSIONLESS_PATHS | {"/login"}
COOKIE_NAME: Final = "gw_console"
OPERATOR_KEY: Final = web.RequestKey("console.operator", Operator)
SESSION_MAX_AGE_S: Final = 8 * 3600
ACCOUNTS_KEY: Final = web.AppKey("accounts", OperatorAccounts)

HEADERS: Final = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def session_key(path: Path) -> bytes:
    """The Fernet key of the session cookies, made (mode 0600) on first use."""
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(fernet.Fernet.generate_key())
    return path.read_bytes().strip()


def requires(*roles: Role) -> Callable[[Handler], Handler]:
    """Mark a handler as allowed only to operators holding one of ``roles``."""

    def mark(handler: Handler) -> Handler:
        handler.__dict__["console_roles"] = frozenset(roles)
        return handler

    return mark


class LoginThrottle:
    """Lock a name (and a client address) out after too many failed logins in a window."""

    def __init__(self, max_failures: int, lockout_s: float) -> None:
        self.max_failures = max_failures
        self.lockout_s = lockout_s
        self._failures: dict[str, list[float]] = {}

    def _recent(self, key: str, now: float) -> list[float]:
        kept = [t for t in self._failures.get(key, []) if now - t < self.lockout_s]
        if kept:
            self._failures[key] = kept
        else:
            # Forgotten once quiet: guessed names must not pile up in memory.
            self._failures.pop(key, None)
        return kept

    def locked(self, keys: list[str]) -> bool:
        now = time.monotonic()
        return any(len(self._recent(k, now)) >= self.max_failures for k in keys)

    def failed(self, keys: list[str]) -> None:
        now = time.monotonic()
        for key in keys:
            self._failures[key] = [*self._recent(key, now), now]

    def succeeded(self, keys: list[str]) -> None:
        for key in keys:
            self._failures.pop(key, None)


async def csrf_token(request: web.Request) -> str:
    session = await aiohttp_session.get_session(request)
    token = session.get("csrf")
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        session["csrf"] = token
    return token


@web.middleware
async def security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        exc.headers.update(HEADERS)
        raise
    response.headers.update(HEADERS)
    return response


@web.middleware
async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Login, then CSRF on every POST, then the route's role."""
    if request.path in OPEN_PATHS:
        if request.method == "POST":
            await _check_csrf(request)
        return await handler(request)
    session = await aiohttp_session.get_session(request)
    name = session.get("operator")
    operator = request.app[ACCOUNTS_KEY].load().get(name) if isinstance(name, str) else None
    if operator is None:
        if request.method == "GET":
            raise web.HTTPFound("/login")
        raise web.HTTPForbidden(text="log in first")
    if request.method == "POST":
        await _check_csrf(request)
    roles = request.match_info.handler.__dict__.get("console_roles")
    if roles is not None and not any(operator.may(role) for role in roles):
        raise web.HTTPForbidden(text=f"this needs the role {' or '.join(sorted(roles))}")
    if roles is None and request.method == "POST" and request.path != "/logout":
        raise web.HTTPForbidden(text="no role may change this")
    request[OPERATOR_KEY] = operator
    return await handler(request)


async def _check_csrf(request: web.Request) -> None:
    form = await request.post()
    sent = form.get("csrf")
    session = await aiohttp_session.get_session(request)
    expected = session.get("csrf")
    if (
        not isinstance(sent, str)
        or not isinstance(expected, str)
        or not hmac.compare_digest(sent, expected)
    ):
        raise web.HTTPForbidden(text="missing or wrong CSRF token; reload the page")


def current_operator(request: web.Request) -> Operator:
    return request[OPERATOR_KEY]


def setup_security(
    app: web.Application, accounts: OperatorAccounts, key: bytes, *, https: bool
) -> None:
    storage = EncryptedCookieStorage(
        fernet.Fernet(key),
        cookie_name=COOKIE_NAME,
        httponly=True,
        samesite="Strict",
        secure=https,
        max_age=SESSION_MAX_AGE_S,
    )
    app[ACCOUNTS_KEY] = accounts
    app.middlewares.append(security_headers)
    aiohttp_session.setup(app, storage)
    app.middlewares.append(guard)
