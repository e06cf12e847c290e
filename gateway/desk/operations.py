"""The desk's operations: what ``gateway consent|quarantine`` and the console both call.

Reads come from the archive. Consent answers are operator submissions sent through the running
gateway's ``gw.control`` (so the gateway signs, archives and sends them like any other
message); releases are control requests too. A discard is this desk's own archive record. Every
action, refused ones included, is archived as an ``operator.action`` record naming the operator.
Released and discarded items are taken out of ``gw.quarantine``, so that queue (and the
dashboard's figure of it) holds what still waits for a decision.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Final

import aio_pika
import structlog

from contracts import ContractError, parse_submission
from contracts.amqp import QUARANTINE_QUEUE
from gateway.archive import ArchiveStore, Record, SearchFilter
from gateway.cli.replay import released, select_records
from gateway.config import GatewayConfig
from gateway.control_client import ControlClient
from gateway.core.archive_views import CONSENT_TYPES, consent_registry, pending_quarantine
from gateway.core.consent_registry import ConsentRegistry
from gateway.core.control_requests import ControlRequest, Target, release_request, submit_request
from gateway.core.replay_plan import (
    REQUEST_KINDS,
    ReplayPlan,
    Selection,
    pause_before,
    plan_replay,
    result_of,
)
from gateway.desk.actions import (
    AUDIT_KIND,
    DISCARD,
    ActionResult,
    answer_detail,
    audit_entry,
    choice_dict,
    discarded_seqs,
)
from gateway.desk.requests import (
    DECISION,
    REQUEST,
    REVOCATION,
    GrantChoice,
    PendingRequest,
    ScopeError,
    decision_recipient,
    denial_body,
    grant_body,
    pending_requests,
    revocation_body,
    submission,
)
from gateway.tls import Endpoint, local_endpoint

log = structlog.get_logger(__name__)

DEFAULT_TIMEOUT_S: Final = 30.0

_QUARANTINED = SearchFilter(kinds=["submission"], outcomes=["quarantined"])
_CLOSING = SearchFilter(kinds=[*REQUEST_KINDS, AUDIT_KIND])


async def remove_held(endpoint: Endpoint, queue_name: str, message_id: str) -> int:
    """Take every copy of ``message_id`` out of a holding queue; the others stay, in order.

    Each message is fetched unacknowledged; the matching ones are acknowledged and closing the
    channel returns the rest to the queue at their places. The copies only mirror the archive
    (a release or discard is decided there), so a copy a broker's quorum-queue delivery limit
    would drop after many such returns loses nothing but its place in the queue's figure.
    """
    removed = 0
    connection = await aio_pika.connect(endpoint.url, ssl_context=endpoint.ssl_context)
    async with connection:
        channel = await connection.channel()
        queue = await channel.get_queue(queue_name, ensure=False)
        while (message := await queue.get(no_ack=False, fail=False)) is not None:
            if message.message_id == message_id:
                await message.ack()
                removed += 1
    return removed


class Desk:
    """One Party's desk over its archive and its running gateway."""

    def __init__(
        self, config: GatewayConfig, archive: ArchiveStore, *, timeout: float = DEFAULT_TIMEOUT_S
    ) -> None:
        self.config = config
        self.archive = archive
        self.timeout = timeout

    # --- reading ---------------------------------------------------------------------------

    async def pending(self) -> list[PendingRequest]:
        """Consent requests waiting for this Party's answer, oldest first."""
        incoming = await self.archive.search(
            SearchFilter(kinds=["envelope.in"], types=[REQUEST], outcomes=["delivered"])
        )
        sent = await self.archive.search(SearchFilter(kinds=["envelope.out"], outcomes=["sent"]))
        records = sorted([*incoming, *sent], key=lambda r: r.seq)
        return pending_requests(records, self.config.party)

    async def pending_request(self, request_id: str) -> PendingRequest | None:
        return next((p for p in await self.pending() if p.request_id == request_id), None)

    async def consent_records(self) -> list[Record]:
        return await self.archive.search(SearchFilter(types=CONSENT_TYPES))

    async def registry(self) -> ConsentRegistry:
        return consent_registry(await self.consent_records())

    async def quarantined(self) -> list[Record]:
        """Quarantined submissions waiting for a decision (neither released nor discarded)."""
        quarantined = await self.archive.search(_QUARANTINED)
        closing = await self.archive.search(_CLOSING)
        discarded = discarded_seqs(closing)
        return [r for r in pending_quarantine(quarantined, closing) if r.seq not in discarded]

    async def quarantine_item(self, ident: str) -> tuple[Record, list[Record], list[Record]] | None:
        """A quarantined submission (by seq or message id), its release attempts and the
        operator actions on it."""
        matches = [
            r
            for r in await self.archive.search(_QUARANTINED)
            if ident in (str(r.seq), r.message_id)
        ]
        if not matches:
            return None
        record = matches[-1]
        history = [r for r in await self.archive.search(_CLOSING) if r.refers_to == record.seq]
        attempts = [r for r in history if r.kind in REQUEST_KINDS]
        return record, attempts, [r for r in history if r.kind == AUDIT_KIND]

    async def audit(self, limit: int = 500) -> list[Record]:
        found = await self.archive.search(SearchFilter(kinds=[AUDIT_KIND]))
        return list(reversed(found[-limit:]))

    # --- consent -----------------------------------------------------------------------------

    async def grant(
        self, request_id: str, choice: GrantChoice, *, officer: str, operator: str
    ) -> ActionResult:
        """Grant a pending request as ``choice`` narrows it (never wider than asked)."""
        parameters = {"request_id": request_id, "officer": officer, **choice_dict(choice)}
        now = datetime.now(UTC)
        return await self._answer(
            request_id,
            officer,
            lambda r: grant_body(r, choice, now),
            "consent.grant",
            operator,
            parameters,
        )

    async def deny(
        self, request_id: str, reason: str, *, officer: str, operator: str
    ) -> ActionResult:
        parameters = {"request_id": request_id, "officer": officer, "reason": reason}
        return await self._answer(
            request_id,
            officer,
            lambda r: denial_body(r, reason),
            "consent.deny",
            operator,
            parameters,
        )

    async def _answer(
        self,
        request_id: str,
        officer: str,
        body_of: Callable[[PendingRequest], dict[str, Any]],
        action: str,
        operator: str,
        parameters: Mapping[str, Any],
    ) -> ActionResult:
        """Send the decision ``body_of`` makes for a pending request; archive the action."""
        request = await self.pending_request(request_id)
        if request is None:
            result = ActionResult(
                False, "refused", f"no consent request {request_id} waits for an answer"
            )
        else:
            try:
                body = body_of(request)
            except ScopeError as exc:
                result = ActionResult(False, "refused", str(exc))
            else:
                message = submission(
                    DECISION, request.requester, officer, body, in_reply_to=request_id
                )
                result = await self._submit(message)
        await self.record_action(action, operator, result, parameters)
        return result

    async def request_consent(self, message: Mapping[str, Any], *, operator: str) -> ActionResult:
        """Send a ``consent.request`` submission (see ``gateway consent request``)."""
        result = await self._submit(message)
        body = message.get("body")
        await self.record_action("consent.request", operator, result, {"body": body})
        return result

    async def revoke(
        self, decision_id: str, reason: str, *, officer: str, operator: str
    ) -> ActionResult:
        parameters = {"decision_id": decision_id, "officer": officer, "reason": reason}
        records = await self.consent_records()
        registry = consent_registry(records)
        record = registry.record(decision_id)
        recipient = decision_recipient(records, decision_id)
        now = datetime.now(UTC)
        if record is None or recipient is None or record.grant.provider != self.config.party:
            result = ActionResult(
                False, "refused", f"{decision_id} is no consent decision this Party gave"
            )
        elif registry.status(decision_id, now) != "live":
            status = registry.status(decision_id, now)
            result = ActionResult(False, "refused", f"decision {decision_id} is {status}")
        else:
            body = revocation_body(decision_id, reason)
            result = await self._submit(submission(REVOCATION, recipient, officer, body))
        await self.record_action("consent.revoke", operator, result, parameters)
        return result

    # --- quarantine --------------------------------------------------------------------------

    async def release(self, ident: str, *, operator: str) -> ActionResult:
        """Re-check a quarantined submission now; forward it if it passes."""
        item = await self._waiting(ident)
        if isinstance(item, ActionResult):
            result = item
        else:
            event = await self._ask(release_request(str(uuid.uuid4()), item.seq))
            status = str(event.get("status")) if event else "unanswered"
            if status == "replayed":
                result = ActionResult(
                    True,
                    "released",
                    f"seq {item.seq} passed the checks and left as envelope "
                    f"{event.get('envelope_id') if event else None}",
                    envelope_id=str(event.get("envelope_id")) if event else None,
                )
                await self._unhold(item)
            else:
                result = ActionResult(False, status, answer_detail(event))
        seq = item.seq if isinstance(item, Record) else None
        await self.record_action("quarantine.release", operator, result, {"id": ident}, seq)
        return result

    async def discard(self, ident: str, reason: str, *, operator: str) -> ActionResult:
        """Drop a quarantined submission for good: it will never be sent."""
        item = await self._waiting(ident)
        if isinstance(item, ActionResult):
            await self.record_action(DISCARD, operator, item, {"id": ident, "reason": reason})
            return item
        result = ActionResult(True, "discarded", f"seq {item.seq} discarded: {reason}")
        # Archived first: the record is the decision; the queue copy only mirrors it.
        await self.record_action(
            DISCARD, operator, result, {"id": ident, "reason": reason}, item.seq
        )
        await self._unhold(item)
        return result

    async def _waiting(self, ident: str) -> Record | ActionResult:
        waiting = [r for r in await self.quarantined() if ident in (str(r.seq), r.message_id)]
        if not waiting:
            return ActionResult(False, "refused", f"no quarantined submission {ident!r} waits")
        return waiting[-1]

    async def _unhold(self, record: Record) -> None:
        if record.message_id is None:
            return
        removed = await remove_held(
            local_endpoint(self.config), QUARANTINE_QUEUE, record.message_id
        )
        log.info("desk.unheld", seq=record.seq, copies=removed)

    # --- replay ------------------------------------------------------------------------------

    async def replay_plan(self, selection: Selection, target: Target) -> ReplayPlan:
        """What replaying ``selection`` to ``target`` would send (and skip), sending nothing."""
        candidates, _ = await select_records(self.archive, selection, target)
        done = await released(self.archive) if target == "reprocess" else {}
        return plan_replay(candidates, target, released=done, new_id=lambda: str(uuid.uuid4()))

    async def replay(
        self, plan: ReplayPlan, *, rate: float | None, on_answer: Callable[[], None]
    ) -> list[str]:
        """Send ``plan`` at ``rate`` requests/s; the result of each request, in plan order."""
        async with ControlClient(
            local_endpoint(self.config), on_answer=lambda _: on_answer()
        ) as client:
            started = time.monotonic()
            for index, planned in enumerate(plan.planned):
                await asyncio.sleep(pause_before(index, rate, time.monotonic() - started))
                await client.send(planned.request)
            answers = await client.wait([p.request.request_id for p in plan.planned], self.timeout)
        return [result_of(answers[p.request.request_id]) for p in plan.planned]

    # --- plumbing ----------------------------------------------------------------------------

    async def _ask(self, request: ControlRequest) -> dict[str, Any] | None:
        async with ControlClient(local_endpoint(self.config)) as client:
            await client.send(request)
            answers = await client.wait([request.request_id], self.timeout)
        return answers[request.request_id]

    async def _submit(self, message: Mapping[str, Any]) -> ActionResult:
        try:
            parse_submission(json.dumps(message).encode())
        except ContractError as exc:
            return ActionResult(False, "refused", f"{exc.code}: {exc.message}")
        event = await self._ask(submit_request(str(uuid.uuid4()), message))
        if event is not None and event.get("status") == "sent":
            envelope_id = str(event.get("envelope_id"))
            return ActionResult(True, "sent", f"sent as envelope {envelope_id}", envelope_id)
        status = str(event.get("status")) if event else "unanswered"
        return ActionResult(False, status, answer_detail(event))

    async def record_action(
        self,
        action: str,
        operator: str,
        result: ActionResult,
        parameters: Mapping[str, Any],
        refers_to: int | None = None,
    ) -> None:
        """Archive one operator action with its operator, parameters and result."""
        entry = audit_entry(
            action,
            operator,
            result,
            parameters,
            refers_to=refers_to,
            at=datetime.now(UTC),
            message_id=str(uuid.uuid4()),
        )
        await self.archive.append([entry])
        log.info("desk.action", action=action, operator=operator, status=result.status)
