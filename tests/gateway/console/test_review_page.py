"""The "Held for review" page: the CLI listing's information, and who may decide.

No broker: every decision here is refused before a request would go to the gateway (the
browser test releases and refuses through a running one).
"""

from __future__ import annotations

import json
import re
from html import unescape

from gateway.archive import ArchiveStore, Entry, SearchFilter
from gateway.core.review import Resemblance, ReviewNeed, held_headers
from gateway.desk.actions import AUDIT_KIND
from tests.gateway.archive.helpers import T0
from tests.gateway.console.rig import Client, csrf_of, log_in

RESEMBLED = Resemblance("0196a1b2-0000-7000-8000-00000000beef", "SCO-RATS", 0.34)


def _held(n: int) -> Entry:
    need = ReviewNeed("review.resemblance", (RESEMBLED,), "resembles a received envelope")
    return Entry(
        kind="submission",
        outcome="held",
        occurred_at=T0,
        payload=json.dumps({"n": n}).encode(),
        message_id=f"m-{n}",
        system="case-desk",
        type="information.share",
        recipient="UNOCT",
        reason=need.reason,
        detail=need.detail,
        headers=held_headers(need, "lo-a"),
    )


async def _hold_two_settle_one(archive: ArchiveStore) -> tuple[int, int]:
    first, second = await archive.append([_held(1), _held(2)])
    settled = Entry(
        kind="review", outcome="released", occurred_at=T0, payload=b"{}", refers_to=first.record.seq
    )
    await archive.append([settled])
    return first.record.seq, second.record.seq


def _cells(html: str, seq: int) -> list[str]:
    row = re.search(rf'<tr class="item" id="held-{seq}">(.*?)</tr>', html, re.S)
    assert row is not None, html
    cells = re.findall(r"<td[^>]*>(.*?)</td>", row.group(1), re.S)
    return [re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", c)).strip() for c in cells]


async def _page_as(client: Client, name: str) -> str:
    await log_in(client, name)
    return await (await client.get("/review")).text()


async def test_the_page_lists_what_waits_with_the_cli_listings_columns(
    client: Client, archive: ArchiveStore
) -> None:
    settled, waiting = await _hold_two_settle_one(archive)

    html = await _page_as(client, "vera")

    assert f'id="held-{settled}"' not in html
    cells = _cells(html, waiting)
    assert cells[0] == str(waiting)
    assert cells[2:] == [
        "information.share",
        "UNOCT",
        "lo-a",
        "review.resemblance",
        "0.34",
        f"SCO-RATS:{RESEMBLED.envelope_id}",
    ]
    assert "1 held" in html
    assert 'href="/review"' in html  # in the menu of every page


async def test_a_viewer_sees_no_forms_and_may_not_decide(
    client: Client, archive: ArchiveStore
) -> None:
    _, waiting = await _hold_two_settle_one(archive)
    html = await _page_as(client, "vera")
    assert "/release" not in html
    response = await client.post(
        f"/review/{waiting}/release", data={"csrf": csrf_of(html)}, allow_redirects=False
    )
    assert response.status == 403
    assert await archive.search(SearchFilter(kinds=[AUDIT_KIND])) == []


async def _decide(client: Client, name: str, path: str, reason: str = "") -> str:
    token = csrf_of(await _page_as(client, name))
    response = await client.post(path, data={"csrf": token, "reason": reason})
    assert response.status == 200
    assert str(response.url).endswith("/review")
    flash = re.search(r'id="flash">(.*?)</p>', await response.text(), re.S)
    assert flash is not None
    return unescape(re.sub(r"<[^>]+>", "", flash.group(1)))


async def test_an_operator_without_an_officer_is_refused_and_the_attempt_audited(
    client: Client, archive: ArchiveStore
) -> None:
    _, waiting = await _hold_two_settle_one(archive)

    flash = await _decide(client, "oleg", f"/review/{waiting}/release")

    assert flash == "refused: account oleg names no liaison officer to decide as"
    (audit,) = await archive.search(SearchFilter(kinds=[AUDIT_KIND]))
    assert (audit.outcome, audit.system, audit.refers_to) == ("review.release", "oleg", waiting)


async def test_a_refusal_needs_a_reason_and_an_unknown_seq_is_named(
    client: Client, archive: ArchiveStore
) -> None:
    _, waiting = await _hold_two_settle_one(archive)

    assert await _decide(client, "rhea", f"/review/{waiting}/refuse") == (
        "refused: a refusal needs a reason (it is archived)"
    )
    assert await _decide(client, "rhea", "/review/999/release") == (
        "refused: no held submission '999'"
    )
    audits = await archive.search(SearchFilter(kinds=[AUDIT_KIND]))
    assert [(a.outcome, a.system) for a in audits] == [
        ("review.refuse", "rhea"),
        ("review.release", "rhea"),
    ]
