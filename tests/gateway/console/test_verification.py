"""The chain verification page says how many records it verified and the head it reached."""

from __future__ import annotations

import re

from gateway.archive import ArchiveStore
from tests.gateway.archive.helpers import plain_entry
from tests.gateway.console.rig import Client, log_in, page_csrf
from tests.support.tampering import edit_payload
from tests.support.waiting import wait_until


async def _verdict_page(client: Client) -> str:
    await log_in(client, "vera")
    token = await page_csrf(client, "/archive/verify")
    started = await client.post("/archive/verify", data={"csrf": token}, allow_redirects=False)
    assert started.status == 303
    pages: list[str] = []

    async def verdict() -> bool:
        pages.append(await (await client.get("/archive/verify")).text())
        return 'id="verdict"' in pages[-1]

    await wait_until(verdict, timeout=10, message="the verification's verdict")
    return pages[-1]


def _text(html: str, ident: str) -> str:
    match = re.search(rf'id="{ident}"[^>]*>(.*?)</(?:p|dd)>', html, re.S)
    assert match is not None, html
    return re.sub(r"<[^>]+>", "", match.group(1))


async def test_an_intact_archive_shows_the_records_verified_and_the_head(
    client: Client, archive: ArchiveStore
) -> None:
    await archive.append([plain_entry(n) for n in range(1, 8)])
    head_seq, head_hash = await archive.head()

    html = await _verdict_page(client)

    assert _text(html, "verdict") == f"ok: 7 records verified, head at seq {head_seq}"
    assert _text(html, "records") == "7"
    assert _text(html, "head") == f"seq {head_seq}, hash {head_hash}"


async def test_a_broken_chain_shows_how_many_records_were_verified_before_it(
    client: Client, archive: ArchiveStore
) -> None:
    await archive.append([plain_entry(n) for n in range(1, 6)])
    await edit_payload(archive, 3, b'{"n": 33}')

    html = await _verdict_page(client)

    assert _text(html, "verdict").startswith("BROKEN at seq 3")
    assert _text(html, "records") == "2 (before the broken one)"
    assert _text(html, "head").startswith("seq 2, hash ")
