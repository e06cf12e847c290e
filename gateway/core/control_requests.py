"""The ``gw.control`` request format: what an operator tool asks the running gateway to do.

Operator tools (``gateway replay``, ``gateway quarantine release``, ``gateway consent request``,
the release review) do not act on the brokers themselves. They publish a :class:`ControlRequest`
to the internal ``gw.control`` queue as the gateway's own broker user; the control worker parses
it here and decides it with ``gateway.core.replay``. Nothing here does I/O.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Final, Literal, get_args

Action = Literal["replay", "release", "submit", "review_release", "review_refuse"]
Target = Literal["deliver", "peer", "reprocess"]
ACTIONS: Final[tuple[Action, ...]] = get_args(Action)
TARGETS: Final[tuple[Target, ...]] = get_args(Target)

MALFORMED: Final = "control.malformed"
UNAUTHORIZED: Final = "control.unauthorized"

MAX_REQUEST_ID_LENGTH: Final = 255
REVIEW_ACTIONS: Final = frozenset({"review_release", "review_refuse"})
MAX_OFFICER_LENGTH: Final = 64
MAX_NOTE_LENGTH: Final = 2000
# One request re-delivers at most this many records: it is decided, archived and committed as
# one unit, so its size bounds the work (and the broker transaction) one message can cause.
MAX_SEQS: Final = 1000
# A request is a few hundred bytes, an operator's submission at most a message; bigger bodies
# are refused before they are parsed.
MAX_REQUEST_BYTES: Final = 16 * 1024 * 1024


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
    seqs: tuple[int, ...] = ()  # replay to deliver: many records in one request, in order
    target: Target | None = None
    submission: Mapping[str, Any] | None = None
    officer: str | None = None  # review: the person releasing or refusing
    note: str | None = None  # review: why it is refused

    def to_json(self) -> bytes:
        document: dict[str, Any] = {
            "request_id": self.request_id,
            "action": self.action,
            "seq": self.seq,
            "target": self.target,
            "submission": dict(self.submission) if self.submission is not None else None,
            "officer": self.officer,
            "note": self.note,
        }
        if self.seqs:
            document["seqs"] = list(self.seqs)
        return json.dumps(
            document,
            separators=(",", ":"),
            ensure_ascii=False,
        ).encode()

    @property
    def record_kind(self) -> str:
        """The kind of the archive record that documents this request."""
        if self.action in REVIEW_ACTIONS:
            return "review"
        return "release" if self.action == "release" else "replay"

    def one(self, seq: int) -> ControlRequest:
        """The single-record request standing for ``seq`` of a multi-record one (its record's
        archived payload: the same request_id and target)."""
        return replace(self, seq=seq, seqs=())


def replay_request(request_id: str, seq: int, target: Target) -> ControlRequest:
    return ControlRequest(request_id, "replay", seq=seq, target=target)


def redeliver_request(request_id: str, seqs: Sequence[int]) -> ControlRequest:
    """Re-deliver many records in one request; one answer lists each record's result."""
    return ControlRequest(request_id, "replay", seqs=tuple(seqs), target="deliver")


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
    if len(body) > MAX_REQUEST_BYTES:
        raise RequestError(MALFORMED, f"a control request is at most {MAX_REQUEST_BYTES} bytes")
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
    if data.get("seqs") is not None:
        return _redelivery_of_many(request_id, action, data)
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


def _redelivery_of_many(request_id: str, action: str, data: Mapping[str, Any]) -> ControlRequest:
    if action != "replay" or data.get("target") != "deliver" or data.get("seq") is not None:
        raise RequestError(MALFORMED, "seqs is for action replay to target deliver, without seq")
    seqs = data["seqs"]
    if not isinstance(seqs, list) or not 0 < len(seqs) <= MAX_SEQS:
        raise RequestError(MALFORMED, f"seqs must be a list of 1 to {MAX_SEQS} archive seqs")
    if not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in seqs):
        raise RequestError(MALFORMED, "seqs must hold positive archive seqs")
    if len(set(seqs)) != len(seqs):
        # Each seq's result is answered by seq; a record is re-delivered once per request.
        raise RequestError(MALFORMED, "seqs must be distinct")
    return redeliver_request(request_id, seqs)
