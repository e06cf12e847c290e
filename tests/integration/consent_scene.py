"""A consent scene for integration tests: CICA and SCO-RATS running with console accounts,
officers accredited, UNOCT's inbound queue watched; CICA shares, SCO-RATS passes it on."""

from __future__ import annotations

import asyncio
from typing import Any

from contracts import parse_frame
from gateway import topology
from gateway.cli import main
from gateway.config import load_config
from gateway.desk.accounts import OperatorAccounts, Role
from gateway.desk.operations import Desk
from gateway.service import Gateway
from tests.integration.conftest import Network
from tests.support.broker import Collector, Vhost
from tests.support.parties import Desk as BackOffice
from tests.support.parties import assignment, share, submission
from tests.support.waiting import wait_until

PASSWORD = "a long local test password"
# Console accounts of each Party: name, role, the officer id its consent decisions carry.
CONSOLE_USERS: dict[str, list[tuple[str, Role, str | None]]] = {
    "CICA": [("olga", "consent-officer", "lo-a"), ("vera", "viewer", None)],
    "SCO-RATS": [
        ("oleg", "operator", None),
        ("rhea", "operator", "lo-b2"),
        ("rolf", "operator", "lo-b"),
    ],
}


class ConsentScene:
    """CICA and SCO-RATS running with console accounts, officers accredited, UNOCT watched."""

    def __init__(self, network: Network, vhosts: dict[str, Vhost]) -> None:
        self.network = network
        self.vhosts = vhosts

    async def set_up(self) -> None:
        for party, users in CONSOLE_USERS.items():
            accounts = OperatorAccounts(
                load_config(self.network.configure(party)).console.operators_file
            )
            for name, role, officer in users:
                accounts.add(name, PASSWORD, {role}, officer)
        await self.vhosts["SCO-RATS"].purge([topology.QUARANTINE])
        self.at_unoct: Collector = await self.vhosts["UNOCT"].collect(
            topology.inbound_from("SCO-RATS")
        )
        self.at_b = await self.vhosts["SCO-RATS"].bind_collector(topology.DELIVER)
        self.status_b = await self.vhosts["SCO-RATS"].bind_collector(topology.STATUS)
        self.a = await self.network.start("CICA")
        self.b = await self.network.start("SCO-RATS")
        self.desk_a: BackOffice = await self.network.desk("CICA")
        self.desk_b: BackOffice = await self.network.desk("SCO-RATS")
        await self.desk_a.submit(submission("liaison.assignment", "SCO-RATS", assignment("lo-a")))
        await self.desk_b.submit(submission("liaison.assignment", "CICA", assignment("lo-b")))
        await self.desk_b.submit(submission("liaison.assignment", "UNOCT", assignment("lo-b")))
        await wait_until(lambda: len(self.at_b.messages) == 1, message="CICA's officer at SCO-RATS")

    def gateway(self, party: str) -> Gateway:
        gateway = self.network.parties[party].gateway
        assert gateway is not None
        return gateway

    def url(self, party: str, path: str) -> str:
        return f"http://127.0.0.1:{self.gateway(party).http.port}{path}"

    def desk(self, party: str) -> Desk:
        gateway = self.gateway(party)
        return Desk(gateway.config, gateway.archive)

    async def arrival_at_b(self, type_: str, count: int = 1) -> dict[str, Any]:
        def arrived() -> list[dict[str, Any]]:
            return [e for e in self.at_b.bodies() if e["type"] == type_]

        await wait_until(lambda: len(arrived()) >= count, message=f"{type_} at SCO-RATS")
        return arrived()[count - 1]

    async def b_sends_onward(self, original: str) -> tuple[str, dict[str, Any]]:
        onward = share("UNOCT", "Briefing built on CICA's report.", officer="lo-b")
        onward["derived_from"] = [original]
        message_id = await self.desk_b.submit(onward)

        def final() -> list[dict[str, Any]]:
            return [
                s
                for s in self.status_b.bodies()
                if s["submission_id"] == message_id and s["status"] in ("sent", "blocked")
            ]

        await wait_until(lambda: bool(final()), message=f"the status of {message_id}")
        return message_id, final()[0]

    def information_at_unoct(self) -> list[dict[str, Any]]:
        return [
            e
            for m in self.at_unoct.messages
            for e in parse_frame(m.body)
            if e["type"] != "liaison.assignment"
        ]

    async def quarantined_seq(self, message_id: str) -> int:
        waiting = [
            r for r in await self.desk("SCO-RATS").quarantined() if r.message_id == message_id
        ]
        assert waiting, f"{message_id} is not waiting in SCO-RATS's quarantine"
        return waiting[0].seq

    async def request_consent(self, original: str) -> str:
        """SCO-RATS asks CICA on the command line; the id of the request CICA sees pending."""
        before = {p.request_id for p in await self.desk("CICA").pending()}
        config = str(self.network.parties["SCO-RATS"].config_path)
        argv = ["consent", "request", "--config", config, "--provider", "CICA"]
        argv += ["--recipient", "UNOCT", "--envelope", original, "--officer", "lo-b"]
        argv += ["--purpose", "Joint briefing to UNOCT."]
        assert await asyncio.to_thread(main, argv) == 0

        async def new() -> list[str]:
            return [
                p.request_id
                for p in await self.desk("CICA").pending()
                if p.request_id not in before
            ]

        found: list[str] = []

        async def arrived() -> bool:
            found[:] = await new()
            return bool(found)

        await wait_until(arrived, message="the consent request in CICA's inbox")
        return found[0]


async def cica_shares(scene: ConsentScene) -> str:
    body = {
        "subject": {"en": "Courier routes", "ru": "Маршруты курьеров"},
        "text": {"en": "Courier routes observed this spring across the border regions."},
        "topics": ["counter-terrorism"],
        "attachments": [],
    }
    message = submission(
        "information.share", "SCO-RATS", body, officer="lo-a", correlation_id="case-7"
    )
    await scene.desk_a.submit(message)
    return str((await scene.arrival_at_b("information.share"))["id"])
