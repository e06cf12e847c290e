"""Replay, release and operator submissions: the pure part.

Operator tools (``gateway replay``, ``gateway quarantine release``, ``gateway consent request``)
do not act on the brokers themselves. They publish a :class:`ControlRequest` to the internal
``gw.control`` queue as the gateway's own broker user, and the running gateway's control worker
decides each request with the functions here, against its live state: a replay sees the consent
registry, the roster and the keys as they are now, not as they were when the message first
passed. This module holds the request format, the choice of archived records an operator's
selection turns into requests, what one archived record may become on replay, the archive
entries and status answers of a request, and the text the tools print. Nothing here does I/O.

Which records each target takes
-------------------------------
- ``deliver``: an accepted inbound envelope (``envelope.in``, delivered or duplicate), verified
  again and re-published to the local ``gw.deliver`` with ``x-gw-replay-of: <seq>``.
- ``peer``: an envelope this gateway sent (``envelope.out``/``sent``), re-sent unchanged (same id
  and signature, so the receiver treats it by id) if the third-party rule still allows it now.
- ``reprocess``: a rejected or quarantined submission (``submission``), decided again from its
  original bytes; what passes now is forwarded as a new envelope, at most once per record.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Final, Literal, get_args

from contracts import ContractError, parse_envelope
from contracts.amqp import CONTENT_TYPE, OPERATOR_SYSTEM, REPLAY_OF_HEADER
from gateway import outgoing
from gateway.archive import Entry, Record
from gateway.consent import RouteDecision
from gateway.inbound import InboundContext, Refused, decide_envelope
from gateway.keys import Keyring
from gateway.outbound import Delivery, OutboundContext, route_of
from gateway.outgoing import Outgoing
from gateway.provenance import known_from_envelope
from gateway.signing import SignatureError, verify_envelope
from gateway.stamping import rfc3339

Action = Literal["replay", "release", "submit", "review_release", "review_refuse"]
Target = Literal["deliver", "peer", "reprocess"]
ACTIONS: Final[tuple[Action, ...]] = get_args(Action)
TARGETS: Final[tuple[Target, ...]] = get_args(Target)

"""The system name of submissions an operator makes through ``gw.control`` (action submit)."""

MALFORMED: Final = "control.malformed"
UNAUTHORIZED: Final = "control.unauthorized"
UNKNOWN_RECORD: Final = "replay.unknown_record"
NOT_REPLAYABLE: Final = "replay.not_replayable"
TOO_OLD: Final = "replay.too_old"
UNREADABLE: Final = "replay.unreadable_record"

MAX_REQUEST_ID_LENGTH: Final = 255

# Kind and outcomes of the archived records each target can replay.
REPLAYABLE: Final[Mapping[Target, tuple[str, frozenset[str]]]] = {
    "deliver": ("envelope.in", frozenset({"delivered", "duplicate"})),
    "peer": ("envelope.out", frozenset({"sent"})),
    "reprocess": ("submission", frozenset({"rejected", "quarantined"})),
}
# Outcomes of the archive record of a request that mean its record went through; a
# quarantined submission with one of these is no longer waiting for release.
PASSED: Final = frozenset({"replayed", "released"})
REQUEST_KINDS: Final = ("replay", "release")
REVIEW_ACTIONS: Final = frozenset({"review_release", "review_refuse"})
MAX_OFFICER_LENGTH: Final = 64
MAX_NOTE_LENGTH: Final = 2000


class RequestError(Exception):
    """A control request the gateway cannot act on; ``code`` is the reason."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail


@dataclass(frozen=True)
class ControlRequest:
    """One operator request on ``gw.control`` (JSON; the AMQP message_id is the request_id)."""

    request_id: str
    action: Action
    seq: int | None = None
    target: Target | None = None
    submission: Mapping[str, Any] | None = None
    officer: str | None = None  # review: the person releasing or refusing
    note: str | None = None  # review: why it is refused

    def to_json(self) -> bytes:
        return json.dumps(
            {
                "request_id": self.request_id,
                "action": self.action,
                "seq": self.seq,
                "target": self.target,
                "submission": dict(self.submission) if self.submission is not None else None,
                "officer": self.officer,
                "note": self.note,
            },
            separators=(",", ":"),
            ensure_ascii=False,
        ).encode()

    @property
    def record_kind(self) -> str:
        """The kind of the archive record that documents this request."""
        if self.action in REVIEW_ACTIONS:
            return "review"
        return "release" if self.action == "release" else "replay"


def replay_request(request_id: str, seq: int, target: Target) -> ControlRequest:
    return ControlRequest(request_id, "replay", seq=seq, target=target)


def release_request(request_id: str, seq: int) -> ControlRequest:
    return ControlRequest(request_id, "release", seq=seq, target="reprocess")


def submit_request(request_id: str, submission: Mapping[str, Any]) -> ControlRequest:
    return ControlRequest(request_id, "submit", submission=submission)


def review_release_request(request_id: str, seq: int, officer: str) -> ControlRequest:
    return ControlRequest(request_id, "review_release", seq=seq, officer=officer)


def review_refuse_request(request_id: str, seq: int, officer: str, note: str) -> ControlRequest:
    return ControlRequest(request_id, "review_refuse", seq=seq, officer=officer, note=note)


def _text_member(data: Mapping[str, Any], name: str, limit: int, action: str) -> str:
    value = data.get(name)
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        raise RequestError(
            MALFORMED, f"action {action} needs {name}, a non-empty string of at most {limit}"
        )
    return value.strip()


def request_id_of(body: bytes) -> str | None:
    """The request_id of a request too broken to parse, if one can be read (for the answer)."""
    try:
        value = json.loads(body).get("request_id")
    except (ValueError, AttributeError, RecursionError):
        return None
    return value if isinstance(value, str) and 0 < len(value) <= MAX_REQUEST_ID_LENGTH else None


def parse_control_request(body: bytes) -> ControlRequest:
    """A :class:`ControlRequest` from its JSON; RequestError(``control.malformed``) otherwise."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise RequestError(MALFORMED, f"not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise RequestError(MALFORMED, "a control request is a JSON object")
    request_id = data.get("request_id")
    if not isinstance(request_id, str) or not 0 < len(request_id) <= MAX_REQUEST_ID_LENGTH:
        raise RequestError(MALFORMED, "request_id must be a non-empty string")
    action = data.get("action")
    if action not in ACTIONS:
        raise RequestError(MALFORMED, f"action must be one of {', '.join(ACTIONS)}")
    if action == "submit":
        submission = data.get("submission")
        if not isinstance(submission, dict):
            raise RequestError(MALFORMED, "action submit needs a submission object")
        return submit_request(request_id, submission)
    seq = data.get("seq")
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1:
        raise RequestError(MALFORMED, f"action {action} needs seq, a positive archive seq")
    if action == "review_release":
        officer = _text_member(data, "officer", MAX_OFFICER_LENGTH, action)
        return review_release_request(request_id, seq, officer)
    if action == "review_refuse":
        officer = _text_member(data, "officer", MAX_OFFICER_LENGTH, action)
        note = _text_member(data, "note", MAX_NOTE_LENGTH, action)
        return review_refuse_request(request_id, seq, officer, note)
    target = data.get("target")
    if action == "release":
        if target not in (None, "reprocess"):
            raise RequestError(MALFORMED, "action release re-processes; target must be reprocess")
        return release_request(request_id, seq)
    if target not in TARGETS:
        raise RequestError(MALFORMED, f"target must be one of {', '.join(TARGETS)}")
    return replay_request(request_id, seq, target)


def reprocess_key(seq: int) -> str:
    """The claim of the one envelope an archived submission may become on re-processing.

    Keyed by the archived record rather than by the request: releasing the same submission
    twice, or replaying overlapping windows, re-sends that one envelope instead of a second.
    """
    return f"reprocess:{seq}"


# --- what one archived record becomes --------------------------------------------------------


@dataclass(frozen=True)
class Refusal:
    reason: str
    detail: str


@dataclass(frozen=True)
class Redeliver:
    """An inbound envelope verified again, to publish to the local gw.deliver."""

    payload: bytes
    envelope_id: str
    provider: str
    type: str


@dataclass(frozen=True)
class Resend:
    """One of our own envelopes that may go to its recipient again, unchanged."""

    envelope: dict[str, Any]
    recipient: str


@dataclass(frozen=True)
class ResendBlocked:
    """One of our own envelopes the third-party rule no longer lets go to its recipient."""

    envelope: dict[str, Any]
    recipient: str
    route: RouteDecision


def check_replayable(record: Record, target: Target) -> Refusal | None:
    kind, outcomes = REPLAYABLE[target]
    if record.kind == kind and record.outcome in outcomes:
        return None
    return Refusal(
        NOT_REPLAYABLE,
        f"record {record.seq} is {record.kind}/{record.outcome}; target {target} takes "
        f"{kind} records that are {' or '.join(sorted(outcomes))}",
    )


def _envelope_json(record: Record) -> dict[str, Any] | Refusal:
    try:
        data = json.loads(record.payload)
    except (ValueError, RecursionError):
        data = None
    if not isinstance(data, dict):
        return Refusal(UNREADABLE, f"record {record.seq} does not hold an envelope JSON object")
    return data


def decide_redelivery(record: Record, ctx: InboundContext) -> Redeliver | Refusal:
    """Verify an archived inbound envelope again (signature, schema, recipient).

    ``ctx.now`` should be the record's ``occurred_at``: the question is whether the envelope
    was good when it was accepted. Checked at today's date, the replay window and key expiry
    would refuse every older message, which is exactly what a back-office that lost data needs.
    """
    refusal = check_replayable(record, "deliver")
    if refusal is not None:
        return refusal
    raw = _envelope_json(record)
    if isinstance(raw, Refusal):
        return raw
    decision = decide_envelope(raw, ctx)
    if isinstance(decision, Refused):
        return Refusal(decision.reason, decision.detail)
    envelope = decision.envelope
    return Redeliver(record.payload, envelope.id, envelope.originator.party, envelope.type)


def decide_resend(
    record: Record, ctx: OutboundContext, own_keys: Keyring, max_age: timedelta
) -> Resend | ResendBlocked | Refusal:
    """May this envelope we sent go to its recipient again, now?

    Signature (with this Party's key), schema, recipient and the third-party rule are checked
    as of ``ctx.now``: a consent revoked since the first send stops the re-send. An envelope
    older than ``max_age`` is refused here, because the receiver's replay window would refuse
    it anyway (the same limit is assumed on both sides), silently for the operator.
    """
    refusal = check_replayable(record, "peer")
    if refusal is not None:
        return refusal
    raw = _envelope_json(record)
    if isinstance(raw, Refusal):
        return raw
    try:
        verify_envelope(raw, own_keys, ctx.now)
        envelope = parse_envelope(raw)
    except SignatureError as exc:
        return Refusal(exc.code, exc.detail)
    except ContractError as exc:
        return Refusal(exc.code, exc.message)
    if envelope.recipient not in ctx.counterparties:
        return Refusal(
            "route.unknown_recipient",
            f"recipient {envelope.recipient} is not a configured counterparty",
        )
    age = ctx.now - envelope.created_at
    if age > max_age:
        return Refusal(
            TOO_OLD,
            f"envelope {envelope.id} is {age.total_seconds():.0f} s old; receivers refuse "
            f"envelopes older than {max_age.total_seconds():.0f} s (re-submit it instead)",
        )
    route = route_of(known_from_envelope(raw, received=False), ctx)
    if not route.allowed:
        return ResendBlocked(raw, envelope.recipient, route)
    return Resend(raw, envelope.recipient)


def reprocess_delivery(record: Record) -> Delivery | Refusal:
    """The submission of an archived rejected/quarantined record, as it first arrived.

    The original content_type is not archived; the body is taken as JSON, which is what a
    fixed submission is (and what the contract requires).
    """
    refusal = check_replayable(record, "reprocess")
    if refusal is not None:
        return refusal
    return archived_delivery(record)


def archived_delivery(record: Record) -> Delivery:
    """An archived submission (rejected, quarantined or held) as it first arrived."""
    return Delivery(
        body=record.payload,
        message_id=record.message_id,
        user_id=record.system,
        content_type=CONTENT_TYPE,
        headers={},
        redelivered=False,
    )


def operator_delivery(request: ControlRequest) -> Delivery:
    """An operator's submission, treated as if system ``operator`` had published it."""
    assert request.submission is not None
    return Delivery(
        body=json.dumps(dict(request.submission), separators=(",", ":")).encode(),
        message_id=request.request_id,
        user_id=OPERATOR_SYSTEM,
        content_type=CONTENT_TYPE,
        headers={},
        redelivered=False,
    )


# --- what a request leaves behind ------------------------------------------------------------


def answer(
    status: str,
    request_id: str,
    *,
    at: datetime,
    submission_id: str | None,
    envelope_id: str | None,
    type: str | None,
    reason: str | None = None,
    detail: str | None = None,
) -> Outgoing:
    """The status event answering a request: gw.status, correlation_id = request_id."""
    event = outgoing.status(
        status,
        system=OPERATOR_SYSTEM,
        at=at,
        submission_id=submission_id,
        envelope_id=envelope_id,
        type=type,
        reason=reason,
        detail=detail,
    )
    return replace(event, correlation_id=request_id)


def request_entry(
    request: ControlRequest,
    outcome: str,
    *,
    at: datetime,
    body: bytes,
    system: str | None,
    record: Record | None = None,
    envelope_id: str | None = None,
    type: str | None = None,
    recipient: str | None = None,
    reason: str | None = None,
    detail: str | None = None,
) -> Entry:
    """The archive record of one replay or release request (kind ``replay``/``release``)."""
    return Entry(
        kind=request.record_kind,
        outcome=outcome,
        occurred_at=at,
        payload=body,
        message_id=request.request_id,
        system=system,
        envelope_id=envelope_id or (record.envelope_id if record else None),
        type=type or (record.type if record else None),
        provider=record.provider if record else None,
        recipient=recipient or (record.recipient if record else None),
        correlation_id=record.correlation_id if record else None,
        reason=reason,
        detail=detail,
        refers_to=request.seq,
        headers=(("x-gw-target", request.target or ""),),
    )


def replay_header(seq: int) -> dict[str, str]:
    return {REPLAY_OF_HEADER: str(seq)}


# --- selecting records (the CLI side) --------------------------------------------------------


@dataclass(frozen=True)
class Selection:
    """What an operator asked for; empty means "any". Ids are seqs, envelope or message ids."""

    ids: tuple[str, ...] = ()
    since: datetime | None = None
    until: datetime | None = None
    types: tuple[str, ...] = ()
    outcomes: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()

    def matches(self, record: Record) -> bool:
        return (
            (self.since is None or record.recorded_at >= self.since)
            and (self.until is None or record.recorded_at < self.until)
            and (not self.types or record.type in self.types)
            and (not self.outcomes or record.outcome in self.outcomes)
            and (not self.kinds or record.kind in self.kinds)
        )

    def search_kinds_outcomes(self, target: Target) -> tuple[list[str], list[str]]:
        """Kinds and outcomes to search for (the target's, narrowed by the operator's)."""
        kind, outcomes = REPLAYABLE[target]
        kinds = [kind] if not self.kinds or kind in self.kinds else []
        wanted = sorted(outcomes if not self.outcomes else outcomes & set(self.outcomes))
        return kinds, wanted


@dataclass(frozen=True)
class Planned:
    record: Record
    request: ControlRequest


@dataclass(frozen=True)
class Skipped:
    record: Record
    why: str


@dataclass
class ReplayPlan:
    target: Target
    planned: list[Planned] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)


def plan_replay(
    records: Iterable[Record],
    target: Target,
    *,
    released: Mapping[int, Record],
    new_id: Callable[[], str],
) -> ReplayPlan:
    """The requests that replay ``records`` to ``target``, in archive order.

    Records the target cannot take are skipped with the reason. Each envelope is replayed once
    (the delivered record rather than its duplicates); a submission already released is
    skipped, naming the release (re-send its envelope with target peer instead).
    """
    plan = ReplayPlan(target)
    chosen: dict[str, Record] = {}
    for record in sorted({r.seq: r for r in records}.values(), key=lambda r: r.seq):
        refusal = check_replayable(record, target)
        if refusal is not None:
            plan.skipped.append(Skipped(record, refusal.detail))
            continue
        if target == "reprocess":
            release = released.get(record.seq)
            if release is not None:
                plan.skipped.append(
                    Skipped(
                        record,
                        f"already released by seq {release.seq} as envelope "
                        f"{release.envelope_id or '?'}",
                    )
                )
                continue
            key = str(record.seq)
        else:
            key = record.envelope_id or str(record.seq)
        kept = chosen.get(key)
        if kept is None or (kept.outcome != "delivered" and record.outcome == "delivered"):
            if kept is not None:
                plan.skipped.append(Skipped(kept, f"envelope {key} is replayed once"))
            chosen[key] = record
        else:
            plan.skipped.append(Skipped(record, f"envelope {key} is replayed once"))
    for record in sorted(chosen.values(), key=lambda r: r.seq):
        plan.planned.append(Planned(record, replay_request(new_id(), record.seq, target)))
    return plan


def released_records(records: Iterable[Record]) -> dict[int, Record]:
    """Archived request records that let their record through, by the seq they refer to."""
    found: dict[int, Record] = {}
    for record in records:
        if (
            record.kind in REQUEST_KINDS
            and record.outcome in PASSED
            and record.refers_to is not None
        ):
            found.setdefault(record.refers_to, record)
    return found


def pause_before(index: int, rate: float | None, elapsed: float) -> float:
    """Seconds to wait before sending request ``index`` (from 0) at ``rate`` requests/s."""
    if not rate:
        return 0.0
    return max(0.0, index / rate - elapsed)


# --- what the tools print --------------------------------------------------------------------


def describe(record: Record) -> str:
    route = f"{record.provider or '?'}->{record.recipient or '?'}"
    if record.provider is None and record.recipient is None:
        route = "-"
    ident = record.envelope_id or record.message_id or "-"
    return (
        f"seq {record.seq} {rfc3339(record.recorded_at)} {record.kind}/{record.outcome} "
        f"{record.type or '-'} {route} {ident}"
    )


def plan_lines(plan: ReplayPlan, *, dry_run: bool) -> list[str]:
    verb = "would replay" if dry_run else "replay"
    lines = [f"{verb} to {plan.target}: {describe(p.record)}" for p in plan.planned]
    lines += [f"skip: {describe(s.record)}: {s.why}" for s in plan.skipped]
    lines.append(f"{len(plan.planned)} to replay to {plan.target}, {len(plan.skipped)} skipped")
    return lines


def result_of(event: Mapping[str, Any] | None) -> str:
    """The result of one request as the summary counts it."""
    if event is None:
        return "unanswered"
    return str(event.get("status") or "unknown")


def summary(results: Sequence[str], skipped: int = 0) -> str:
    counts = Counter(results)
    parts = [f"{name} {counts[name]}" for name in sorted(counts)]
    if skipped:
        parts.append(f"skipped {skipped}")
    return "summary: " + (", ".join(parts) if parts else "nothing to do")


def answer_line(event: Mapping[str, Any] | None) -> str:
    if event is None:
        return "no answer before the deadline (the request stays queued on gw.control)"
    line = str(event.get("status"))
    if event.get("envelope_id"):
        line += f" envelope {event['envelope_id']}"
    if event.get("reason"):
        line += f": {event['reason']}"
    if event.get("detail"):
        line += f" ({event['detail']})"
    return line
