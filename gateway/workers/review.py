"""Release and refusal of held submissions, as the control worker carries them out.

A review request names a held submission (its archive seq) and the person deciding. It is
refused when the record is not held, was already released or refused (the claim
``review:<seq>`` holds the one decision), or the person may not decide (gateway.core.review: four
eyes and reviewer roles). A release runs every check again with the review waived: what passes
is forwarded as a new envelope; what the rule or a check stops now stays held, with the answer
saying why. A refusal is archived with its reason and ends the submission.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import replace
from datetime import datetime

from aio_pika.abc import AbstractIncomingMessage

from gateway.archive import Record
from gateway.core.control_requests import ControlRequest
from gateway.core.outbound_decision import (
    Accepted,
    Blocked,
    Held,
    OutboundContext,
    Rejected,
    decide_submission,
)
from gateway.core.replay import Refusal, answer, archived_delivery, request_entry
from gateway.core.review import (
    ALREADY_DECIDED,
    NOT_HELD,
    REFUSED,
    check_reviewer,
    officer_of,
    review_key,
)
from gateway.workers.events import Counted
from gateway.workers.outcomes import Outcome, Send
from gateway.workers.ports import Archive
from gateway.workers.refusals import Ending, Named, ended
from gateway.workers.submissions import Item, entry_for


class ReviewDecider:
    def __init__(
        self,
        *,
        party: str,
        gateway_user: str,
        archive: Archive,
        roles: Collection[str],
        outbound_context: Callable[[datetime], OutboundContext],
    ) -> None:
        self._party = party
        self._user = gateway_user
        self._archive = archive
        self._roles = frozenset(roles)
        self._outbound_context = outbound_context

    async def decide(
        self,
        message: AbstractIncomingMessage,
        request: ControlRequest,
        record: Record,
        now: datetime,
    ) -> Outcome:
        refusal = await self._refusal(request, record, now)
        if refusal is not None:
            # The submission stays held: the answer does not name it as over.
            ending = Ending("rejected", "rejected", refusal.reason, refusal.detail)
            return ended(request, message.body, record, ending, now, user=self._user)
        if request.action == "review_refuse":
            return self._refuse(request, message.body, record, now)
        return await self._release(message, request, record, now)

    async def _refusal(
        self, request: ControlRequest, record: Record, now: datetime
    ) -> Refusal | None:
        if record.kind != "submission" or record.outcome != "held":
            return Refusal(
                NOT_HELD, f"record {record.seq} is {record.kind}/{record.outcome}, not held"
            )
        claimed = await self._archive.claimed(review_key(record.seq))
        if claimed is not None:
            return Refusal(
                ALREADY_DECIDED,
                f"held submission {record.seq} was already decided: record {claimed.seq} "
                f"{claimed.kind}/{claimed.outcome}",
            )
        assert request.officer is not None
        ctx = self._outbound_context(now)
        problem = check_reviewer(
            request.officer,
            submission_officer=officer_of(record.headers),
            roster=ctx.state.roster,
            party=self._party,
            roles=self._roles,
            at=now,
        )
        return None if problem is None else Refusal(*problem)

    def _refuse(
        self, request: ControlRequest, body: bytes, record: Record, now: datetime
    ) -> Outcome:
        """A refusal ends the submission: its answer names it, and ``review:<seq>`` is claimed."""
        detail = f"refused by {request.officer}: {request.note}"
        ending = Ending("refused", "rejected", REFUSED, detail)
        named = Named(record.message_id)
        outcome = ended(request, body, record, ending, now, user=self._user, named=named)
        outcome.entries = [replace(e, dedup_key=review_key(record.seq)) for e in outcome.entries]
        return outcome

    async def _release(
        self,
        message: AbstractIncomingMessage,
        request: ControlRequest,
        record: Record,
        now: datetime,
    ) -> Outcome:
        delivery = archived_delivery(record)
        ctx = self._outbound_context(now)
        decision = decide_submission(delivery, ctx, reviewed=True)
        assert not isinstance(decision, Held)  # the review is waived on release
        if not isinstance(decision, Accepted):
            return self._still_held(request, message.body, record, decision, now)
        env = decision.envelope
        decision.apply(ctx.state, record.message_id or "", now)
        sent = entry_for(
            Item(message, delivery, review_key(record.seq), decision), self._party, now
        )
        done = request_entry(
            request,
            "released",
            at=now,
            body=message.body,
            system=self._user,
            record=record,
            envelope_id=env["id"],
            detail=f"released by {request.officer}; forwarded to {env['recipient']} "
            f"as envelope {env['id']}",
        )
        event = answer(
            "sent",
            request.request_id,
            at=now,
            submission_id=record.message_id,
            envelope_id=env["id"],
            type=env["type"],
        )
        send = Send(env["recipient"], env, {})
        counted = Counted("outbound", env["type"], env["recipient"], "forwarded")
        return Outcome(
            "released", entries=[sent], send=send, done=[done], effects=[event], events=[counted]
        )

    def _still_held(
        self,
        request: ControlRequest,
        body: bytes,
        record: Record,
        decision: Blocked | Rejected,
        now: datetime,
    ) -> Outcome:
        """A release a check stops now: archived and answered; the submission stays held."""
        if isinstance(decision, Blocked):
            status, reason = "blocked", decision.route.reason or "consent.missing"
            detail = decision.route.detail
        else:
            status, reason, detail = "rejected", decision.reason, decision.detail
        outcome = "quarantined" if status == "blocked" else "rejected"
        ending = Ending(outcome, status, reason, f"not released, still held: {detail}")
        # The submission stays held: the answer does not name it as over.
        return ended(request, body, record, ending, now, user=self._user)
