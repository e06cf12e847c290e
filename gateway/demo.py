"""The demonstration exchange of the main job: both local Parties' gateways and their desks.

CICA's case desk accredits an officer and shares information with SCO-RATS; SCO-RATS's analysis
desk receives it and answers; SCO-RATS then tries to pass CICA's information on to the third
party and the gateway stops it. Each step prints what arrived where.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from typing import Any

import aio_pika
from aio_pika.abc import AbstractIncomingMessage

from contracts.amqp import DELIVER_EXCHANGE, deliver_routing_key
from contracts.registry import submittable_types
from gateway.config import GatewayConfig
from gateway.service import Gateway, until_signalled
from gateway.submission_client import SubmissionClient

DESKS = {
    "CICA": "amqp://case-desk:case-desk@127.0.0.1:5672/party-a",
    "SCO-RATS": "amqp://analysis-desk:analysis-desk@127.0.0.1:5672/party-b",
}
INBOX = {"CICA": "bo.case-desk.inbox", "SCO-RATS": "bo.analysis-desk.inbox"}
AUTHORIZATION = {"reference": "MS-CONSENT-2017-09-20"}


def say(text: str) -> None:
    print(text, flush=True)


def assignment(officer: str, name: str) -> dict[str, Any]:
    return {
        "action": "assign",
        "officer": {
            "id": officer,
            "name": name,
            "role": "liaison officer",
            "contact": f"{officer}@liaison.example",
        },
        "valid_from": "2026-01-01",
        "valid_to": None,
        "authorization": AUTHORIZATION,
    }


class Inbox:
    """A back-office queue bound to its Party's gw.deliver."""

    def __init__(self) -> None:
        self.arrived: asyncio.Queue[AbstractIncomingMessage] = asyncio.Queue()

    async def open(self, url: str, name: str) -> aio_pika.abc.AbstractConnection:
        connection = await aio_pika.connect(url)
        channel = await connection.channel()
        queue = await channel.declare_queue(name, durable=True)
        # One binding per type: the desk's topic permissions refuse a catch-all '#'.
        for message_type in submittable_types():
            await queue.bind(DELIVER_EXCHANGE, routing_key=deliver_routing_key("*", message_type))
        await queue.purge()
        await queue.consume(self._arrive)
        return connection

    async def _arrive(self, message: AbstractIncomingMessage) -> None:
        await message.ack()
        self.arrived.put_nowait(message)

    async def next(self, type_: str, timeout: float = 15.0) -> dict[str, Any]:
        while True:
            message = await asyncio.wait_for(self.arrived.get(), timeout)
            envelope: dict[str, Any] = json.loads(message.body)
            if envelope["type"] == type_:
                return envelope


async def _accredit(clients: dict[str, SubmissionClient], inboxes: dict[str, Inbox]) -> None:
    say("\n== 1. Each Party accredits its liaison officer (Protocol i)")
    for party, partner, officer, name in (
        ("CICA", "SCO-RATS", "lo-0042", "A. Officer"),
        ("SCO-RATS", "CICA", "lo-0117", "B. Officer"),
    ):
        client = clients[party]
        sub = client.build("liaison.assignment", partner, assignment(officer, name))
        await client.submit(sub)
        arrived = await inboxes[partner].next("liaison.assignment")
        say(f"   {party} -> {partner}: officer {arrived['body']['officer']['id']} is on the roster")


async def _share(case_desk: SubmissionClient, inbox: Inbox) -> tuple[dict[str, Any], str]:
    """CICA's share as SCO-RATS received it, and the status CICA's case desk then sees."""
    say("\n== 2. CICA shares information with SCO-RATS (Protocol ii)")
    share = case_desk.build(
        "information.share",
        "SCO-RATS",
        {
            "subject": {"en": "Travel routes", "ru": "Маршруты передвижения"},
            "text": {"en": "Observed travel routes of a listed group across the region."},
            "topics": ["travel", "financing"],
            "attachments": [],
        },
        officer="lo-0042",
        correlation_id="case-2026-001",
    )
    share_id = await case_desk.submit(share)
    envelope = await inbox.next("information.share")
    say(f"   arrived at SCO-RATS: envelope {envelope['id']}")
    say(f"   originator {json.dumps(envelope['originator'])}")
    say(f"   signed with {envelope['signature']['key_id']}")
    status = await case_desk.wait_status(share_id, timeout=15)
    say(f"   CICA's case desk sees status '{status.status}' (signed receipt from SCO-RATS)")
    return envelope, status.status


async def _answer(analysis_desk: SubmissionClient, inbox: Inbox, share_id: str) -> None:
    say("\n== 3. SCO-RATS answers in the same thread")
    reply = analysis_desk.build(
        "information.share",
        "CICA",
        {
            "subject": {"en": "Re: travel routes"},
            "text": {"en": "Two of the routes match our own observations."},
            "topics": ["travel"],
            "attachments": [],
        },
        officer="lo-0117",
        correlation_id="case-2026-001",
        derived_from=[share_id],
    )
    await analysis_desk.submit(reply)
    answer = await inbox.next("information.share")
    say(f"   arrived at CICA: {answer['body']['text']['en']!r}")


async def _pass_on(analysis_desk: SubmissionClient, share_id: str) -> str:
    """The status of SCO-RATS's attempt to pass CICA's share to UNOCT."""
    say("\n== 4. SCO-RATS tries to pass CICA's information to a third party (UNOCT)")
    onward = analysis_desk.build(
        "information.share",
        "UNOCT",
        {
            "subject": {"en": "FYI"},
            "text": {"en": "Forwarding a partner's report."},
            "topics": ["travel"],
            "attachments": [],
        },
        officer="lo-0117",
        derived_from=[share_id],
    )
    onward_id = await analysis_desk.submit(onward)
    blocked = await analysis_desk.wait_status(onward_id, timeout=15)
    say(f"   status '{blocked.status}', reason {blocked.reason}: {blocked.detail}")
    return blocked.status


async def exchange(clients: dict[str, SubmissionClient], inboxes: dict[str, Inbox]) -> bool:
    """The demonstration: True when the share was delivered and passing it on was blocked."""
    case_desk, analysis_desk = clients["CICA"], clients["SCO-RATS"]
    await _accredit(clients, inboxes)
    envelope, shared = await _share(case_desk, inboxes["SCO-RATS"])
    await _answer(analysis_desk, inboxes["CICA"], envelope["id"])
    passed_on = await _pass_on(analysis_desk, envelope["id"])
    return shared == "delivered" and passed_on == "blocked"


async def run_demo(configs: Sequence[GatewayConfig], keep_running: bool) -> int:
    gateways = [Gateway(config) for config in configs]
    for gateway in gateways:
        await gateway.start()
        say(
            f"gateway {gateway.config.party} running; metrics on "
            f"http://{gateway.config.http.host}:{gateway.http.port}/metrics"
        )
    inboxes = {party: Inbox() for party in DESKS}
    connections = [await inboxes[p].open(DESKS[p], INBOX[p]) for p in DESKS]
    clients = {party: SubmissionClient() for party in DESKS}
    try:
        for party, client in clients.items():
            await client.connect(DESKS[party])
        ok = await exchange(clients, inboxes)
        say("\nThe demonstration exchange " + ("succeeded." if ok else "FAILED."))
        if keep_running and ok:
            say("Gateways keep running; Ctrl-C stops them.")
            await until_signalled()
        return 0 if ok else 1
    finally:
        for client in clients.values():
            await client.close()
        for connection in connections:
            await connection.close()
        for gateway in gateways:
            await gateway.stop()
