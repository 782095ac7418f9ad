"""Each service's Alembic history, run from empty, builds exactly the tables its models describe — on SQLite
(the embedded default) and on PostgreSQL — and can be walked back down and up again; a database made by an
earlier history migrates with its data."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from shared import migrate
from shared.settings import SERVICES


def _drift(name: str, url: str) -> list[Any]:
    metadata = migrate._metadata(name)

    async def go() -> list[Any]:
        engine = create_async_engine(url, poolclass=NullPool)
        try:
            async with engine.connect() as conn:
                return await conn.run_sync(
                    lambda sync: compare_metadata(MigrationContext.configure(sync), metadata)
                )
        finally:
            await engine.dispose()

    return asyncio.run(go())


@pytest.mark.parametrize("name", SERVICES)
@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_migrations_build_the_models_and_walk_down_and_up(
    name: str, dialect: str, test_servers: Any, tmp_path: Path
) -> None:
    if dialect == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / name}.db"
    else:
        url = test_servers.create_database(f"mig_{name}")
    migrate.upgrade(name, url)
    assert _drift(name, url) == []
    cfg = migrate.alembic_config(name, url)
    command.downgrade(cfg, "base")
    migrate.upgrade(name, url)
    assert _drift(name, url) == []


UNION = {"id": "cd-so", "name": "Chi đoàn Sở", "kind": "youth_union", "secretary": "p-0007"}
BEFORE_UNIONS_MOVED = {"campaign": "5d2f8b1c4e60", "notify": "159f552de70c", "submissions": "0adf41425dcc"}


def _union_fact(sequence: int) -> bytes:
    from shared.events.envelope import make_event

    env = make_event(
        "directory.unit.changed",
        {"union": UNION},
        source="campaign",
        tenant="soctrang-stnmt",
        subject=UNION["id"],
        sequence=sequence,
        time=datetime(2023, 10, 1, tzinfo=UTC),
    )
    return env.to_json()


def _sql(url: str, statements: list[tuple[str, dict[str, Any]]]) -> list[Any]:
    async def go() -> list[Any]:
        engine = create_async_engine(url, poolclass=NullPool)
        out = []
        try:
            async with engine.begin() as conn:
                for statement, params in statements:
                    result = await conn.execute(sa.text(statement), params)
                    out.append(result.all() if result.returns_rows else None)
        finally:
            await engine.dispose()
        return out

    return asyncio.run(go())


def _old_union_rows(name: str) -> list[tuple[str, dict[str, Any]]]:
    doc = json.dumps(UNION, ensure_ascii=False)
    at = datetime(2023, 10, 1, tzinfo=UTC)
    if name == "campaign":  # campaign's own table, numbered by its event sequences
        return [
            (
                "INSERT INTO directory_unions (tenant, union_id, doc) VALUES ('soctrang-stnmt', 'cd-so', :d)",
                {"d": doc},
            ),
            ("INSERT INTO event_sequences (subject, last) VALUES ('cd-so', 4)", {}),
        ]
    if name == "notify":
        return [
            (
                "INSERT INTO notify_unions (tenant, union_id, doc, sequence) VALUES ('soctrang-stnmt', 'cd-so', :d, 4)",
                {"d": doc},
            ),
        ]
    # submissions kept none: its inbox holds the facts it applied (an older and the newest)
    return [
        (
            (
                "INSERT INTO inbox (purpose, event_id, event_type, tenant, subject, sequence, time, envelope, "
                "applied_at) VALUES ('facts', :id, 'directory.unit.changed', 'soctrang-stnmt', 'cd-so', :s, :t, :e, :t)"
            ),
            {"id": f"e-{s}", "s": s, "t": at.replace(tzinfo=None), "e": _union_fact(s)},
        )
        for s in (4, 2)
    ]


@pytest.mark.parametrize("name", sorted(BEFORE_UNIONS_MOVED))
@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_an_existing_database_keeps_its_unions_in_the_shared_copy(
    name: str, dialect: str, test_servers: Any, tmp_path: Path
) -> None:
    """A database made before unions moved to shared/copies.py migrates with its unions: the shared copy holds
    each one, with its newest sequence, and the service reads the secretary from it."""
    url = (
        f"sqlite+aiosqlite:///{tmp_path / name}.db"
        if dialect == "sqlite"
        else test_servers.create_database(f"mig_unions_{name}")
    )
    migrate.upgrade(name, url, BEFORE_UNIONS_MOVED[name])
    _sql(url, _old_union_rows(name))
    migrate.upgrade(name, url)
    [rows] = _sql(url, [("SELECT tenant, union_id, doc, sequence FROM copy_unions", {})])
    assert [(r.tenant, r.union_id, r.sequence) for r in rows] == [("soctrang-stnmt", "cd-so", 4)]
    assert json.loads(rows[0].doc)["secretary"] == "p-0007"
    assert _drift(name, url) == []
