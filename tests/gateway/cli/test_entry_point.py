"""The ``gateway`` entry point: lazy command loading, --version, one-line usage errors and
relative times (issue 14)."""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gateway.cli import COMMANDS, build_parser, main, parse_instant
from gateway.version import package_version

ROOT = Path(__file__).parents[3]
NOW = datetime(2026, 11, 30, 15, 45, 10, tzinfo=UTC)


def _seconds(*command: str) -> tuple[float, subprocess.CompletedProcess[str]]:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, *command],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )
    return time.perf_counter() - started, done


def test_help_answers_without_loading_the_heavy_libraries() -> None:
    """Timings are noisy on a shared machine: compare with a bare interpreter, best of three,
    and check the cause too (what --help imports)."""
    bare = min(_seconds("-c", "pass")[0] for _ in range(3))
    help_time = min(_seconds("-m", "gateway", "--help")[0] for _ in range(3))
    assert help_time < bare + 0.8
    probe = (
        "import sys; from gateway.cli import main\n"
        "try: main(['--help'])\n"
        "except SystemExit: pass\n"
        "print(sorted(m for m in ('sqlalchemy', 'aio_pika', 'pydantic', 'cryptography') "
        "if m in sys.modules))"
    )
    _, done = _seconds("-c", probe)
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_version() -> None:
    _, done = _seconds("-m", "gateway", "--version")
    assert (done.returncode, done.stdout) == (0, f"gateway {package_version()}\n")


def test_the_help_table_says_what_the_command_modules_say() -> None:
    parser = build_parser()
    [commands] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    registered = {choice.dest: choice.help for choice in commands._choices_actions}
    assert registered == {name: help_text for name, (_, help_text) in COMMANDS.items()}


def test_usage_errors_are_one_line_with_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["no-such-command"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("gateway: argument COMMAND: invalid choice: 'no-such-command'")
    assert err.endswith("(see gateway --help)\n")
    assert err.count("\n") == 1


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2h", NOW - timedelta(hours=2)),
        ("30m", NOW - timedelta(minutes=30)),
        ("7d", NOW - timedelta(days=7)),
        ("1w", NOW - timedelta(weeks=1)),
        ("today", datetime(2026, 11, 30, tzinfo=UTC)),
        ("yesterday", datetime(2026, 11, 29, tzinfo=UTC)),
        ("2026-03-01T12:00:00Z", datetime(2026, 3, 1, 12, tzinfo=UTC)),
    ],
)
def test_relative_and_absolute_times(text: str, expected: datetime) -> None:
    assert parse_instant(text, NOW) == expected


@pytest.mark.parametrize("text", ["2 hours ago", "h", "-2h", "tomorrow", ""])
def test_times_that_are_not_times(text: str) -> None:
    with pytest.raises(ValueError, match=r".+"):
        parse_instant(text, NOW)
