"""The operator console in a real browser (Debian's chromium, driven by Playwright) against
CICA's and SCO-RATS's running gateways on the real broker, UNOCT being the third party.

A consent officer of CICA answers SCO-RATS's requests in the console; an operator of SCO-RATS
releases and discards quarantined submissions in it. A screenshot of each main page is kept
under ``.artifacts/console/`` (``GW_ARTIFACTS`` moves it).
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, BrowserContext, Page, async_playwright, expect

from gateway import topology
from gateway.archive import SearchFilter
from gateway.review_ops import list_held
from tests.gateway.core.test_review import PROVIDED, WEAK
from tests.integration.conftest import Network
from tests.integration.consent_scene import PASSWORD, ConsentScene, cica_shares
from tests.support.broker import Vhost
from tests.support.parties import assignment, share, submission
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.broker, pytest.mark.slow]

CHROMIUM = os.environ.get("GW_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(os.environ.get("GW_ARTIFACTS", Path(__file__).parents[2] / ".artifacts"))
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


class Consoles(ConsentScene):
    """The consent scene with one browser context per console user."""

    def __init__(self, network: Network, vhosts: dict[str, Vhost], browser: Browser) -> None:
        super().__init__(network, vhosts)
        self.browser = browser
        self.contexts: list[BrowserContext] = []

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


async def answer_in_inbox(page: Page, scene: ConsentScene, request_id: str, form: str) -> None:
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


async def release_in_console(page: Page, scene: ConsentScene, seq: int, outcome: str) -> None:
    await page.goto(scene.url("SCO-RATS", f"/quarantine/{seq}"))
    await expect(page.locator("#missing")).to_contain_text("CICA")
    await page.click("#release")
    await expect(page.locator("#flash")).to_contain_text(outcome)


async def test_an_officer_answers_in_the_browser_and_an_operator_clears_the_quarantine(
    consoles: Consoles,
) -> None:
    scene = consoles
    original = await cica_shares(scene)
    held_id, status = await scene.b_sends_onward(original)
    assert status["status"] == "blocked"
    held = await scene.quarantined_seq(held_id)

    officer = await scene.log_in("CICA", "olga")
    operator = await scene.log_in("SCO-RATS", "oleg")

    # A deny keeps the submission in quarantine.
    first = await scene.request_consent(original)
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
    second = await scene.request_consent(original)
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
    consoles: Consoles,
) -> None:
    scene = consoles
    original = await cica_shares(scene)
    request_id = await scene.request_consent(original)
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

    await officer.goto(scene.url("CICA", "/archive"))
    await officer.click("text=Verify the whole chain")
    await officer.click("#verify")
    await expect(officer.locator("#verdict")).to_contain_text("ok: ")
    await expect(officer.locator("#records")).to_have_text(re.compile(r"^[1-9][0-9]*$"))
    await expect(officer.locator("#head")).to_contain_text("seq ")
    await expect(officer.locator("#signatures")).to_have_text(re.compile(r"^[1-9][0-9]*$"))
    await screenshot(officer, "archive-verify")


async def test_an_operator_previews_and_runs_a_replay_with_its_progress(
    consoles: Consoles,
) -> None:
    scene = consoles
    original = await cica_shares(scene)
    operator = await scene.log_in("SCO-RATS", "oleg")
    await operator.goto(scene.url("SCO-RATS", "/replay"))
    await operator.select_option("select[name=target]", "deliver")
    await operator.fill("#select input[name=ids]", original)
    await operator.click("#preview")
    await expect(operator.locator("#plan")).to_contain_text("would replay to deliver")
    await expect(operator.locator("#plan")).to_contain_text(original)
    await screenshot(operator, "replay-preview")
    await operator.fill("input[name=rate]", "5")
    await operator.click("#run")
    await expect(operator.locator("#summary")).to_contain_text("replayed 1")
    await screenshot(operator, "replay-run")
    replayed = await scene.arrival_at_b("information.share", 2)
    assert replayed["id"] == original
    audit = await scene.desk("SCO-RATS").audit()
    assert [(a.outcome, a.system, a.reason) for a in audit] == [("replay.run", "oleg", "replayed")]


async def held_at_b(scene: Consoles, text: str) -> int:
    """SCO-RATS's officer lo-b sends ``text`` to UNOCT; its seq once it is held for review."""
    message_id = await scene.desk_b.submit(share("UNOCT", text, officer="lo-b"))

    def statuses() -> list[str]:
        return [s["status"] for s in scene.status_b.bodies() if s["submission_id"] == message_id]

    await wait_until(lambda: bool(statuses()), message=f"the status of {message_id}")
    assert statuses() == ["held"]
    held = await list_held(scene.gateway("SCO-RATS").archive)
    return next(h.record.seq for h in held if h.record.message_id == message_id)


async def test_an_officer_releases_and_refuses_held_submissions_in_the_browser(
    consoles: Consoles,
) -> None:
    scene = consoles
    lo_b2 = await scene.desk_b.submit(submission("liaison.assignment", "CICA", assignment("lo-b2")))
    await wait_until(
        lambda: any(s["submission_id"] == lo_b2 for s in scene.status_b.bodies()),
        message="lo-b2 on SCO-RATS's roster",
    )
    await scene.desk_a.submit(share("SCO-RATS", PROVIDED, officer="lo-a"))
    provided = (await scene.arrival_at_b("information.share"))["id"]
    released, refused = await held_at_b(scene, WEAK), await held_at_b(scene, WEAK + " Soon.")

    viewer = await scene.log_in("SCO-RATS", "oleg")  # an operator naming no officer
    await viewer.goto(scene.url("SCO-RATS", "/review"))
    await expect(viewer.locator("#decider")).to_contain_text("this account only sees")
    assert await viewer.locator("form.release").count() == 0

    same = await scene.log_in("SCO-RATS", "rolf")  # lo-b, who sent them: four eyes
    await same.goto(scene.url("SCO-RATS", "/review"))
    await same.locator(f"#held-{released} form.release button").click()
    await expect(same.locator("#flash")).to_contain_text("review.same_officer")

    reviewer = await scene.log_in("SCO-RATS", "rhea")
    await reviewer.goto(scene.url("SCO-RATS", "/review"))
    row = reviewer.locator(f"#held-{released}")
    for shown in ("information.share", "UNOCT", "lo-b", "review.resemblance", provided):
        await expect(row).to_contain_text(shown)
    await expect(row.locator("td").nth(6)).to_have_text(re.compile(r"^0\.[0-4][0-9]$"))
    await expect(reviewer.locator("#decider")).to_contain_text("lo-b2")
    await screenshot(reviewer, "review")

    await row.locator("form.release button").click()
    await expect(reviewer.locator("#flash")).to_contain_text("released by lo-b2")
    await wait_until(lambda: len(scene.information_at_unoct()) == 1, message="release at UNOCT")
    assert scene.information_at_unoct()[0]["body"]["text"]["en"] == WEAK

    other = reviewer.locator(f"#held-{refused}")
    await other.locator("input[name=reason]").fill("It repeats CICA's report.")
    await other.locator("form.refuse button").click()
    await expect(reviewer.locator("#flash")).to_contain_text(f"seq {refused} refused by lo-b2")
    await expect(reviewer.locator("#empty")).to_be_visible()

    steps = await scene.gateway("SCO-RATS").archive.search(SearchFilter(kinds=["review"]))
    assert [(r.refers_to, r.outcome, r.reason) for r in steps] == [
        (released, "rejected", "review.same_officer"),
        (released, "released", None),
        (refused, "refused", "review.refused"),
    ]
    audit = await scene.desk("SCO-RATS").audit()  # newest first
    assert [(a.outcome, a.system, a.reason) for a in audit] == [
        ("review.refuse", "rhea", "refused"),
        ("review.release", "rhea", "released"),
        ("review.release", "rolf", "rejected"),
    ]
    assert len(scene.information_at_unoct()) == 1
