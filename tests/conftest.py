"""Suite-wide fixtures."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator

# Imported before any test runs: on CPython 3.11.7 the hypothesis plugin's lazy import at session
# end (pytest rewrites hypothesis's modules) can fail with "AST constructor recursion depth
# mismatch" after broker tests, turning a green run into an exit code of 1.
import hypothesis
import pytest
import structlog
from structlog._config import BoundLoggerLazyProxy

# A property test is judged on its examples, not on the wall clock: on a loaded 2-core machine one
# example can take longer than hypothesis's default 200 ms deadline, which made green runs red.
hypothesis.settings.register_profile(
    "gateway", deadline=None, suppress_health_check=[hypothesis.HealthCheck.too_slow]
)
hypothesis.settings.load_profile("gateway")

APT_TIMEOUT_S = 900


def _forget_cached_loggers() -> None:
    """Make the module-level loggers of the gateway follow the next configure_logging.

    configure_logging caches each logger on its first use (cheaper per event); a logger first
    used inside one test would otherwise keep writing to that test's stream for good.
    """
    for name, module in list(sys.modules.items()):
        if name.split(".")[0] not in ("gateway", "contracts"):
            continue
        for value in list(vars(module).values()):
            if isinstance(value, BoundLoggerLazyProxy):
                vars(value).pop("bind", None)


@pytest.fixture(autouse=True)
def _fresh_logging() -> Iterator[None]:
    """Tests that configure logging (the CLI does) must not leak streams into later tests."""
    _forget_cached_loggers()
    yield
    structlog.reset_defaults()
    _forget_cached_loggers()
    root = logging.getLogger()
    for handler in list(root.handlers):
        if (
            not isinstance(handler, logging.NullHandler)
            and "LogCaptureHandler" not in type(handler).__name__
        ):
            root.removeHandler(handler)


def _apt_get(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["apt-get", *args],
        env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        capture_output=True,
        text=True,
        timeout=APT_TIMEOUT_S,
        check=False,
    )


def debian_prometheus(program: str) -> str:
    """Path of ``program`` (prometheus or promtool); installs Debian's prometheus package."""
    found = shutil.which(program)
    if found is not None:
        return found
    if shutil.which("apt-get") is None:
        pytest.fail(f"{program} is not installed and apt-get is not available to install it")
    result = _apt_get("install", "-y", "prometheus")
    if result.returncode != 0:
        # A fresh image has no package lists yet.
        _apt_get("update")
        result = _apt_get("install", "-y", "prometheus")
    found = shutil.which(program)
    if result.returncode != 0 or found is None:
        pytest.fail(
            f"could not install {program} with `apt-get install -y prometheus` "
            f"(exit {result.returncode}):\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
        )
    return found


@pytest.fixture(scope="session")
def promtool() -> str:
    """Path of promtool; installs Debian's prometheus package when it is missing."""
    return debian_prometheus("promtool")


@pytest.fixture(scope="session")
def prometheus() -> str:
    """Path of the Prometheus server; installs Debian's prometheus package when it is missing."""
    return debian_prometheus("prometheus")
