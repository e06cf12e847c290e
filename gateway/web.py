"""The gateway's HTTP side: ``/metrics``, ``/healthz`` and ``/readyz`` on one aiohttp server
(and the operator console, when the gateway adds it)."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Callable
from typing import Final

import structlog
from aiohttp import web
from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4, generate_latest

from gateway.metrics import GatewayMetrics

Readiness = Callable[[], Awaitable[dict[str, bool]]]
Extension = Callable[[web.Application], None]

_log = structlog.get_logger(__name__)

# A readiness probe that cannot answer in time is itself a sign of trouble: report 503.
DEFAULT_READINESS_TIMEOUT_S: Final = 2.0
_READINESS_CHECK: Final = "readiness"


def build_app(
    metrics: GatewayMetrics,
    readiness: Readiness,
    readiness_timeout: float = DEFAULT_READINESS_TIMEOUT_S,
    extend: Extension | None = None,
) -> web.Application:
    """The probes; ``extend`` adds more (the operator console) to the same application."""

    async def metrics_handler(request: web.Request) -> web.Response:
        # The 0.0.4 text format, which every scraper and `promtool check metrics` read.
        return web.Response(
            body=generate_latest(metrics.registry),
            headers={"Content-Type": CONTENT_TYPE_PLAIN_0_0_4},
        )

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"status": "alive"})

    async def readyz(request: web.Request) -> web.Response:
        try:
            async with asyncio.timeout(readiness_timeout):
                checks = dict(await readiness())
        except Exception as exc:  # any failure to answer, a timeout included, means not ready
            _log.warning("readiness_failed", error=type(exc).__name__, detail=str(exc))
            checks = {_READINESS_CHECK: False}
        not_ready = sorted(name for name, ok in checks.items() if not ok)
        if not_ready:
            return web.json_response(
                {"ready": False, "checks": checks, "not_ready": not_ready}, status=503
            )
        return web.json_response({"ready": True, "checks": checks})

    app = web.Application()
    app.router.add_get("/metrics", metrics_handler)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    if extend is not None:
        extend(app)
    return app


class HttpServer:
    """Serves ``build_app`` on ``host:port``; port 0 binds a free port, read back from ``port``."""

    def __init__(
        self,
        host: str,
        port: int,
        metrics: GatewayMetrics,
        readiness: Readiness,
        *,
        readiness_timeout: float = DEFAULT_READINESS_TIMEOUT_S,
        extend: Extension | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._host = host
        self._requested_port = port
        self._ssl_context = ssl_context
        self._app = build_app(metrics, readiness, readiness_timeout, extend)
        self._runner: web.AppRunner | None = None
        self._port: int | None = None

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("HttpServer is not started")
        return self._port

    async def start(self) -> None:
        if self._runner is not None:
            raise RuntimeError("HttpServer is already started")
        # Scrapes and probes every few seconds would drown the real events in access logs.
        runner = web.AppRunner(self._app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        try:
            site = web.TCPSite(
                runner, self._host, self._requested_port, ssl_context=self._ssl_context
            )
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self._port = int(runner.addresses[0][1])
        _log.info("http_started", host=self._host, port=self._port)

    async def stop(self) -> None:
        if self._runner is None:
            return
        runner, self._runner, self._port = self._runner, None, None
        await runner.cleanup()
        _log.info("http_stopped")
