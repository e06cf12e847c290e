"""Where a gateway's CPU time goes: py-spy attached to the running process, and a summary.

py-spy samples the process from outside (no code change, little overhead with
``--nonblocking``) and, without ``--idle``, records only threads that are running, so the
shares below are shares of CPU time, not of wall-clock time. The raw output is one line per
distinct stack, ``frame;frame;...;leaf count``, each frame ``function (path:line)``.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import signal
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

_FRAME = re.compile(r"^(?P<function>.*) \((?P<path>[^():]*)(?::\d+)?\)$")

# Where a sample belongs, by the file of a frame. The first specific area found walking from
# the leaf towards the root wins, so json.dumps called by structlog counts as logging, and
# asyncio called by aiormq as the AMQP client; a sample with only generic frames keeps the
# generic area of its leaf.
_AREAS: tuple[tuple[str, str], ...] = (
    ("gateway/archive/", "archive (SQLAlchemy + aiosqlite)"),
    ("sqlalchemy/", "archive (SQLAlchemy + aiosqlite)"),
    ("aiosqlite/", "archive (SQLAlchemy + aiosqlite)"),
    ("sqlite3/", "archive (SQLAlchemy + aiosqlite)"),
    ("gateway/core/signing.py", "signing/verifying (RFC 8785 + Ed25519)"),
    ("rfc8785/", "signing/verifying (RFC 8785 + Ed25519)"),
    ("cryptography/", "signing/verifying (RFC 8785 + Ed25519)"),
    ("gateway/core/similarity.py", "provenance/similarity"),
    ("gateway/core/provenance.py", "provenance/similarity"),
    ("gateway/core/normalise.py", "provenance/similarity"),
    ("gateway/core/fingerprints.py", "provenance/similarity"),
    ("gateway/core/envelope_content.py", "provenance/similarity"),
    ("gateway/core/attachment_content.py", "provenance/similarity"),
    ("icu/", "provenance/similarity"),
    ("numpy/", "provenance/similarity"),
    ("contracts/", "validation (contracts + pydantic)"),
    ("pydantic/", "validation (contracts + pydantic)"),
    ("pydantic_core/", "validation (contracts + pydantic)"),
    ("structlog/", "logging (structlog)"),
    ("gateway/logs.py", "logging (structlog)"),
    ("logging/", "logging (structlog)"),
    ("prometheus_client/", "metrics (prometheus_client)"),
    ("gateway/metrics.py", "metrics (prometheus_client)"),
    ("aio_pika/", "AMQP client (aio-pika/aiormq/pamqp)"),
    ("aiormq/", "AMQP client (aio-pika/aiormq/pamqp)"),
    ("pamqp/", "AMQP client (aio-pika/aiormq/pamqp)"),
    ("gateway/amqp.py", "AMQP client (aio-pika/aiormq/pamqp)"),
    ("gateway/", "gateway code (decisions, workers, state)"),
    ("uuid6/", "gateway code (decisions, workers, state)"),
)
_GENERIC: tuple[tuple[str, str], ...] = (
    ("asyncio/", "event loop (asyncio)"),
    ("selectors.py", "event loop (asyncio)"),
    ("json/", "JSON (stdlib)"),
)


def py_spy() -> str:
    found = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(found).exists():
        raise RuntimeError("py-spy is not installed: .venv/bin/pip install -e '.[bench]'")
    return found


class Profiler:
    """``py-spy record`` attached to one process until ``stop``."""

    def __init__(self, pid: int, output: Path, rate: int = 200) -> None:
        self.output = output
        self._argv = [
            py_spy(),
            "record",
            "--pid",
            str(pid),
            "--rate",
            str(rate),
            "--format",
            "raw",
            "--nonblocking",
            "--output",
            str(output),
        ]
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self._process = subprocess.Popen(
            self._argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )

    async def stop(self) -> None:
        process = self._process
        if process is None:
            return
        process.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
        try:
            await asyncio.wait_for(asyncio.to_thread(process.wait), 30)
        except TimeoutError:
            process.kill()
            process.wait()


def _parse(frame: str) -> tuple[str, str]:
    match = _FRAME.match(frame)
    if match is None:
        return frame, ""
    return match["function"], match["path"]


def _area(path: str, table: tuple[tuple[str, str], ...]) -> str | None:
    return next((area for marker, area in table if marker in path), None)


def _label(function: str, path: str) -> str:
    return f"{function} ({path})" if path else function


@dataclass
class Summary:
    samples: int
    areas: list[tuple[str, float]]
    self_time: list[tuple[str, float]]
    inclusive: list[tuple[str, float]]


def summarise(raw: Path, top: int = 30) -> Summary:
    areas: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = [_parse(frame) for frame in stack.split(";")]
        leaf_function, leaf_path = frames[-1]
        leaves[_label(leaf_function, leaf_path)] += count
        for label in {_label(f, p) for f, p in frames}:
            inclusive[label] += count
        area = next(
            (a for _, path in reversed(frames) if (a := _area(path, _AREAS)) is not None),
            _area(leaf_path, _GENERIC) or "other (stdlib, C extensions)",
        )
        areas[area] += count
    if total == 0:
        return Summary(0, [], [], [])

    def shares(counter: Counter[str], limit: int) -> list[tuple[str, float]]:
        return [(name, 100.0 * n / total) for name, n in counter.most_common(limit)]

    # Only the product's own functions: the library frames are in the areas and self times,
    # and the entry point and run loop, on nearly every stack, say nothing.
    own = Counter(
        {
            label: n
            for label, n in inclusive.items()
            if ("(gateway/" in label or "(contracts/" in label) and "(gateway/cli/" not in label
        }
    )
    return Summary(total, shares(areas, len(areas)), shares(leaves, top), shares(own, top))


def format_summary(title: str, summary: Summary, rate: int) -> str:
    lines = [
        f"{title}: {summary.samples} samples of running threads at {rate} Hz "
        f"(~{summary.samples / rate:.1f} thread-seconds, waiting for a CPU included)"
    ]
    lines.append("  by area (a sample counts for the first specific area from its leaf):")
    lines += [f"    {share:5.1f}%  {name}" for name, share in summary.areas]
    lines.append("  top functions by self time (C code counts for the Python function calling it):")
    lines += [f"    {share:5.1f}%  {name}" for name, share in summary.self_time[:15]]
    lines.append("  gateway and contracts functions by inclusive time:")
    lines += [f"    {share:5.1f}%  {name}" for name, share in summary.inclusive]
    return "\n".join(lines)
