"""The console's pages: each handler reads through, or acts through, the shared :class:`Desk`."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import aiohttp_jinja2
import aiohttp_session
from aiohttp import web

from gateway.archive import Record, SearchFilter
from gateway.archive.records import parse_time
from gateway.console.overview import LiveStatusSource
from gateway.console.security import LoginThrottle, current_operator, requires
from gateway.core.archive_views import consent_rows, missing_consents, undeclared_matches
from gateway.core.keys import Keyring
from gateway.desk.accounts import Operator, OperatorAccounts
from gateway.desk.actions import ActionResult
from gateway.desk.operations import Desk
from gateway.desk.requests import GrantChoice, ScopeError

ACTIVITY_WINDOW: Final = timedelta(minutes=5)
SEARCH_LIMIT: Final = 200
_SEARCH_FIELDS: Final = ("id", "since", "until", "type", "outcome", "provider", "recipient")


@dataclass
class Console:
    desk: Desk
    accounts: OperatorAccounts
    throttle: LoginThrottle
    live_status: LiveStatusSource | None
    keyring: Keyring | None


CONSOLE_KEY: Final = web.AppKey("console", Console)
Action = Callable[[Desk, Any, Operator], Awaitable[ActionResult]]


def _console(request: web.Request) -> Console:
    return request.app[CONSOLE_KEY]


async def flash_result(request: web.Request, result: ActionResult) -> None:
    session = await aiohttp_session.get_session(request)
    session["flash"] = {"ok": result.ok, "status": result.status, "text": result.detail}


def form_field(form: Any, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


# --- login -------------------------------------------------------------------------------------


@aiohttp_jinja2.template("login.html")
async def login_page(request: web.Request) -> dict[str, Any]:
    return {"error": None}


async def login(request: web.Request) -> web.StreamResponse:
    console = _console(request)
    form = await request.post()
    name = form_field(form, "name")
    keys = [f"name:{name}", f"addr:{request.remote}"]
    if console.throttle.locked(keys):
        return _login_error(request, "too many failed logins: try again later", 429)
    operator = console.accounts.authenticate(name, form_field(form, "password"))
    if operator is None:
        console.throttle.failed(keys)
        return _login_error(request, "wrong name or password", 401)
    console.throttle.succeeded(keys)
    session = await aiohttp_session.new_session(request)
    session["operator"] = operator.name
    raise web.HTTPSeeOther("/")


def _login_error(request: web.Request, error: str, status: int) -> web.Response:
    return aiohttp_jinja2.render_template("login.html", request, {"error": error}, status=status)


async def logout(request: web.Request) -> web.StreamResponse:
    session = await aiohttp_session.get_session(request)
    session.invalidate()
    raise web.HTTPSeeOther("/login")


# --- overview ----------------------------------------------------------------------------------


@aiohttp_jinja2.template("overview.html")
async def overview(request: web.Request) -> dict[str, Any]:
    console = _console(request)
    now = datetime.now(UTC)
    recent = await console.desk.archive.search(SearchFilter(since=now - ACTIVITY_WINDOW))
    activity: dict[str, int] = {}
    for record in recent:
        key = f"{record.kind} {record.outcome}"
        activity[key] = activity.get(key, 0) + 1
    minutes = ACTIVITY_WINDOW.total_seconds() / 60
    return {
        "status": await console.live_status() if console.live_status else None,
        "rates": {k: v / minutes for k, v in sorted(activity.items())},
        "window_min": int(minutes),
        "pending": len(await console.desk.pending()),
        "quarantined": len(await console.desk.quarantined()),
        "now": now,
    }


# --- consent -----------------------------------------------------------------------------------


@aiohttp_jinja2.template("consent_inbox.html")
async def consent_inbox(request: web.Request) -> dict[str, Any]:
    return {"requests": await _console(request).desk.pending(), "now": datetime.now(UTC)}


def _officer(form: Any, operator: Operator) -> str:
    """The deciding officer: as typed in the form, else the account's own officer id."""
    return form_field(form, "officer") or operator.officer or operator.name


async def _act(request: web.Request, redirect: str, act: Action) -> web.StreamResponse:
    """Run one desk action as the logged-in operator, flash its result, go to ``redirect``."""
    form = await request.post()
    result = await act(_console(request).desk, form, current_operator(request))
    await flash_result(request, result)
    raise web.HTTPSeeOther(redirect)


def _choice(form: Any) -> GrantChoice:
    expires = form_field(form, "expires")
    try:
        expires_at = parse_time(expires) if expires else None
    except ValueError:
        raise ScopeError(f"{expires!r} is not an RFC 3339 time") from None
    return GrantChoice(
        envelope_ids=tuple(v for v in form.getall("envelope", []) if isinstance(v, str)),
        thread=form_field(form, "thread") == "yes",
        recipients=tuple(v for v in form.getall("recipient", []) if isinstance(v, str)),
        expires_at=expires_at,
        conditions=form_field(form, "conditions") or None,
    )


@requires("consent-officer")
async def consent_grant(request: web.Request) -> web.StreamResponse:
    request_id = request.match_info["request_id"]

    async def grant(desk: Desk, form: Any, operator: Operator) -> ActionResult:
        try:
            choice = _choice(form)
        except ScopeError as exc:
            return ActionResult(False, "refused", str(exc))
        officer = _officer(form, operator)
        return await desk.grant(request_id, choice, officer=officer, operator=operator.name)

    return await _act(request, "/consent", grant)


@requires("consent-officer")
async def consent_deny(request: web.Request) -> web.StreamResponse:
    request_id = request.match_info["request_id"]

    async def deny(desk: Desk, form: Any, operator: Operator) -> ActionResult:
        reason = form_field(form, "reason") or "denied"
        officer = _officer(form, operator)
        return await desk.deny(request_id, reason, officer=officer, operator=operator.name)

    return await _act(request, "/consent", deny)


@aiohttp_jinja2.template("consent_register.html")
async def consent_register(request: web.Request) -> dict[str, Any]:
    desk = _console(request).desk
    rows = consent_rows(await desk.registry(), desk.config.party, datetime.now(UTC))
    return {"columns": rows[0], "rows": rows[1:]}


@requires("consent-officer")
async def consent_revoke(request: web.Request) -> web.StreamResponse:
    decision_id = request.match_info["decision_id"]

    async def revoke(desk: Desk, form: Any, operator: Operator) -> ActionResult:
        reason = form_field(form, "reason") or "revoked"
        officer = _officer(form, operator)
        return await desk.revoke(decision_id, reason, officer=officer, operator=operator.name)

    return await _act(request, "/consent/register", revoke)


# --- quarantine --------------------------------------------------------------------------------


@aiohttp_jinja2.template("quarantine.html")
async def quarantine(request: web.Request) -> dict[str, Any]:
    return {"items": await _console(request).desk.quarantined(), "now": datetime.now(UTC)}


@aiohttp_jinja2.template("quarantine_item.html")
async def quarantine_item(request: web.Request) -> dict[str, Any]:
    desk = _console(request).desk
    item = await desk.quarantine_item(request.match_info["seq"])
    if item is None:
        raise web.HTTPNotFound(text="no such quarantined submission")
    record, attempts, actions = item
    sources = []
    for envelope_id in record.derived_from:
        found = await desk.archive.search(SearchFilter(envelope_ids=[envelope_id]))
        sources.append((envelope_id, found[0] if found else None))
    waiting = any(r.seq == record.seq for r in await desk.quarantined())
    return {
        "record": record,
        "payload": _pretty(record.payload),
        "sources": sources,
        "undeclared": undeclared_matches(record.detail),
        "missing": missing_consents(record.detail),
        "attempts": attempts,
        "actions": actions,
        "waiting": waiting,
    }


@requires("operator")
async def quarantine_release(request: web.Request) -> web.StreamResponse:
    seq = request.match_info["seq"]

    async def release(desk: Desk, form: Any, operator: Operator) -> ActionResult:
        return await desk.release(seq, operator=operator.name)

    return await _act(request, f"/quarantine/{seq}", release)


@requires("operator")
async def quarantine_discard(request: web.Request) -> web.StreamResponse:
    seq = request.match_info["seq"]

    async def discard(desk: Desk, form: Any, operator: Operator) -> ActionResult:
        reason = form_field(form, "reason") or "discarded"
        return await desk.discard(seq, reason, operator=operator.name)

    return await _act(request, "/quarantine", discard)


# --- archive -----------------------------------------------------------------------------------


def _search_filter(query: Any) -> SearchFilter:
    def one(name: str) -> str | None:
        value = query.get(name, "").strip()
        return value or None

    ident = one("id")
    since, until = one("since"), one("until")
    return SearchFilter(
        since=parse_time(since) if since else None,
        until=parse_time(until) if until else None,
        types=[t for t in [one("type")] if t],
        outcomes=[o for o in [one("outcome")] if o],
        provider=one("provider"),
        recipient=one("recipient"),
        envelope_ids=[ident] if ident else [],
    )


@aiohttp_jinja2.template("archive.html")
async def archive(request: web.Request) -> dict[str, Any]:
    query = request.query
    records: list[Record] = []
    error = None
    if any(
        query.get(k) for k in ("since", "until", "type", "outcome", "provider", "recipient")
    ) or (query.get("id")):
        try:
            criteria = _search_filter(query)
        except ValueError as exc:
            error = str(exc)
        else:
            records = await _console(request).desk.archive.search(criteria, limit=SEARCH_LIMIT)
            ident = query.get("id", "").strip()
            if ident and not records:
                by_message = SearchFilter(message_ids=[ident])
                records = await _console(request).desk.archive.search(by_message)
    return {"query": query, "records": records, "error": error, "limit": SEARCH_LIMIT}


@aiohttp_jinja2.template("record.html")
async def record_page(request: web.Request) -> dict[str, Any]:
    store = _console(request).desk.archive
    seq = request.match_info["seq"]
    record = await store.get(int(seq)) if seq.isdigit() else None
    if record is None:
        raise web.HTTPNotFound(text="no such record")
    history: dict[int, Record] = {}
    if record.envelope_id:
        for r in await store.search(SearchFilter(envelope_ids=[record.envelope_id])):
            history[r.seq] = r
    if record.message_id:
        for r in await store.search(SearchFilter(message_ids=[record.message_id])):
            history[r.seq] = r
    receipts = [
        r
        for r in await store.search(SearchFilter(kinds=["receipt.in", "receipt.out"]))
        if record.envelope_id and _receipt_of(r) == record.envelope_id
    ]
    return {
        "record": record,
        "payload": _pretty(record.payload),
        "history": [history[s] for s in sorted(history)],
        "receipts": receipts,
    }


def _receipt_of(record: Record) -> str | None:
    try:
        value = json.loads(record.payload)["body"]["envelope_id"]
    except (ValueError, KeyError, TypeError):
        return None
    return value if isinstance(value, str) else None


def _pretty(payload: bytes) -> str:
    try:
        return json.dumps(json.loads(payload), indent=2, ensure_ascii=False)
    except (UnicodeDecodeError, ValueError):
        return f"<{len(payload)} bytes, not JSON>"


# --- audit -------------------------------------------------------------------------------------


@aiohttp_jinja2.template("audit.html")
async def audit(request: web.Request) -> dict[str, Any]:
    return {"actions": await _console(request).desk.audit()}


def add_routes(app: web.Application) -> None:
    app.router.add_get("/login", login_page)
    app.router.add_post("/login", login)
    app.router.add_post("/logout", logout)
    app.router.add_get("/", overview)
    app.router.add_get("/consent", consent_inbox)
    app.router.add_post("/consent/{request_id}/grant", consent_grant)
    app.router.add_post("/consent/{request_id}/deny", consent_deny)
    app.router.add_get("/consent/register", consent_register)
    app.router.add_post("/consent/decisions/{decision_id}/revoke", consent_revoke)
    app.router.add_get("/quarantine", quarantine)
    app.router.add_get("/quarantine/{seq}", quarantine_item)
    app.router.add_post("/quarantine/{seq}/release", quarantine_release)
    app.router.add_post("/quarantine/{seq}/discard", quarantine_discard)
    app.router.add_get("/archive", archive)
    app.router.add_get("/archive/{seq}", record_page)
    app.router.add_get("/audit", audit)
