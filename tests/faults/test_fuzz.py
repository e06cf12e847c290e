"""Bad input, fuzzed (design section 5, invariants 2 and 6): random bytes, truncated and deeply
nested JSON, huge strings and numbers, wrong types, unknown fields, wrong content types and
encodings, headers of the wrong type, oversized bodies, from the corpus in ``corpus/`` and from
hypothesis.

Two layers. The pure decisions first, with shrinking: no input makes them raise. Then the
running gateways: every bad submission on CICA's gw.submit and every bad frame on SCO-RATS's
gw.inbound (published as the peer user cica-peer) ends in gw.rejected with the reason the pure
decision gives, the workers stay up, and the good messages sent in between all arrive.
"""

from __future__ import annotations

import asyncio
import copy
import gzip
import json
import re
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import aio_pika
import pytest
from aio_pika.abc import AbstractIncomingMessage
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from contracts import ContractError, parse_frame
from gateway import topology
from gateway.config import load_config
from gateway.core import publications
from gateway.core.inbound_decision import InboundContext, Refused, check_officer, decide_envelope
from gateway.core.keys import SigningKey, load_signing_key
from gateway.core.outbound_decision import (
    Accepted,
    Delivery,
    OutboundContext,
    Rejected,
    decide_submission,
)
from gateway.core.signing import sign_envelope
from gateway.core.stamping import new_envelope_id
from gateway.core.state import PartyState
from gateway.service import load_keyring
from gateway.workers.inbound import compact
from tests.faults.conftest import CICA_VHOST, SCO_RATS_VHOST
from tests.faults.outages import queue_total
from tests.integration.conftest import Network
from tests.support.broker import Collector, Vhost
from tests.support.parties import HOST, Desk, assignment, share, submission, write_config
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.fault, pytest.mark.broker]

# Every fuzzed submission is published under this key; the judge must expect the same.
FUZZ_ROUTING_KEY = "information.share"

CORPUS = Path(__file__).parent / "corpus"
JSON = topology.JSON_CONTENT_TYPE
OFFICER = "lo-0001"
DESK = "case-desk"
PEER = "cica-peer"
REASON = re.compile(r"^[a-z0-9_]+(\.[a-z0-9_]+)+$")
GOOD_EVERY = 8

T = TypeVar("T")

# Text with lone surrogates: legal inside JSON escapes, not encodable as UTF-8.
TEXT = st.text(st.characters(exclude_categories=()), max_size=12)
LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=2**53, max_value=2**80),
    st.floats(),
    TEXT,
)
JSON_VALUES = st.recursive(
    LEAVES,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=8,
)


def json_kind(value: object) -> str:
    for kind, types in (("bool", bool), ("number", (int, float)), ("string", str)):
        if isinstance(value, types):
            return kind
    return {type(None): "null", list: "array", dict: "object"}.get(type(value), "other")


def member_paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """The path of every member of every object and array in ``doc``."""
    items: list[tuple[Any, Any]] = []
    if isinstance(doc, dict):
        items = list(doc.items())
    elif isinstance(doc, list):
        items = list(enumerate(doc))
    paths = []
    for key, value in items:
        paths.append((*prefix, key))
        paths += member_paths(value, (*prefix, key))
    return paths


@st.composite
def mutated(draw: st.DrawFn, doc: Mapping[str, Any]) -> dict[str, Any]:
    """``doc`` with one member retyped, dropped, or joined by an unknown member."""
    result = copy.deepcopy(dict(doc))
    path = draw(st.sampled_from(member_paths(result)))
    parent: Any = result
    for key in path[:-1]:
        parent = parent[key]
    last = path[-1]
    how = draw(st.sampled_from(["retype", "drop", "add"]))
    if how == "retype":
        kind = json_kind(parent[last])
        parent[last] = draw(JSON_VALUES.filter(lambda v: json_kind(v) != kind))
    elif how == "drop":
        del parent[last]
    else:
        target = parent[last] if isinstance(parent[last], dict) else result
        target[draw(TEXT.filter(lambda k: k not in target))] = draw(JSON_VALUES)
    return result


def deep(levels: int, *, closed: bool = True) -> bytes:
    return b'{"a": ' * levels + b"1" + (b"}" * levels if closed else b"")


@dataclass(frozen=True)
class Judge:
    """CICA's outbound and SCO-RATS's inbound decisions, pure, set up like the running gateways
    (the officer accredited at CICA and announced to SCO-RATS)."""

    cica_key: SigningKey
    outbound: OutboundContext
    inbound: InboundContext
    good_submission: dict[str, Any]
    good_envelope: dict[str, Any]
    max_frame_bytes: int

    def submission_reason(
        self,
        body: bytes,
        *,
        content_type: str | None = JSON,
        user_id: str | None = DESK,
        message_id: str = "m",
    ) -> str | None:
        delivery = Delivery(
            body, message_id, user_id, content_type, {}, False, routing_key=FUZZ_ROUTING_KEY
        )
        ctx = replace(self.outbound, now=datetime.now(UTC))
        decision = decide_submission(delivery, ctx)
        return decision.reason if isinstance(decision, Rejected) else None

    def envelopes(self, body: bytes) -> list[dict[str, Any]] | str:
        """The envelopes of a frame, or the reason the whole frame is refused (as the inbound
        worker unpacks it)."""
        if len(body) > self.max_frame_bytes:
            return "schema.too_large"
        try:
            return parse_frame(body)
        except ContractError as exc:
            return exc.code

    def refusal(self, raw: Mapping[str, Any]) -> Refused | None:
        ctx = replace(self.inbound, now=datetime.now(UTC))
        decision = decide_envelope(raw, ctx)
        if isinstance(decision, Refused):
            return decision
        return check_officer(decision.envelope, ctx)

    def envelope_reason(self, raw: Mapping[str, Any]) -> str | None:
        refused = self.refusal(raw)
        return refused.reason if refused else None

    def frame_reason(self, body: bytes) -> str | None:
        """The reason of the one rejected copy a single-envelope frame leaves, or None."""
        envelopes = self.envelopes(body)
        if isinstance(envelopes, str):
            return envelopes
        return self.envelope_reason(envelopes[0]) if len(envelopes) == 1 else None

    def unsigned_envelope(self) -> dict[str, Any]:
        return {k: v for k, v in self.good_envelope.items() if k != "signature"}

    def sign(self, envelope: Mapping[str, Any]) -> dict[str, Any]:
        """Signed with CICA's real key when it can be; a borrowed signature when it cannot
        (values RFC 8785 cannot carry, such as integers beyond 2**53)."""
        try:
            return sign_envelope(envelope, self.cica_key)
        except (ValueError, TypeError, RecursionError):
            return {**envelope, "signature": self.good_envelope["signature"]}


@pytest.fixture(scope="module")
def judge(keys_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Judge:
    directory = tmp_path_factory.mktemp("judge")
    cica = load_config(write_config(directory, "CICA", keys_dir))
    sco_rats = load_config(write_config(directory, "SCO-RATS", keys_dir))
    key = load_signing_key(cica.keys.signing_key)
    now = datetime.now(UTC)
    outbound = OutboundContext(
        party="CICA",
        counterparties=frozenset(c.id for c in cica.counterparties),
        max_message_bytes=cica.limits.max_message_bytes,
        signing_key=key,
        state=PartyState("CICA"),
        now=now,
        new_id=new_envelope_id,
        roster_admins=frozenset(cica.roster_admins),
    )
    inbound = InboundContext(
        party="SCO-RATS",
        keyring=load_keyring(sco_rats),
        state=PartyState("SCO-RATS"),
        now=now,
        max_age=sco_rats.limits.max_envelope_age,
        max_skew=sco_rats.limits.max_clock_skew,
    )

    def accept(doc: Mapping[str, Any]) -> dict[str, Any]:
        delivery = Delivery(json.dumps(doc).encode(), new_envelope_id(), DESK, JSON, {}, False)
        decision = decide_submission(delivery, outbound)
        assert isinstance(decision, Accepted), decision
        return decision.envelope

    announced = accept(submission("liaison.assignment", "SCO-RATS", assignment(OFFICER)))
    outbound.state.sent(announced, "assignment", now)
    inbound.state.received(announced, now)
    good = share("SCO-RATS", "A report.", officer=OFFICER)
    return Judge(
        cica_key=key,
        outbound=outbound,
        inbound=inbound,
        good_submission=good,
        good_envelope=accept(good),
        max_frame_bytes=publications.max_frame_bytes(sco_rats.limits.max_message_bytes),
    )


def submission_bodies(judge: Judge) -> st.SearchStrategy[bytes]:
    good = json.dumps(judge.good_submission).encode()
    return st.one_of(
        st.binary(max_size=300),
        st.integers(0, len(good) - 1).map(lambda n: good[:n]),
        mutated(judge.good_submission).map(lambda doc: json.dumps(doc).encode()),
        JSON_VALUES.map(lambda value: json.dumps(value).encode()),
    )


def frame_bodies(judge: Judge) -> st.SearchStrategy[bytes]:
    def frame(*envelopes: Any) -> bytes:
        return json.dumps({"frame": 1, "envelopes": list(envelopes)}).encode()

    good = frame(judge.good_envelope)
    return st.one_of(
        st.binary(max_size=300),
        st.integers(0, len(good) - 1).map(lambda n: good[:n]),
        JSON_VALUES.map(lambda value: json.dumps(value).encode()),
        st.dictionaries(TEXT, JSON_VALUES, max_size=4).map(frame),
        # Tampered after signing: the signature no longer fits.
        mutated(judge.good_envelope).map(frame),
        # Signed after the damage: authentic, and wrong in content.
        mutated(judge.unsigned_envelope()).map(lambda env: frame(judge.sign(env))),
    )


FAST = settings(
    max_examples=250,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@FAST
@given(data=st.data())
def test_no_submission_makes_the_outbound_decision_raise(judge: Judge, data: st.DataObject) -> None:
    body = data.draw(submission_bodies(judge))
    delivery = Delivery(body, "m", DESK, JSON, {}, False)
    decision = decide_submission(delivery, replace(judge.outbound, now=datetime.now(UTC)))
    if isinstance(decision, Rejected):
        assert REASON.match(decision.reason), decision
        decision.detail.encode()


@FAST
@given(data=st.data())
def test_no_frame_makes_the_inbound_decisions_raise(judge: Judge, data: st.DataObject) -> None:
    body = data.draw(frame_bodies(judge))
    envelopes = judge.envelopes(body)
    if isinstance(envelopes, str):
        assert REASON.match(envelopes), envelopes
        return
    for raw in envelopes:
        refused = judge.refusal(raw)
        if refused is not None:
            assert REASON.match(refused.reason), refused
            # It becomes an AMQP header of the copy in gw.rejected: it must encode.
            refused.detail.encode()
        # What the worker archives and copies to gw.rejected: bytes that decode to the same.
        assert json.loads(compact(raw)) == raw


def test_every_corpus_case_is_refused_by_the_pure_decisions(judge: Judge) -> None:
    for path in sorted((CORPUS / "submit").iterdir()):
        assert judge.submission_reason(path.read_bytes()) is not None, path.name
    for path in sorted((CORPUS / "inbound").iterdir()):
        assert judge.frame_reason(path.read_bytes()) is not None, path.name


def examples(strategy: st.SearchStrategy[T], count: int) -> list[T]:
    """``count`` values from ``strategy``, for a test that must send them over the broker
    (hypothesis cannot drive an asyncio test itself)."""
    found: list[T] = []

    @settings(
        max_examples=count,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def collect(value: T) -> None:
        found.append(value)

    collect()
    return found


WRONG_HEADERS: dict[str, Any] = {
    "x-delivery-count": "seven",
    "x-death": "forged",
    "x-gw-replay-of": 12345,
    "x-gw-reason": ["not", "a", "reason"],
    "nested": {"a": {"b": [1, 2.5, None, True, bytearray(b"\x00\xff")]}},
    "when": datetime(1970, 1, 1, tzinfo=UTC),
    "amount": Decimal("1.5"),
    "big": 2**62,
}


@dataclass
class Case:
    """One bad message and the reason it must be rejected with."""

    name: str
    body: bytes
    reason: str
    content_type: str | None = None
    content_encoding: str | None = None
    user_id: str | None = None
    headers: dict[str, Any] | None = None

    def message(self, message_id: str) -> aio_pika.Message:
        return aio_pika.Message(
            self.body,
            message_id=message_id,
            content_type=self.content_type,
            content_encoding=self.content_encoding,
            user_id=self.user_id,
            headers=self.headers,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        )


def judged(
    named: list[tuple[str, bytes]],
    reason_of: Callable[[bytes], str | None],
    content_type: str,
    user_id: str | None = None,
) -> list[Case]:
    cases = []
    for name, body in named:
        reason = reason_of(body)
        if reason is not None:
            cases.append(Case(name, body, reason, content_type, user_id=user_id))
    return cases


def by_desk(
    name: str, body: bytes, reason: str, content_type: str | None = JSON, **properties: Any
) -> Case:
    """A submission as the case desk publishes it: its own user_id, unless the case says not."""
    return Case(name, body, reason, content_type, **{"user_id": DESK, **properties})


def submission_cases(judge: Judge) -> list[Case]:
    corpus = [(p.name, p.read_bytes()) for p in sorted((CORPUS / "submit").iterdir())]
    generated = [
        (f"hypothesis-{i}", b) for i, b in enumerate(examples(submission_bodies(judge), 40))
    ]
    cases = judged(corpus + generated, judge.submission_reason, JSON, DESK)
    good = json.dumps(judge.good_submission).encode()
    huge_text = json.dumps(share("SCO-RATS", "x" * 2_000_000, officer=OFFICER)).encode()
    oversized = b'{"type": "' + b"x" * judge.outbound.max_message_bytes + b'"}'
    huge_text_reason = judge.submission_reason(huge_text)
    assert huge_text_reason is not None, "a 2 MB text must be refused, not forwarded"
    cases += [
        by_desk("huge-string", huge_text, huge_text_reason),
        by_desk("deep-object", deep(100_000), "schema.invalid_json"),
        by_desk("oversized", oversized, "schema.too_large"),
        by_desk("text-plain", good, "submission.wrong_content_type", "text/plain"),
        by_desk("xml", b"<share/>", "submission.wrong_content_type", "application/xml"),
        by_desk("no-content-type", good, "submission.wrong_content_type", None),
        by_desk("octet-stream", good, "submission.wrong_content_type", "application/octet-stream"),
        by_desk(
            "utf-16-declared",
            json.dumps(judge.good_submission).encode("utf-16"),
            "schema.invalid_json",
            "application/json; charset=utf-16",
        ),
        by_desk("gzip", gzip.compress(good), "schema.invalid_json", content_encoding="gzip"),
        by_desk("no-user-id", good, "submission.missing_user_id", user_id=None),
        by_desk("wrong-headers", good[:40], "schema.invalid_json", headers=WRONG_HEADERS),
    ]
    return cases


def frame_cases(judge: Judge) -> list[Case]:
    corpus = [(p.name, p.read_bytes()) for p in sorted((CORPUS / "inbound").iterdir())]
    generated = [(f"hypothesis-{i}", b) for i, b in enumerate(examples(frame_bodies(judge), 60))]
    frame = topology.FRAME_CONTENT_TYPE
    cases = judged(corpus + generated, judge.frame_reason, frame)
    garbage = b"\x00 not a frame \xff"
    cases += [
        Case("oversized", b"x" * (judge.max_frame_bytes + 1), "schema.too_large", frame),
        Case("deep", deep(100_000), "schema.invalid_json", frame),
        Case("text-plain", garbage, "schema.invalid_json", "text/plain"),
        Case("no-content-type", garbage, "schema.invalid_json", None),
        Case("gzip", gzip.compress(garbage), "schema.invalid_json", frame, content_encoding="gzip"),
        Case("wrong-headers", garbage, "schema.invalid_json", frame, headers=WRONG_HEADERS),
    ]
    return cases


async def test_bad_input_ends_in_gw_rejected_while_good_messages_flow(
    network: Network, vhosts: dict[str, Vhost], judge: Judge
) -> None:
    submits, frames = submission_cases(judge), frame_cases(judge)
    cica_rejected = await vhosts["CICA"].collect(topology.REJECTED)
    sco_rejected = await vhosts["SCO-RATS"].collect(topology.REJECTED)
    inbox = await vhosts["SCO-RATS"].bind_collector(topology.DELIVER, "CICA.information.share")
    await vhosts["SCO-RATS"].bind_collector(topology.DELIVER, "CICA.liaison.assignment")
    await network.start("CICA")
    await network.start("SCO-RATS")
    desk = await network.desk("CICA")
    await desk.submit(submission("liaison.assignment", "SCO-RATS", assignment(OFFICER)))
    peer = await aio_pika.connect(f"amqp://{PEER}:{PEER}@{HOST}/{SCO_RATS_VHOST}")
    good: list[str] = []

    async def send_good(n: int) -> None:
        body = json.dumps(share("SCO-RATS", f"Good message {n}.", officer=OFFICER)).encode()
        message_id = f"good-{n}"
        await desk.publish_raw(body, message_id=message_id, headers=WRONG_HEADERS)
        good.append(message_id)

    assert desk.channel is not None
    submit = await desk.channel.get_exchange(topology.SUBMIT, ensure=False)
    async with peer:
        channel = await peer.channel(publisher_confirms=True)
        inbound = await channel.get_exchange(topology.inbound_from("CICA"), ensure=False)
        for n, case in enumerate(submits):
            await submit.publish(case.message(f"fuzz-{n}"), routing_key=FUZZ_ROUTING_KEY)
            if n % GOOD_EVERY == 0:
                await send_good(n)
        for n, case in enumerate(frames):
            await inbound.publish(case.message(f"frame-{n}"), routing_key="")
            if n % GOOD_EVERY == 0:
                await send_good(len(submits) + n)
    await send_good(len(submits) + len(frames))

    await wait_until(
        lambda: len(cica_rejected.messages) >= len(submits), timeout=60, message="rejections"
    )
    await wait_until(
        lambda: len(sco_rejected.messages) >= len(frames), timeout=60, message="frame rejections"
    )
    await wait_until(lambda: len(inbox.messages) >= len(good), timeout=60, message="good ones")
    await wait_until(settled, timeout=30, message="queues to settle")
    await send_good(-1)
    await inbox.wait_for(body_submitted_as("good--1"), what="the last good message")
    await reject_sentinels(desk, cica_rejected, sco_rejected)

    reasons = {
        m.message_id: (m.headers or {}).get(topology.REASON_HEADER) for m in cica_rejected.messages
    }
    expected = {f"fuzz-{n}": case.reason for n, case in enumerate(submits)}
    wrong = {
        f"{case.name} ({message_id})": (reasons.get(message_id), case.reason)
        for (message_id, case) in zip(expected, submits, strict=True)
        if reasons.get(message_id) != case.reason
    }
    assert not wrong, f"(got, expected) per case: {wrong}"
    assert len(cica_rejected.messages) == len(submits) + 1
    got = Counter(
        str((m.headers or {}).get(topology.REASON_HEADER))
        for m in sco_rejected.messages
        if m.message_id != SENTINEL
    )
    assert got == Counter(case.reason for case in frames)
    for message in [*cica_rejected.messages, *sco_rejected.messages]:
        assert (message.headers or {}).get(topology.DETAIL_HEADER), message.message_id
    delivered = sorted(body["originator"]["submission_id"] for body in inbox.bodies())
    assert delivered == sorted(good)


SENTINEL = "sentinel"


def body_submitted_as(submission_id: str) -> Callable[[AbstractIncomingMessage], bool]:
    return lambda m: json.loads(m.body)["originator"]["submission_id"] == submission_id


async def reject_sentinels(desk: Desk, cica_rejected: Collector, sco_rejected: Collector) -> None:
    """One more bad submission and one more bad frame, last on their paths: once both are
    refused, a late extra rejection of the fuzz cases would have shown up before them."""
    await desk.publish_raw(b"the sentinel, not json", message_id=SENTINEL)
    peer = await aio_pika.connect(f"amqp://{PEER}:{PEER}@{HOST}/{SCO_RATS_VHOST}")
    async with peer:
        channel = await peer.channel(publisher_confirms=True)
        inbound = await channel.get_exchange(topology.inbound_from("CICA"), ensure=False)
        await inbound.publish(
            aio_pika.Message(b"the sentinel, not a frame", message_id=SENTINEL, user_id=PEER),
            routing_key="",
        )
    await cica_rejected.wait_for_ids([SENTINEL])
    await sco_rejected.wait_for_ids([SENTINEL])


async def settled() -> bool:
    totals = await asyncio.gather(
        asyncio.to_thread(queue_total, CICA_VHOST, "gw.submit"),
        asyncio.to_thread(queue_total, SCO_RATS_VHOST, "gw.inbound.CICA"),
    )
    return not any(totals)
