"""The console's replay pages: select, preview (a dry run), run at a rate with live progress.

A run goes on in the background of the gateway process; its page reloads itself until every
request is answered (or timed out). Runs are kept in memory: the archive holds each replayed
record and the operator's ``replay.run`` action.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

import aiohttp_jinja2
from aiohttp import web

from gateway.archive.records import parse_time
from gateway.console.security import current_operator, requires
from gateway.console.views import CONSOLE_KEY
from gateway.core.control_requests import TARGETS, Target
from gateway.core.replay_plan import ReplayPlan, Selection, plan_lines, summary
from gateway.desk.actions import ActionResult
from gateway.desk.operations import Desk

MAX_RATE: Final = 1000.0


@dataclass
class ReplayRun:
    id: str
    operator: str
    target: Target
    total: int
    skipped: int
    started_at: datetime
    answered: int = 0
    results: list[str] = field(default_factory=list)
    summary: str | None = None
    task: asyncio.Task[None] | None = None

    @property
    def done(self) -> bool:
        return self.summary is not None


RUNS_KEY: Final = web.AppKey("replay_runs", dict[str, ReplayRun])


class SelectionError(ValueError):
    pass


def _selection(query: Any) -> tuple[Selection, Target] | None:
    """The operator's selection and target from a form or query; None when nothing is asked."""

    def text(name: str) -> str:
        value = query.get(name, "")
        return value.strip() if isinstance(value, str) else ""

    target = text("target")
    if not target:
        return None
    if target not in TARGETS:
        raise SelectionError(f"target must be one of {', '.join(TARGETS)}")
    try:
        since, until = (parse_time(text(n)) if text(n) else None for n in ("since", "until"))
    except ValueError as exc:
        raise SelectionError(f"not an RFC 3339 time: {exc}") from None
    selection = Selection(
        ids=tuple(text("ids").split()),
        since=since,
        until=until,
        types=tuple(t for t in [text("type")] if t),
        outcomes=tuple(o for o in [text("outcome")] if o),
    )
    if selection == Selection():
        raise SelectionError("select something: ids, since, until, type or outcome")
    return selection, target


def _desk(request: web.Request) -> Desk:
    return request.app[CONSOLE_KEY].desk


@aiohttp_jinja2.template("replay.html")
async def replay_page(request: web.Request) -> dict[str, Any]:
    """The selection form; with a selection, the dry run of it and the form that runs it."""
    context: dict[str, Any] = {"query": request.query, "targets": TARGETS, "plan": None}
    try:
        chosen = _selection(request.query)
    except SelectionError as exc:
        return {**context, "error": str(exc)}
    if chosen is not None:
        selection, target = chosen
        plan = await _desk(request).replay_plan(selection, target)
        context.update(plan=plan, lines=plan_lines(plan, dry_run=True))
    return {**context, "error": None}


@requires("operator")
async def replay_run(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    try:
        chosen = _selection(form)
        rate_text = form.get("rate")
        rate = float(rate_text) if isinstance(rate_text, str) and rate_text.strip() else None
    except (SelectionError, ValueError) as exc:
        raise web.HTTPBadRequest(text=str(exc)) from None
    if chosen is None or (rate is not None and not 0 < rate <= MAX_RATE):
        raise web.HTTPBadRequest(text=f"choose a target, and a rate above 0 up to {MAX_RATE}/s")
    selection, target = chosen
    desk = _desk(request)
    plan = await desk.replay_plan(selection, target)
    run = ReplayRun(
        id=uuid.uuid4().hex,
        operator=current_operator(request).name,
        target=target,
        total=len(plan.planned),
        skipped=len(plan.skipped),
        started_at=datetime.now(UTC),
    )
    request.app[RUNS_KEY][run.id] = run
    parameters = {"target": target, "selection": repr(selection), "rate": rate}
    run.task = asyncio.create_task(_run(desk, plan, rate, run, parameters))
    raise web.HTTPSeeOther(f"/replay/runs/{run.id}")


async def _run(
    desk: Desk, plan: ReplayPlan, rate: float | None, run: ReplayRun, parameters: dict[str, Any]
) -> None:
    def answered() -> None:
        run.answered += 1

    try:
        run.results = await desk.replay(plan, rate=rate, on_answer=answered)
        text = summary(run.results, run.skipped)
        ok = "unanswered" not in run.results
    except Exception as exc:  # the page must show the end of a run whatever stopped it
        text = f"stopped: {type(exc).__name__}: {exc}"
        ok = False
    result = ActionResult(ok, "replayed" if ok else "incomplete", text)
    try:
        await desk.record_action("replay.run", run.operator, result, parameters)
    finally:
        run.summary = text  # shown once the action is archived


async def _cancel_runs(app: web.Application) -> None:
    tasks = [run.task for run in app[RUNS_KEY].values() if run.task and not run.task.done()]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


@aiohttp_jinja2.template("replay_run.html")
async def replay_progress(request: web.Request) -> dict[str, Any]:
    run = request.app[RUNS_KEY].get(request.match_info["run_id"])
    if run is None:
        raise web.HTTPNotFound(text="no such replay run (runs are kept until a restart)")
    return {"run": run}


def add_replay_routes(app: web.Application) -> None:
    app[RUNS_KEY] = {}
    app.on_cleanup.append(_cancel_runs)
    app.router.add_get("/replay", replay_page)
    app.router.add_post("/replay/run", replay_run)
    app.router.add_get("/replay/runs/{run_id}", replay_progress)
