"""Database plumbing every service shares: one engine per process, and the tables of the backbone.

Each service has its own database and its own ``MetaData``; ``backbone_tables(metadata)`` adds the outbox,
the inbox (which is also the store of facts a consumer folds), the per-aggregate sequence counters, the
idempotency keys and the periodic jobs' leases to it, so one Alembic history per service creates them all.

SQLite (the embedded default) runs in WAL mode with ``synchronous=FULL`` — an acknowledged receipt must
survive a power cut — and write transactions begin IMMEDIATE so two writers queue instead of failing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine


class UtcDateTime(sa.types.TypeDecorator[datetime]):
    """An aware instant stored in UTC. SQLite keeps no offset, so every instant is normalised on the way in
    and comes back aware (UTC) on the way out; comparisons are then right on both databases."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: every instant must carry an offset")
        v = value.astimezone(UTC)
        return v.replace(tzinfo=None) if dialect.name == "sqlite" else v

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def is_sqlite(url: str | sa.URL) -> bool:
    return make_url(str(url) if not isinstance(url, sa.URL) else url).get_backend_name() == "sqlite"


def make_engine(url: str, *, pool_size: int = 10) -> AsyncEngine:
    u = make_url(url)
    if u.get_backend_name() == "sqlite":
        if u.database and u.database != ":memory:":
            Path(u.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        @event.listens_for(engine.sync_engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    return create_async_engine(url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)


@dataclass(frozen=True)
class Backbone:
    outbox: sa.Table
    inbox: sa.Table
    sequences: sa.Table
    idempotency: sa.Table
    leases: sa.Table


def backbone_tables(metadata: sa.MetaData) -> Backbone:
    outbox = sa.Table(
        "outbox",
        metadata,
        sa.Column("position", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(36), nullable=False, unique=True),
        sa.Column("nats_subject", sa.String(300), nullable=False),
        sa.Column("event_type", sa.String(100), nullable=False),
        sa.Column("payload", sa.LargeBinary, nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("published_at", UtcDateTime(), nullable=True),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_attempt_at", UtcDateTime(), nullable=True),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Index("ix_outbox_unpublished", "published_at", "position"),
    )
    inbox = sa.Table(
        "inbox",
        metadata,
        # The key has no consumer version: a new version replaying the stream skips what was applied.
        sa.Column("purpose", sa.String(100), primary_key=True),
        sa.Column("event_id", sa.String(36), primary_key=True),
        sa.Column("event_type", sa.String(100), nullable=False),
        sa.Column("tenant", sa.String(100), nullable=False),
        sa.Column("subject", sa.String(200), nullable=False),
        sa.Column("sequence", sa.Integer, nullable=False),
        sa.Column("time", UtcDateTime(), nullable=False),
        sa.Column("envelope", sa.LargeBinary, nullable=False),
        sa.Column("applied_at", UtcDateTime(), nullable=False),
        sa.Index("ix_inbox_subject", "purpose", "subject", "sequence"),
    )
    sequences = sa.Table(
        "event_sequences",
        metadata,
        sa.Column("subject", sa.String(200), primary_key=True),
        sa.Column("last", sa.Integer, nullable=False),
    )
    idempotency = sa.Table(
        "idempotency_keys",
        metadata,
        sa.Column("scope", sa.String(200), primary_key=True),  # tenant|person|route
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("status", sa.Integer, nullable=False),
        sa.Column("body", sa.LargeBinary, nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
    )
    # One row per periodic job: who runs it in this deployment, until when, and the fencing generation
    # (shared/lease.py).
    leases = sa.Table(
        "leases",
        metadata,
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("holder", sa.String(200), nullable=False),
        sa.Column("generation", sa.Integer, nullable=False),
        sa.Column("expires_at", UtcDateTime(), nullable=False),
        sa.Column("acquired_at", UtcDateTime(), nullable=False),
    )
    return Backbone(outbox, inbox, sequences, idempotency, leases)


def insert_ignore(
    conn: AsyncConnection, table: sa.Table, values: dict[str, Any] | list[dict[str, Any]]
) -> Any:
    """INSERT … ON CONFLICT DO NOTHING in the dialect of ``conn`` (statement, not executed)."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table).values(values).on_conflict_do_nothing()
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(table).values(values).on_conflict_do_nothing()


DB_UNREACHABLE: tuple[type[BaseException], ...] = (
    sa.exc.OperationalError,
    sa.exc.InterfaceError,
    sa.exc.DisconnectionError,
    ConnectionError,
    OSError,
    TimeoutError,
)


def is_unreachable(exc: BaseException) -> bool:
    """True when ``exc`` says the database could not be reached (not that a statement was wrong)."""
    if isinstance(exc, sa.exc.DBAPIError) and exc.connection_invalidated:
        return True
    # SQLite "database is locked" is contention rather than an outage; waiting is right for both.
    return isinstance(exc, DB_UNREACHABLE)
