"""The processes under test: started as children, and sampled for memory and CPU time."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psutil

MB = 1024 * 1024
ROOT = Path(__file__).resolve().parents[1]


class ChildFailed(Exception):
    """A process under test exited on its own."""


class Child:
    """One subprocess with its output in a log file; stopped with SIGTERM (SIGKILL if stuck)."""

    def __init__(self, name: str, argv: Sequence[str], log_path: Path) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                self.argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=ROOT,
            )

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    def check(self) -> None:
        """Raise ChildFailed (with the end of its log) when the process has exited."""
        if self._process is not None and self._process.poll() is not None:
            raise ChildFailed(
                f"{self.name} exited with {self._process.returncode}; "
                f"end of {self.log_path}:\n{self.log_tail()}"
            )

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    async def stop(self, timeout: float = 45.0) -> None:
        process = self._process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(asyncio.to_thread(process.wait), timeout)
        except TimeoutError:
            process.kill()
            process.wait()


def broker_pid() -> int | None:
    """The local RabbitMQ node's Erlang VM (beam.smp), if this user may see it.

    The oldest such VM: ``rabbitmqctl``, which other sessions run, starts a short-lived one of
    its own, and sampling that one failed a scenario once it had exited.
    """
    found: list[tuple[float, int]] = []
    for process in psutil.process_iter(["name", "cmdline", "create_time"]):
        name = process.info.get("name") or ""
        cmdline = " ".join(process.info.get("cmdline") or ())
        if name.startswith("beam") and "rabbit" in cmdline and "rabbitmqctl" not in cmdline:
            found.append((process.info.get("create_time") or 0.0, int(process.pid)))
    return min(found)[1] if found else None


@dataclass
class Usage:
    """Memory and CPU time of one process over one measurement."""

    rss_start_mb: float
    rss_peak_mb: float
    rss_end_mb: float
    cpu_s: float


@dataclass
class Sampler:
    """Samples the RSS of named processes every ``interval`` seconds while running."""

    pids: Mapping[str, int]
    interval: float = 0.05
    series: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    _processes: dict[str, psutil.Process] = field(default_factory=dict)
    _cpu_start: dict[str, float] = field(default_factory=dict)
    _cpu_end: dict[str, float] = field(default_factory=dict)
    _task: asyncio.Task[None] | None = None

    def start(self) -> None:
        for name, pid in self.pids.items():
            process = psutil.Process(pid)
            self._processes[name] = process
            self._cpu_start[name] = _cpu(process)
            self.series[name] = []
        self._sample()
        self._task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            self._sample()

    def _sample(self) -> None:
        now = time.monotonic()
        for name, process in self._processes.items():
            try:
                self.series[name].append((now, process.memory_info().rss / MB))
            except psutil.Error:
                continue

    async def stop(self) -> dict[str, Usage]:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self._sample()
        usage = {}
        for name, process in self._processes.items():
            try:
                self._cpu_end[name] = _cpu(process)
            except psutil.Error:
                self._cpu_end[name] = self._cpu_start[name]
            values = [rss for _, rss in self.series[name]] or [0.0]
            usage[name] = Usage(
                rss_start_mb=values[0],
                rss_peak_mb=max(values),
                rss_end_mb=values[-1],
                cpu_s=self._cpu_end[name] - self._cpu_start[name],
            )
        return usage


def _cpu(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


def machine() -> dict[str, object]:
    """What the figures came from."""
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "memory_gb": round(psutil.virtual_memory().total / 1024**3, 1),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }
