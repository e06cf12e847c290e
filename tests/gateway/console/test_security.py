"""The console's guards over aiohttp's test client: login, roles, CSRF, headers, lock-out.

No broker: every request here is refused, or answered from the archive, before anything would
be sent to the gateway.
"""

from __future__ import annotations

import stat
from pathlib import Path

from gateway.archive import ArchiveStore, SearchFilter
from gateway.console.security import LoginThrottle, session_key
from gateway.desk.actions import AUDIT_KIND
from tests.gateway.console.rig import PASSWORD, REQUEST_ID, Client, log_in, page_csrf


async def test_an_unauthenticated_request_goes_to_the_login_page(client: Client) -> None:
    response = await client.get("/consent", allow_redirects=False)
    assert response.status == 302
    assert response.headers["Location"] == "/login"
    post = await client.post("/quarantine/1/discard", data={"reason": "x"})
    assert post.status == 403


async def test_the_probes_stay_open_and_show_nothing_of_the_console(client: Client) -> None:
    for path in ("/metrics", "/healthz", "/readyz"):
        response = await client.get(path)
        assert response.status == 200, path
        assert "Set-Cookie" not in response.headers
        assert "<html" not in await response.text()


async def test_a_login_sets_a_hardened_cookie_and_pages_carry_security_headers(
    client: Client,
) -> None:
    assert await log_in(client, "vera") == 303
    cookie = next(c for c in client.session.cookie_jar if c.key == "gw_console")
    assert cookie["httponly"]
    assert cookie["samesite"] == "Strict"
    response = await client.get("/")
    assert response.status == 200
    assert response.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "vera" in await response.text()


async def test_repeated_failures_lock_the_name_out_even_for_the_right_password(
    client: Client,
) -> None:
    for _ in range(5):
        assert await log_in(client, "olga", "wrong password!") == 401
    assert await log_in(client, "olga") == 429


async def test_a_login_form_without_its_csrf_token_is_refused(client: Client) -> None:
    response = await client.post("/login", data={"name": "olga", "password": PASSWORD})
    assert response.status == 403


async def test_a_viewer_cannot_grant_and_nothing_is_archived(
    client: Client, archive: ArchiveStore
) -> None:
    await log_in(client, "vera")
    token = await page_csrf(client, "/consent")
    response = await client.post(
        f"/consent/{REQUEST_ID}/grant", data={"csrf": token, "officer": "lo-a"}
    )
    assert response.status == 403
    assert await archive.search(SearchFilter(kinds=[AUDIT_KIND])) == []


async def test_an_operator_cannot_grant_and_an_officer_cannot_discard(client: Client) -> None:
    await log_in(client, "oleg")
    token = await page_csrf(client)
    response = await client.post(f"/consent/{REQUEST_ID}/deny", data={"csrf": token})
    assert response.status == 403
    await client.post("/logout", data={"csrf": token})
    await log_in(client, "olga")
    token = await page_csrf(client)
    response = await client.post("/quarantine/1/discard", data={"csrf": token, "reason": "x"})
    assert response.status == 403


async def test_a_form_without_its_csrf_token_is_refused(client: Client) -> None:
    await log_in(client, "olga")
    response = await client.post(f"/consent/{REQUEST_ID}/grant", data={"officer": "lo-a"})
    assert response.status == 403
    response = await client.post(
        f"/consent/{REQUEST_ID}/grant", data={"csrf": "forged", "officer": "lo-a"}
    )
    assert response.status == 403


async def test_an_officers_answer_to_an_unknown_request_is_refused_and_audited(
    client: Client, archive: ArchiveStore
) -> None:
    await log_in(client, "olga")
    token = await page_csrf(client, "/consent")
    form = {"csrf": token, "reason": "no"}
    response = await client.post(f"/consent/{REQUEST_ID}/deny", data=form)
    assert response.status == 200  # followed the redirect back to the inbox
    assert "no consent request" in await response.text()
    [action] = await archive.search(SearchFilter(kinds=[AUDIT_KIND]))
    assert (action.outcome, action.system, action.reason) == ("consent.deny", "olga", "refused")
    audit = await client.get("/audit")
    assert "consent.deny" in await audit.text()


async def test_after_logout_the_session_is_gone(client: Client) -> None:
    await log_in(client, "vera")
    token = await page_csrf(client)
    response = await client.post("/logout", data={"csrf": token}, allow_redirects=False)
    assert response.status == 303
    response = await client.get("/", allow_redirects=False)
    assert response.status == 302


async def test_only_an_operator_runs_a_replay_and_a_bad_selection_is_refused(
    client: Client,
) -> None:
    await log_in(client, "vera")
    token = await page_csrf(client, "/replay")
    form = {"csrf": token, "target": "deliver", "ids": "1"}
    assert (await client.post("/replay/run", data=form)).status == 403
    await client.post("/logout", data={"csrf": token})
    await log_in(client, "oleg")
    token = await page_csrf(client, "/replay")
    bad = {"csrf": token, "target": "elsewhere", "ids": "1"}
    response = await client.post("/replay/run", data=bad)
    assert response.status == 400
    assert "target must be one of" in await response.text()
    nothing = {"csrf": token, "target": "deliver"}
    assert (await client.post("/replay/run", data=nothing)).status == 400


def test_the_session_key_is_made_once_and_kept_private(tmp_path: Path) -> None:
    path = tmp_path / "console-session.key"
    key = session_key(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert session_key(path) == key
    assert len(key) == 44  # a Fernet key: 32 bytes, url-safe base64


def test_the_throttle_locks_at_the_limit_per_key_and_a_success_clears_it() -> None:
    throttle = LoginThrottle(max_failures=2, lockout_s=300)
    keys = ["name:olga", "addr:127.0.0.1"]
    throttle.failed(keys)
    assert not throttle.locked(keys)
    throttle.failed(keys)
    assert throttle.locked(keys)
    assert not throttle.locked(["name:vera"])
    throttle.succeeded(keys)
    assert not throttle.locked(keys)
