"""The console's chain verification: started by any operator, run in the background of the
gateway process, its page reloading itself until the verdict is in."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import aiohttp_jinja2
from aiohttp import web

from gateway.archive import ArchiveStore
from gateway.archive.verify import VerifyReport, verify_archive
from gateway.console.security import requires
from gateway.console.views import CONSOLE_KEY
from gateway.core.keys import Keyring
from gateway.desk.accounts import ROLES


@dataclass
class Verification:
    started_at: datetime
    head_seq: int
    started: float
    report: VerifyReport | None = None
    error: str | None = None
    task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self.report is None and self.error is None

    def elapsed_s(self) -> float:
        return time.monotonic() - self.started


# The latest verification, under one key: a second start while one runs joins it.
VERIFICATION_KEY: Final = web.AppKey("verification", dict[str, Verification])
_LATEST: Final = "latest"


@aiohttp_jinja2.template("verify.html")
async def verification_page(request: web.Request) -> dict[str, Any]:
    return {"verification": request.app[VERIFICATION_KEY].get(_LATEST)}


@requires(*ROLES)
async def start_verification(request: web.Request) -> web.StreamResponse:
    runs = request.app[VERIFICATION_KEY]
    current = runs.get(_LATEST)
    if current is None or not current.running:
        console = request.app[CONSOLE_KEY]
        head_seq, _ = await console.desk.archive.head()
        current = Verification(datetime.now(UTC), head_seq, time.monotonic())
        current.task = asyncio.create_task(_verify(current, console.desk.archive, console.keyring))
        runs[_LATEST] = current
    raise web.HTTPSeeOther("/archive/verify")


async def _verify(verification: Verification, store: ArchiveStore, keyring: Keyring | None) -> None:
    try:
        verification.report = await verify_archive(store, keyring)
    except Exception as exc:  # shown on the page: an unreadable archive is a verdict too
        verification.error = f"{type(exc).__name__}: {exc}"


async def _cancel(app: web.Application) -> None:
    current = app[VERIFICATION_KEY].get(_LATEST)
    if current is not None and current.task is not None and not current.task.done():
        current.task.cancel()
        await asyncio.gather(current.task, return_exceptions=True)


def add_verification_routes(app: web.Application) -> None:
    app[VERIFICATION_KEY] = {}
    app.on_cleanup.append(_cancel)
    app.router.add_get("/archive/verify", verification_page)
    app.router.add_post("/archive/verify", start_verification)
