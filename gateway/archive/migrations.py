"""Ordered, idempotent schema migrations, recorded in ``schema_migrations``.

Each step is frozen once released: it defines the tables as they were at that version (not the
current ``schema.py``), so a database at any version reaches the latest by the same path.
Steps run inside one transaction that first takes an exclusive lock, so two processes opening the
same archive at once apply each step exactly once (PostgreSQL and SQLite both have transactional
DDL, so a failed step leaves nothing half done).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import structlog
from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    insert,
    select,
    text,
)

from gateway.archive.chain import GENESIS
from gateway.archive.schema import HEAD_ID, SeqType, UtcDateTime, schema_migrations

log = structlog.get_logger(__name__)

# A fixed advisory-lock key for "migrating this database", derived from a name rather than picked.
MIGRATION_LOCK_KEY = int.from_bytes(
    hashlib.sha256(b"gateway.archive.migrations").digest()[:8], "big", signed=True
)


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    apply: Callable[[Connection], None]


def _v1_initial(conn: Connection) -> None:
    meta = MetaData()
    Table(
        "archive_records",
        meta,
        Column("seq", SeqType, primary_key=True, autoincrement=False),
        Column("recorded_at", UtcDateTime, nullable=False, index=True),
        Column("prev_hash", String(64), nullable=False),
        Column("hash", String(64), nullable=False),
        Column("kind", String(64), nullable=False),
        Column("outcome", String(64), nullable=False),
        Column("occurred_at", UtcDateTime, nullable=False),
        Column("payload", LargeBinary, nullable=False),
        Column("message_id", String, index=True),
        Column("system", String),
        Column("envelope_id", String, index=True),
        Column("type", String, index=True),
        Column("provider", String),
        Column("recipient", String),
        Column("correlation_id", String, index=True),
        Column("reason", String),
        Column("detail", Text),
        Column("signature", String),
        Column("dedup_key", String),
        Column("refers_to", BigInteger, index=True),
        Column("derived_from", Text, nullable=False),
        Column("attachment_sha256", Text, nullable=False),
        Column("headers", Text, nullable=False),
    )
    Table(
        "archive_claims",
        meta,
        Column("dedup_key", String, primary_key=True),
        Column("seq", SeqType, nullable=False),
    )
    head = Table(
        "archive_head",
        meta,
        Column("id", Integer, primary_key=True, autoincrement=False),
        Column("seq", SeqType, nullable=False),
        Column("hash", String(64), nullable=False),
        Column("recorded_at", UtcDateTime),
    )
    meta.create_all(conn)
    conn.execute(insert(head).values(id=HEAD_ID, seq=0, hash=GENESIS, recorded_at=None))


MIGRATIONS: tuple[Migration, ...] = (Migration(1, "initial archive tables", _v1_initial),)


def _lock(conn: Connection) -> None:
    if conn.dialect.name == "postgresql":
        # The tables may not exist yet, so there is no row to lock: an advisory lock it is.
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
    # SQLite: the caller's transaction is BEGIN IMMEDIATE, which already excludes other writers.


def migrate(conn: Connection, migrations: tuple[Migration, ...] = MIGRATIONS) -> list[int]:
    """Apply the steps not yet applied, in order, within the caller's transaction.

    Returns the versions applied now (empty when the schema was already current).
    """
    _lock(conn)
    schema_migrations.create(conn, checkfirst=True)
    done = set(conn.execute(select(schema_migrations.c.version)).scalars())
    known = {m.version for m in migrations}
    if unknown := done - known:
        raise RuntimeError(
            f"archive schema has versions {sorted(unknown)} unknown to this gateway: "
            "it was migrated by a newer release"
        )
    applied: list[int] = []
    for migration in sorted(migrations, key=lambda m: m.version):
        if migration.version in done:
            continue
        migration.apply(conn)
        conn.execute(
            insert(schema_migrations).values(
                version=migration.version, name=migration.name, applied_at=datetime.now(UTC)
            )
        )
        log.info("archive.migrated", version=migration.version, name=migration.name)
        applied.append(migration.version)
    return applied
