"""Each service's Alembic history, run from empty, builds exactly the tables its models describe — on SQLite
(the embedded default) and on PostgreSQL — and can be walked back down and up again."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
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
