"""Workers wired to the in-memory fakes (tests/support/fakes.py), with their parties' keys and
state: CICA submits to SCO-RATS (outbound), SCO-RATS receives from CICA (inbound)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from contracts import encode_frame
from contracts.registry import all_specs
from gateway import topology
from gateway.archive.records import Entry
from gateway.core.control_requests import ControlRequest
from gateway.core.inbound_decision import InboundContext
from gateway.core.keys import Keyring
from gateway.core.outbound_decision import OutboundContext
from gateway.core.stamping import new_envelope_id
from gateway.core.state import PartyState
from gateway.metrics import GatewayMetrics
from gateway.workers.batches import Batcher, RoundRobin
from gateway.workers.control import ControlWorker
from gateway.workers.inbound import InboundWorker
from gateway.workers.outbound import OutboundWorker
from gateway.workers.ports import Decisions
from gateway.workers.retry import RetryPolicy
from gateway.workers.submissions import submission_key
from tests.gateway.trust_helpers import assignment_envelope, new_key, signed
from tests.support.fakes import FakeArchive, FakeChannel, FakeMessage, FakePublisher
from tests.support.parties import share
from tests.support.waiting import wait_until

# No waiting between attempts: a test of a retry runs in milliseconds.
NO_WAIT = RetryPolicy(hold_s=(0.0,), forward_s=(0.0,), copies_s=(0.0,), failed_request_s=0.0)
TODAYS = Decisions()
MAX_ATTEMPTS = 3
GATEWAY_USER = "gw-cica"
MAX_BYTES = 64 * 1024
_START = datetime.now(UTC) - timedelta(days=1)
CICA_KEY = new_key("CICA", "CICA-test-1", start=_START)
RATS_KEY = new_key("SCO-RATS", "SCO-RATS-test-1", start=_START)


def metrics(party: str, counterparty: str) -> GatewayMetrics:
    types = [spec.type for spec in all_specs()]
    return GatewayMetrics(party, counterparties=[counterparty], message_types=types)


def submitted(text: str, message_id: str, **props: Any) -> FakeMessage:
    """A back-office system's share for SCO-RATS, as gw.submit delivers it."""
    facts: dict[str, Any] = {"user_id": "case-desk", "routing_key": "information.share"}
    facts.update(props)
    doc = share("SCO-RATS", text)
    return FakeMessage(json.dumps(doc).encode(), message_id=message_id, **facts)


def frame(*envelopes: Mapping[str, Any], message_id: str | None = None) -> FakeMessage:
    """A frame from CICA, as SCO-RATS's gw.inbound.CICA delivers it."""
    return FakeMessage(
        encode_frame(envelopes),
        message_id=message_id or new_envelope_id(),
        content_type=topology.FRAME_CONTENT_TYPE,
    )


def from_cica(text: str, **kwargs: Any) -> dict[str, Any]:
    """A share CICA's gateway signed for SCO-RATS, created now."""
    body = share("SCO-RATS", text)["body"]
    return signed(CICA_KEY, body=body, created_at=datetime.now(UTC), **kwargs)


async def _ready() -> None:
    """Nothing to catch up on: the test's state is the whole state."""


@dataclass
class Rig:
    channel: FakeChannel
    peer: FakePublisher
    archive: FakeArchive
    state: PartyState
    metrics: GatewayMetrics
    state_lost: list[bool] = field(default_factory=list)

    def lose_state(self) -> None:
        self.state_lost.append(True)


def cica_rig(
    channel: FakeChannel, archive: FakeArchive | None, peer: FakePublisher | None
) -> tuple[Rig, Callable[[datetime], OutboundContext]]:
    """CICA's side, lo-0001 accredited at SCO-RATS, and its outbound context at a time."""
    state = PartyState("CICA")
    state.sent(
        assignment_envelope(CICA_KEY, "lo-0001", recipient="SCO-RATS", created_at=_START),
        "assign-lo-0001",
        _START,
    )
    rig = Rig(
        channel,
        peer or FakePublisher(),
        archive or FakeArchive(),
        state,
        metrics("CICA", "SCO-RATS"),
    )

    def context(now: datetime) -> OutboundContext:
        return OutboundContext(
            party="CICA",
            counterparties=frozenset({"SCO-RATS"}),
            max_message_bytes=MAX_BYTES,
            signing_key=CICA_KEY,
            state=state,
            now=now,
            new_id=new_envelope_id,
            roster_admins=frozenset({"case-desk"}),
            third_parties=frozenset(),
        )

    return rig, context


def outbound(
    *messages: FakeMessage,
    archive: FakeArchive | None = None,
    peer: FakePublisher | None = None,
    channel: FakeChannel | None = None,
    decisions: Decisions = TODAYS,
) -> tuple[OutboundWorker, Rig]:
    """CICA's outbound worker on gw.submit holding ``messages``."""
    if channel is not None:
        channel.ready.extend(messages)
    rig, context = cica_rig(channel or FakeChannel(*messages), archive, peer)
    worker = OutboundWorker(
        party="CICA",
        channel=rig.channel,
        publishers={"SCO-RATS": rig.peer},
        archive=rig.archive,
        metrics=rig.metrics,
        batcher=Batcher(100, 0.0),
        context=context,
        on_state_lost=rig.lose_state,
        prepare=_ready,
        max_message_bytes=MAX_BYTES,
        max_attempts=MAX_ATTEMPTS,
        decide=decisions.submission,
        retry=NO_WAIT,
    )
    return worker, rig


def inbound(
    *messages: FakeMessage,
    archive: FakeArchive | None = None,
    decisions: Decisions = TODAYS,
) -> tuple[InboundWorker, Rig]:
    """SCO-RATS's inbound worker on gw.inbound.CICA holding ``messages``; CICA's lo-0001 is on
    the roster SCO-RATS keeps of CICA's officers; receipts go back to CICA."""
    state = PartyState("SCO-RATS")
    state.received(assignment_envelope(CICA_KEY, "lo-0001", created_at=_START), _START)
    rig = Rig(
        FakeChannel(*messages),
        FakePublisher(),
        archive or FakeArchive(),
        state,
        metrics("SCO-RATS", "CICA"),
    )
    keyring = Keyring([CICA_KEY.public()])

    def context(now: datetime) -> InboundContext:
        return InboundContext(
            party="SCO-RATS",
            keyring=keyring,
            state=state,
            now=now,
            max_age=timedelta(hours=1),
            max_skew=timedelta(minutes=2),
        )

    worker = InboundWorker(
        party="SCO-RATS",
        channels={"CICA": rig.channel},
        publishers={"CICA": rig.peer},
        archive=rig.archive,
        metrics=rig.metrics,
        batcher=RoundRobin({"CICA": Batcher(100, 0.0)}),
        signing_key=RATS_KEY,
        context=context,
        on_state_lost=rig.lose_state,
        prepare=_ready,
        max_message_bytes=MAX_BYTES,
        max_frame_envelopes=100,
        max_attempts=MAX_ATTEMPTS,
        decide=decisions.envelope,
        retry=NO_WAIT,
    )
    return worker, rig


def control(
    *messages: FakeMessage, archive: FakeArchive | None = None
) -> tuple[ControlWorker, Rig]:
    """CICA's control worker on gw.control holding ``messages``; CICA's inbound context
    verifies what SCO-RATS signed."""
    rig, context = cica_rig(FakeChannel(*messages), archive, None)
    keyring = Keyring([RATS_KEY.public()])

    def inbound_context(now: datetime) -> InboundContext:
        return InboundContext(
            party="CICA",
            keyring=keyring,
            state=rig.state,
            now=now,
            max_age=timedelta(hours=1),
            max_skew=timedelta(minutes=2),
        )

    worker = ControlWorker(
        party="CICA",
        gateway_user=GATEWAY_USER,
        channel=rig.channel,
        publishers={"SCO-RATS": rig.peer},
        archive=rig.archive,
        metrics=rig.metrics,
        own_keys=Keyring([CICA_KEY.public()]),
        max_envelope_age=timedelta(hours=1),
        outbound_context=context,
        inbound_context=inbound_context,
        on_state_lost=rig.lose_state,
        prepare=_ready,
        retry=NO_WAIT,
    )
    return worker, rig


def request(body: ControlRequest | bytes, user_id: str = GATEWAY_USER) -> FakeMessage:
    """A request on gw.control, published by ``user_id``."""
    if isinstance(body, ControlRequest):
        return FakeMessage(body.to_json(), message_id=body.request_id, user_id=user_id)
    return FakeMessage(body, message_id="r-raw", user_id=user_id)


def sent_by_another_replica(system: str, message_id: str) -> tuple[dict[str, Any], Entry]:
    """An envelope another replica of CICA's gateway sent for ``system``'s ``message_id``, and
    the archive entry with which it claimed the submission."""
    theirs = from_cica("From the other replica.")
    claim = Entry(
        kind="envelope.out",
        outcome="sent",
        occurred_at=datetime.now(UTC),
        payload=json.dumps(theirs).encode(),
        message_id=message_id,
        system=system,
        envelope_id=theirs["id"],
        type=theirs["type"],
        provider="CICA",
        recipient="SCO-RATS",
        dedup_key=submission_key(system, message_id),
    )
    return theirs, claim


async def stopped_while_unreachable(
    worker: OutboundWorker | ControlWorker, peer: FakePublisher
) -> None:
    """Run ``worker`` with its counterparty unreachable until it has tried three times, then
    stop it and wait until it has returned."""
    peer.unreachable = True
    running = asyncio.ensure_future(worker.run(burst=True))
    await wait_until(lambda: peer.attempts >= 3, timeout=5, interval=0.001)
    worker.stop()
    await asyncio.wait_for(running, 5)
