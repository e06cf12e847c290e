"""Faults injected from outside the gateway: rabbitmqctl on the broker, ALTER DATABASE on the
PostgreSQL archive. Only this test package's own vhosts and ``gw_fault_*`` databases are touched,
except for the broker restart, which every broker user on the machine sees."""

from __future__ import annotations

import json
import re
import subprocess
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg  # type: ignore[import-untyped]

from tests.support.services import POSTGRES, require
from tests.support.vhosts import DEFINITIONS

PG_USER = "postgres"


def rabbitmqctl(*args: str, timeout: float = 60.0) -> str:
    done = subprocess.run(
        ["rabbitmqctl", "-q", *args], capture_output=True, text=True, timeout=timeout, check=True
    )
    return done.stdout


def queue_total(vhost: str, queue: str) -> int:
    """Messages in the quorum queue ``queue``, ready and unacknowledged together, asked of the
    queue itself. A passive declare counts only the ready ones (and a message held by a
    consumer is exactly what must be seen); ``list_queues`` reads statistics that lag by
    seconds."""
    for name in (vhost, queue):
        assert re.fullmatch(r"[\w.-]+", name), name
    expression = (
        f'{{ok, Q}} = rabbit_amqqueue:lookup(rabbit_misc:r(<<"{vhost}">>, queue, <<"{queue}">>)),'
        " {ok, {_, N}, _} = ra:local_query(amqqueue:get_pid(Q),"
        " fun rabbit_fifo:query_messages_total/1), N."
    )
    return int(rabbitmqctl("eval", expression).strip())


def close_user_connections(user: str, vhost: str) -> int:
    """Close ``user``'s connections to ``vhost`` only (close_all_user_connections would also cut
    the same user's connections of other test sessions on other vhosts)."""
    out = rabbitmqctl("list_connections", "--no-table-headers", "pid", "user", "vhost")
    closed = 0
    for line in out.splitlines():
        parts = line.split("\t")
        if len(parts) == 3 and parts[1] == user and parts[2] == vhost:
            subprocess.run(
                ["rabbitmqctl", "-q", "close_connection", parts[0], "fault test: partner cut off"],
                capture_output=True,
                timeout=30,
                check=False,
            )
            closed += 1
    return closed


def block_user(user: str, vhost: str) -> None:
    rabbitmqctl("clear_permissions", "-p", vhost, user)


def allow_peer(user: str, vhost: str) -> None:
    """The least-privilege peer permissions of deploy/rabbitmq/definitions.json, read from it so
    that the restored grant is the one the deployment gives (a prefixed vhost has the same)."""
    definitions = json.loads(DEFINITIONS.read_text())
    (grant,) = [
        p for p in definitions["permissions"] if p["user"] == user and vhost.endswith(p["vhost"])
    ]
    rabbitmqctl(
        "set_permissions", "-p", vhost, user, grant["configure"], grant["write"], grant["read"]
    )


def restart_broker_app() -> None:
    try:
        rabbitmqctl("stop_app")
    finally:
        # Whatever happened, the broker every other user of the machine shares comes back.
        rabbitmqctl("start_app")
        rabbitmqctl("await_startup", timeout=120)


async def _admin() -> asyncpg.Connection:
    require(POSTGRES, "PostgreSQL")
    return await asyncpg.connect(
        host=POSTGRES[0], port=POSTGRES[1], user=PG_USER, database="postgres", timeout=5
    )


@asynccontextmanager
async def fault_database() -> AsyncIterator[tuple[str, str]]:
    """A fresh ``gw_fault_*`` database: (name, archive URL); dropped afterwards."""
    name = f"gw_fault_{uuid.uuid4().hex[:12]}"
    admin = await _admin()
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield name, f"postgresql://{PG_USER}@{POSTGRES[0]}:{POSTGRES[1]}/{name}"
        finally:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


async def cut_off_database(name: str) -> None:
    """New connections refused and existing ones terminated: the archive is gone."""
    assert name.startswith("gw_fault_")
    admin = await _admin()
    try:
        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", name
        )
    finally:
        await admin.close()


async def restore_database(name: str) -> None:
    assert name.startswith("gw_fault_")
    admin = await _admin()
    try:
        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
    finally:
        await admin.close()
