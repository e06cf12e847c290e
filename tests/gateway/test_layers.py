"""The pure core stays pure: importing a decision module loads no broker, HTTP or database code.

Each module is imported in a fresh interpreter, so nothing another test imported hides what the
module itself pulls in, directly or through a package ``__init__``.
"""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys

import pytest

import contracts

# Third-party I/O libraries, by top-level package name.
IO_LIBRARIES = frozenset({"aio_pika", "aiormq", "aiohttp", "sqlalchemy", "asyncpg", "aiosqlite"})

# The gateway's I/O shell: brokers, database, HTTP, processes. A pure module loads none of it.
SHELL_MODULES = frozenset(
    {
        "gateway.amqp",
        "gateway.topology",
        "gateway.reconnect",
        "gateway.broker_errors",
        "gateway.client",
        "gateway.control_client",
        "gateway.service",
        "gateway.http",
        "gateway.demo",
        "gateway.review_ops",
        "gateway.archive.store",
        "gateway.archive.schema",
        "gateway.archive.migrations",
        "gateway.desk.operations",
    }
)
SHELL_PACKAGES = ("gateway.workers", "gateway.cli", "gateway.console")

# The decisions and the data they work on: README "Where things are" calls these pure.
PURE_GATEWAY_MODULES = (
    "gateway.outbound",
    "gateway.inbound",
    "gateway.consent",
    "gateway.provenance",
    "gateway.similarity",
    "gateway.signing",
    "gateway.keys",
    "gateway.freshness",
    "gateway.roster",
    "gateway.receipts",
    "gateway.review",
    "gateway.state",
    "gateway.stamping",
    "gateway.outgoing",
    "gateway.replay",
    "gateway.operator_views",
    "gateway.junk",
    "gateway.ratelimit",
    "gateway.desk.requests",
    "gateway.archive",
    "gateway.archive.records",
    "gateway.archive.chain",
)


def _contract_modules() -> list[str]:
    walked = pkgutil.walk_packages(contracts.__path__, prefix="contracts.")
    return ["contracts", *sorted(module.name for module in walked)]


PURE_MODULES = (*_contract_modules(), *PURE_GATEWAY_MODULES)


def _loaded_by(module: str) -> set[str]:
    code = f"import json, sys; import {module}; print(json.dumps(sorted(sys.modules)))"
    completed = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    return set(json.loads(completed.stdout))


def _impure(loaded: set[str]) -> list[str]:
    return sorted(
        name
        for name in loaded
        if (name in IO_LIBRARIES)  # the top-level package: one line per library is enough
        or name in SHELL_MODULES
        or name.startswith(SHELL_PACKAGES)
    )


@pytest.mark.parametrize("module", PURE_MODULES)
def test_a_pure_module_loads_no_io(module: str) -> None:
    assert _impure(_loaded_by(module)) == []


def test_the_check_sees_an_io_module() -> None:
    """The check itself can fail: the archive store is SQLAlchemy."""
    assert {"sqlalchemy", "gateway.archive.store"} <= set(
        _impure(_loaded_by("gateway.archive.store"))
    )


def test_the_archive_package_still_offers_the_store() -> None:
    """Loading the store lazily keeps ``from gateway.archive import ArchiveStore`` working."""
    from gateway.archive import ArchiveStore, SearchFilter, open_archive, store

    assert (ArchiveStore, SearchFilter, open_archive) == (
        store.ArchiveStore,
        store.SearchFilter,
        store.open_archive,
    )
