"""The installed version of the gateway, for ``gateway --version`` and ``gateway_build_info``."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version


def package_version() -> str:
    try:
        return version("liaison-gateway")
    except PackageNotFoundError:
        return "unknown"
