"""Debian's promtool for the deployment tests, installed when it is absent."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

APT_TIMEOUT_S = 900


def _apt_get(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["apt-get", *args],
        env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        capture_output=True,
        text=True,
        timeout=APT_TIMEOUT_S,
        check=False,
    )


@pytest.fixture(scope="session")
def promtool() -> str:
    """Path of promtool; installs Debian's prometheus package when it is missing."""
    found = shutil.which("promtool")
    if found is not None:
        return found
    if shutil.which("apt-get") is None:
        pytest.fail("promtool is not installed and apt-get is not available to install it")
    result = _apt_get("install", "-y", "prometheus")
    if result.returncode != 0:
        # A fresh image has no package lists yet.
        _apt_get("update")
        result = _apt_get("install", "-y", "prometheus")
    found = shutil.which("promtool")
    if result.returncode != 0 or found is None:
        pytest.fail(
            "could not install promtool with `apt-get install -y prometheus` "
            f"(exit {result.returncode}):\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
        )
    return found
