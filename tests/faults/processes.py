"""Gateways as real child processes (``gateway run --config FILE``), so that a test can SIGKILL
them. Each process keeps the HTTP port it was given for all its restarts, so /readyz stays at
one address; its log (JSON lines) goes to a file next to its config."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Any

import aiohttp

GATEWAY = Path(sys.executable).parent / "gateway"
READY_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 45.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class GatewayProcess:
    def __init__(self, name: str, config: Path) -> None:
        self.name = name
        self.config = config
        self.port = free_port()
        self.log_path = config.with_name(f"{name}.log")
        self.starts = 0
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    def start(self) -> None:
        assert not self.alive, f"{self.name} is already running"
        self._log = self.log_path.open("ab")
        env = {**os.environ, "GATEWAY_HTTP__PORT": str(self.port), "GATEWAY_LOG_FORMAT": "json"}
        self._process = subprocess.Popen(
            [str(GATEWAY), "run", "--config", str(self.config)],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.starts += 1

    async def readiness(self) -> tuple[int, dict[str, Any]]:
        """(HTTP status, body) of /readyz; (0, {}) while nothing answers."""
        timeout = aiohttp.ClientTimeout(total=3)
        try:
            async with (
                aiohttp.ClientSession(timeout=timeout) as session,
                session.get(f"http://127.0.0.1:{self.port}/readyz") as response,
            ):
                return response.status, dict(await response.json())
        except (aiohttp.ClientError, TimeoutError):
            return 0, {}

    async def wait_ready(self, timeout: float = READY_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if not self.alive:
                raise AssertionError(f"{self.name} exited early:\n{self.log_tail()}")
            status, _ = await self.readiness()
            if status == 200:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name} not ready after {timeout}s:\n{self.log_tail()}")
            await asyncio.sleep(0.05)

    async def restart(self) -> None:
        self.start()
        await self.wait_ready()

    def kill(self) -> None:
        """SIGKILL: no drain, no cleanup, exactly what a crash looks like to the broker."""
        assert self._process is not None, f"{self.name} never started"
        assert self.alive, f"{self.name} is not running"
        self._process.send_signal(signal.SIGKILL)
        self._process.wait()
        self._close_log()

    def terminate(self, timeout: float = STOP_TIMEOUT_S) -> int | None:
        """SIGTERM and wait for the drain; SIGKILL when it takes longer than ``timeout``."""
        if self._process is None:
            return None
        if self.alive:
            self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(timeout)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._close_log()
        return self._process.returncode

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def log_count(self, event: str) -> int:
        """How many log lines carry ``event`` (the workers' structured events).

        Lines are parsed, not searched: how the renderer spaces its JSON is not the contract.
        """
        if not self.log_path.exists():
            return 0
        with self.log_path.open("rb") as log:
            return sum(1 for line in log if event.encode() in line and _event_of(line) == event)

    def log_tail(self, lines: int = 30) -> str:
        if not self.log_path.exists():
            return "(no log)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


class Fleet:
    """Every gateway process a test started; whatever is left running is killed at the end."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.processes: list[GatewayProcess] = []

    async def start(self, name: str, config: Path) -> GatewayProcess:
        process = GatewayProcess(name, config)
        self.processes.append(process)
        await process.restart()
        return process

    def stop_all(self) -> None:
        for process in self.processes:
            process.terminate()

    def kill_all(self) -> None:
        for process in self.processes:
            if process.alive:
                process.kill()


def _event_of(line: bytes) -> object:
    try:
        parsed = json.loads(line)
    except ValueError:
        return None  # a traceback or other text the process wrote
    return parsed.get("event") if isinstance(parsed, dict) else None
