"""The archive tables as the store queries them today (``migrations.py`` creates them).

A test compares these definitions with the database that the migrations produce, so the two
cannot drift apart silently.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Column,
    Dialect,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)
from sqlalchemy.types import DateTime, TypeDecorator

# SQLite only treats the exact type name INTEGER as the rowid alias; PostgreSQL needs 64 bits.
SeqType = BigInteger().with_variant(Integer(), "sqlite")


class UtcDateTime(TypeDecorator[datetime]):
    """An aware UTC datetime on both backends (SQLite's DATETIME has no zone and returns naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r} given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


metadata = MetaData()

schema_migrations = Table(
    "schema_migrations",
    metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("name", String(200), nullable=False),
    Column("applied_at", UtcDateTime, nullable=False),
)

records = Table(
    "archive_records",
    metadata,
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

# One row per dedup key: the primary key makes "claimed once" a database guarantee, not just
# the outcome of the serialised append.
claims = Table(
    "archive_claims",
    metadata,
    Column("dedup_key", String, primary_key=True),
    Column("seq", SeqType, nullable=False),
)

# The chain tail in one row: appenders lock it to serialise (see store.py), and verify compares
# it with the last record, which catches a truncated archive.
head = Table(
    "archive_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("seq", SeqType, nullable=False),
    Column("hash", String(64), nullable=False),
    Column("recorded_at", UtcDateTime),
)

HEAD_ID = 1
