"""The operator console in a real browser (Debian's chromium, driven by Playwright) against
CICA's and SCO-RATS's running gateways on the real broker, UNOCT being the third party.

A consent officer of CICA answers SCO-RATS's requests in the console; an operator of SCO-RATS
releases and discards quarantined submissions in it. A screenshot of each main page is kept
under ``.artifacts/console/`` (``GW_ARTIFACTS`` moves it).
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, BrowserContext, Page, async_playwright, expect

from contracts import parse_frame
from gateway import topology
from gateway.archive import SearchFilter
from gateway.cli import main
from gateway.config import load_config
from gateway.desk.accounts import OperatorAccounts
from gateway.desk.operations import Desk
from gateway.service import Gateway
from tests.integration.conftest import Network
from tests.support.broker import Collector, Vhost
from tests.support.parties import Desk as BackOffice
from tests.support.parties import assignment, share, submission
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.broker, pytest.mark.slow]

CHROMIUM = os.environ.get("GW_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(os.environ.get("GW_ARTIFACTS", Path(__file__).parents[2] / ".artifacts"))
PASSWORD = "a long local test password"
ANSWER_TIMEOUT_MS = 60_000


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    if shutil.which(CHROMIUM) is None:
        message = f"no chromium at {CHROMIUM} (deploy/local/install.sh installs it)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        await launched.close()


class Consoles:
    """Both gateways running, officers accredited, one browser context per console user."""

    def __init__(self, network: Network, vhosts: dict[str, Vhost], browser: Browser) -> None:
        self.network = network
        self.vhosts = vhosts
        self.browser = browser
        self.contexts: list[BrowserContext] = []

    async def set_up(self) -> None:
        for party, users in {
            "CICA": [("olga", "consent-officer", "lo-a"), ("vera", "viewer", None)],
            "SCO-RATS": [("oleg", "operator", None)],
        }.items():
            accounts = OperatorAccounts(
                load_config(self.network.configure(party)).console.operators_file
            )
            for name, role, officer in users:
                accounts.add(name, PASSWORD, {role}, officer)  # type: ignore[arg-type]
        await self.vhosts["SCO-RATS"].purge([topology.QUARANTINE])
        self.at_unoct: Collector = await self.vhosts["UNOCT"].collect(topology.INBOUND)
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

    async def log_in(self, party: str, name: str) -> Page:
        context = await self.browser.new_context()
        self.contexts.append(context)
        page = await context.new_page()
        page.set_default_timeout(ANSWER_TIMEOUT_MS)
        await page.goto(self.url(party, "/"))
        await expect(page).to_have_url(self.url(party, "/login"))
        await page.fill("input[name=name]", name)
        await page.fill("input[name=password]", PASSWORD)
        await page.click("button[type=submit]")
        await expect(page).to_have_url(self.url(party, "/"))
        return page

    async def close(self) -> None:
        for context in self.contexts:
            await context.close()

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

    async def request_consent(self, original: str, network: Network) -> str:
        """SCO-RATS asks CICA on the command line; the id of the request CICA sees pending."""
        before = {p.request_id for p in await self.desk("CICA").pending()}
        config = str(network.parties["SCO-RATS"].config_path)
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


async def screenshot(page: Page, name: str) -> None:
    directory = ARTIFACTS / "console"
    directory.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(directory / f"{name}.png"), full_page=True)


@pytest.fixture
async def consoles(
    network: Network, vhosts: dict[str, Vhost], browser: Browser
) -> AsyncIterator[Consoles]:
    scene = Consoles(network, vhosts, browser)
    await scene.set_up()
    yield scene
    await scene.close()


async def cica_shares(scene: Consoles) -> str:
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


async def answer_in_inbox(page: Page, scene: Consoles, request_id: str, form: str) -> None:
    await page.goto(scene.url("CICA", "/consent"))
    request = page.locator(f"#request-{request_id}")
    await expect(request).to_contain_text("SCO-RATS asks to pass it to UNOCT")
    await expect(request).to_contain_text("Маршруты курьеров")
    await expect(request).to_contain_text("Joint briefing to UNOCT.")
    if form == "deny":
        await request.locator("form.deny input[name=reason]").fill("Not for third parties yet.")
    else:
        await request.locator("form.grant input[name=conditions]").fill("Briefing only.")
    await request.locator(f"form.{form} button").click()
    await expect(page.locator("#flash")).to_contain_text("sent as envelope")


async def release_in_console(page: Page, scene: Consoles, seq: int, outcome: str) -> None:
    await page.goto(scene.url("SCO-RATS", f"/quarantine/{seq}"))
    await page.click("#release")
    await expect(page.locator("#flash")).to_contain_text(outcome)


async def test_an_officer_answers_in_the_browser_and_an_operator_clears_the_quarantine(
    consoles: Consoles, network: Network
) -> None:
    scene = consoles
    original = await cica_shares(scene)
    held_id, status = await scene.b_sends_onward(original)
    assert status["status"] == "blocked"
    held = await scene.quarantined_seq(held_id)

    officer = await scene.log_in("CICA", "olga")
    operator = await scene.log_in("SCO-RATS", "oleg")

    # A deny keeps the submission in quarantine.
    first = await scene.request_consent(original, network)
    await officer.goto(scene.url("CICA", "/"))
    await expect(officer.locator("#pending")).to_have_text("1")
    await screenshot(officer, "overview")
    await officer.goto(scene.url("CICA", "/consent"))
    await screenshot(officer, "consent-inbox")
    await answer_in_inbox(officer, scene, first, "deny")
    denial = await scene.arrival_at_b("consent.decision")
    assert denial["body"]["decision"] == "denied"
    assert denial["originator"]["officer"] == "lo-a"
    await release_in_console(operator, scene, held, "blocked: consent.missing")
    assert scene.information_at_unoct() == []

    # A grant lets the re-checked release reach the third party.
    second = await scene.request_consent(original, network)
    await answer_in_inbox(officer, scene, second, "grant")
    grant = await scene.arrival_at_b("consent.decision", 2)
    assert grant["body"]["decision"] == "granted"
    assert grant["body"]["scope"] == {"envelope_ids": [original]}
    await screenshot(operator, "quarantine-item")
    await release_in_console(operator, scene, held, "released")
    await wait_until(lambda: len(scene.information_at_unoct()) == 1, message="release at UNOCT")
    assert scene.information_at_unoct()[0]["derived_from"] == [original]

    # A revoke blocks the next send.
    await officer.goto(scene.url("CICA", "/consent/register"))
    row = officer.locator(f"#decision-{grant['id']}")
    await expect(row).to_contain_text("live")
    await screenshot(officer, "consent-register")
    await row.locator("input[name=reason]").fill("The briefing was cancelled.")
    await row.locator("button").click()
    await expect(officer.locator("#flash")).to_contain_text("sent as envelope")
    await scene.arrival_at_b("consent.revocation")
    blocked_id, status = await scene.b_sends_onward(original)
    assert status["status"] == "blocked", status

    # A discard empties the item, from the console and from gw.quarantine.
    blocked = await scene.quarantined_seq(blocked_id)
    await operator.goto(scene.url("SCO-RATS", f"/quarantine/{blocked}"))
    await operator.fill("input[name=reason]", "Superseded by a new briefing.")
    await operator.click("#discard")
    await expect(operator.locator("#flash")).to_contain_text("discarded")
    await expect(operator.locator("#empty")).to_be_visible()
    await screenshot(operator, "quarantine")
    assert await scene.vhosts["SCO-RATS"].depth(topology.QUARANTINE) == 0
    assert len(scene.information_at_unoct()) == 1

    await officer.goto(scene.url("CICA", "/audit"))
    audit = officer.locator("#audit")
    for action in ("consent.deny", "consent.grant", "consent.revoke"):
        await expect(audit).to_contain_text(action)
    await expect(audit).to_contain_text("olga")
    await screenshot(officer, "audit")


async def test_a_viewer_and_a_forged_form_are_refused_and_the_archive_shows_the_receipt(
    consoles: Consoles, network: Network
) -> None:
    scene = consoles
    original = await cica_shares(scene)
    request_id = await scene.request_consent(original, network)
    grant_url = scene.url("CICA", f"/consent/{request_id}/grant")

    viewer = await scene.log_in("CICA", "vera")
    await viewer.goto(scene.url("CICA", "/consent"))
    await expect(viewer.locator(f"#request-{request_id}")).to_be_visible()
    assert await viewer.locator("form.grant").count() == 0
    token = await viewer.locator("input[name=csrf]").first.get_attribute("value")
    refused = await viewer.request.post(grant_url, form={"csrf": token or "", "officer": "lo-a"})
    assert refused.status == 403

    officer = await scene.log_in("CICA", "olga")
    forged = await officer.request.post(grant_url, form={"officer": "lo-a"})
    assert forged.status == 403
    assert [p.request_id for p in await scene.desk("CICA").pending()] == [request_id]

    async def receipted() -> bool:
        receipts = await scene.gateway("CICA").archive.search(SearchFilter(kinds=["receipt.in"]))
        return any(original.encode() in r.payload for r in receipts)

    await wait_until(receipted, message="SCO-RATS's receipt archived at CICA")
    await officer.goto(scene.url("CICA", "/archive"))
    await officer.fill("#search input[name=id]", original)
    await officer.click("#search button")
    results = officer.locator("#results")
    await expect(results).to_contain_text("envelope.out")
    await screenshot(officer, "archive-search")
    await results.locator("a").first.click()
    await expect(officer.locator("#receipts")).to_contain_text("receipt.in")
    await screenshot(officer, "archive-record")
