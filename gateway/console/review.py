"""The console's "Held for review" page: what ``gateway review list`` lists, and a release or a
refusal by the logged-in operator's liaison officer, through the CLI's own operations.

The account's officer id is the deciding officer, never one typed in the form: the gateway's
four-eyes check (not the submission's own officer, a reviewer role on the roster) then holds
for the person logged in.
"""

from __future__ import annotations

from typing import Any, Final

import aiohttp_jinja2
from aiohttp import web

from gateway.console.security import current_operator, requires
from gateway.console.views import CONSOLE_KEY, flash_result, form_field
from gateway.control_client import Answer, ControlClient
from gateway.core.replay_plan import answer_line
from gateway.desk.accounts import Operator
from gateway.desk.actions import ActionResult
from gateway.desk.operations import Desk
from gateway.review_ops import find_held, list_held, refuse, release
from gateway.tls import local_endpoint

DECIDER_ROLE: Final = "operator"


def may_decide(operator: Operator) -> bool:
    return operator.may(DECIDER_ROLE) and operator.officer is not None


@aiohttp_jinja2.template("review.html")
async def review_page(request: web.Request) -> dict[str, Any]:
    operator = current_operator(request)
    return {
        "held": await list_held(request.app[CONSOLE_KEY].desk.archive),
        "may_decide": may_decide(operator),
        "officer": operator.officer,
    }


def outcome(action: str, seq: int, officer: str, answer: Answer | None) -> ActionResult:
    """The gateway's answer as the page reports it: done as the CLI judges it, else why not."""
    status = str(answer.get("status")) if answer else "unanswered"
    envelope_id = str(answer.get("envelope_id")) if answer else None
    if action == "release" and status == "sent":
        text = (
            f"seq {seq} released by {officer}: every check passed, sent as envelope {envelope_id}"
        )
        return ActionResult(True, "released", text, envelope_id=envelope_id)
    refused = answer is not None and answer.get("reason") == "review.refused"
    if action == "refuse" and status == "rejected" and refused:
        return ActionResult(True, "refused", f"seq {seq} refused by {officer}")
    return ActionResult(False, status, f"not {action}d: {answer_line(answer)}")


async def _decide(desk: Desk, action: str, ident: str, officer: str, reason: str) -> ActionResult:
    record = await find_held(desk.archive, ident)
    if record is None:
        return ActionResult(False, "refused", f"no held submission {ident!r}")
    if action == "refuse" and not reason:
        return ActionResult(False, "refused", "a refusal needs a reason (it is archived)")
    async with ControlClient(local_endpoint(desk.config)) as client:
        if action == "release":
            answer = await release(client, record.seq, officer, desk.timeout)
        else:
            answer = await refuse(client, record.seq, officer, reason, desk.timeout)
    return outcome(action, record.seq, officer, answer)


@requires(DECIDER_ROLE)
async def review_decide(request: web.Request) -> web.StreamResponse:
    ident, action = request.match_info["seq"], request.match_info["action"]
    desk = request.app[CONSOLE_KEY].desk
    operator = current_operator(request)
    reason = form_field(await request.post(), "reason")
    if operator.officer is None:
        text = f"account {operator.name} names no liaison officer to decide as"
        result = ActionResult(False, "refused", text)
    else:
        result = await _decide(desk, action, ident, operator.officer, reason)
    parameters = {"id": ident, "officer": operator.officer, "reason": reason or None}
    refers_to = int(ident) if ident.isdigit() else None
    await desk.record_action(f"review.{action}", operator.name, result, parameters, refers_to)
    await flash_result(request, result)
    raise web.HTTPSeeOther("/review")


def add_review_routes(app: web.Application) -> None:
    app.router.add_get("/review", review_page)
    app.router.add_post(r"/review/{seq}/{action:release|refuse}", review_decide)
