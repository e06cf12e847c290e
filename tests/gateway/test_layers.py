"""The layers the tree shows are the real ones.

The pure core stays pure: importing a decision module loads no broker, HTTP or database code.
Each module is imported in a fresh interpreter, so nothing another test imported hides what the
module itself pulls in, directly or through a package ``__init__``. And README's "Where things
are" table names the modules that exist, all of them.
"""

from __future__ import annotations

import json
import pkgutil
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

import contracts
import gateway
import gateway.core

# Third-party I/O libraries, by top-level package name.
IO_LIBRARIES = frozenset({"aio_pika", "aiormq", "aiohttp", "sqlalchemy", "asyncpg", "aiosqlite"})

# The gateway's I/O shell: brokers, database, HTTP, processes. A pure module loads none of it.
SHELL_MODULES = frozenset(
    {
        "gateway.amqp",
        "gateway.topology",
        "gateway.reconnect",
        "gateway.broker_errors",
        "gateway.submission_client",
        "gateway.control_client",
        "gateway.service",
        "gateway.followed_archive",
        "gateway.health",
        "gateway.web",
        "gateway.demo",
        "gateway.review_ops",
        "gateway.archive.store",
        "gateway.archive.rows",
        "gateway.archive.schema",
        "gateway.archive.migrations",
        "gateway.desk.operations",
    }
)
SHELL_PACKAGES = ("gateway.workers", "gateway.cli", "gateway.console")

# Outside gateway/core, the data the decisions work on and the workers' builders (what a batch
# archives, publishes and reports, as plain data). README "Where things are" calls these pure.
PURE_ELSEWHERE = (
    "gateway.desk.requests",
    "gateway.desk.actions",
    "gateway.archive",
    "gateway.archive.records",
    "gateway.archive.chain",
    "gateway.archive.linking",
    "gateway.archive.search",
    "gateway.workers.events",
    "gateway.workers.outcomes",
    "gateway.workers.held_copies",
    "gateway.workers.submissions",
    "gateway.workers.arrivals",
    "gateway.workers.refusals",
    "gateway.workers.control_outcomes",
)


def _package_modules(package: ModuleType) -> list[str]:
    walked = pkgutil.walk_packages(package.__path__, prefix=f"{package.__name__}.")
    return [package.__name__, *sorted(module.name for module in walked)]


# Every module in gateway/core is pure by where it lives: a new one is checked without a list.
PURE_GATEWAY_MODULES = (*_package_modules(gateway.core), *PURE_ELSEWHERE)
PURE_MODULES = (*_package_modules(contracts), *PURE_GATEWAY_MODULES)


def _loaded_by(module: str) -> set[str]:
    code = f"import json, sys; import {module}; print(json.dumps(sorted(sys.modules)))"
    completed = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    return set(json.loads(completed.stdout))


# The workers package's ``__init__`` is a docstring; the pure modules it holds load no I/O.
PURE_IN_SHELL = frozenset({"gateway.workers", *PURE_GATEWAY_MODULES})


def _impure(loaded: set[str]) -> list[str]:
    return sorted(
        name
        for name in loaded
        if (name in IO_LIBRARIES)  # the top-level package: one line per library is enough
        or name in SHELL_MODULES
        or (name.startswith(SHELL_PACKAGES) and name not in PURE_IN_SHELL)
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


def _readme_tree_paths() -> set[str]:
    """The paths README's "Where things are" table names, relative names resolved against the
    last directory named in the same cell (`gateway/core/consent.py`, `review.py` ...)."""
    readme = (Path(gateway.__file__).parent.parent / "README.md").read_text()
    section = readme.split("## Where things are\n", 1)[1].split("\n## ", 1)[0]
    paths = set()
    for row in section.splitlines():
        if not row.startswith("| `"):
            continue
        base = ""
        for name in re.findall(r"`([^`]+)`", row.split(" | ")[0]):
            if "/" in name:
                base = name if name.endswith("/") else name.rsplit("/", 1)[0] + "/"
                paths.add(name)
            else:
                paths.add(base + name)
    return paths


def test_the_readme_tree_names_existing_paths() -> None:
    root = Path(gateway.__file__).parent.parent
    assert sorted(p for p in _readme_tree_paths() if not (root / p).exists()) == []


def test_the_readme_tree_names_every_gateway_module_and_package() -> None:
    named = _readme_tree_paths()
    package = Path(gateway.__file__).parent
    unnamed = [
        path
        for path in (
            *(f"gateway/{p.name}" for p in package.glob("*.py")),
            *(f"gateway/{p.name}/" for p in package.iterdir() if (p / "__init__.py").exists()),
        )
        if path not in named and Path(path).name not in ("__init__.py", "__main__.py")
    ]
    assert sorted(unnamed) == []
