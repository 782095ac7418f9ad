"""A database made at any earlier head of a service migrates to the current head with its data: for each service
and each revision in its history, an empty database is migrated to that revision, every table gets a
representative row (generated from the schema of that time, so a new revision needs no new fixture), the
database is upgraded to head, and every row is still there with the values it had (a table a later revision
moved is found in the table it moved to), and the schema is exactly the models' — on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.script import ScriptDirectory
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from shared import migrate
from shared.settings import SERVICES

# A table whose rows a later revision copied into another (the old one is kept for a release, then dropped).
MOVED = {"directory_unions": "copy_unions", "notify_unions": "copy_unions"}
AT = datetime(2023, 10, 2, 1, 2, 3, tzinfo=UTC)


def _history(name: str) -> list[str]:
    script = ScriptDirectory.from_config(migrate.alembic_config(name, "sqlite+aiosqlite://"))
    return [r.revision for r in script.walk_revisions("base", "heads")][::-1]


def _value(column: sa.Column[Any], n: int) -> Any:
    t = column.type
    if isinstance(t, sa.Boolean):
        return False
    if isinstance(t, sa.Integer):
        return n
    if isinstance(t, sa.Float | sa.Numeric):
        return float(n)
    if isinstance(t, sa.DateTime):
        return AT
    if isinstance(t, sa.Date):
        return date(2023, 10, 2)
    if isinstance(t, sa.LargeBinary):
        return b'{"n": %d}' % n
    if isinstance(t, sa.JSON):
        return {"n": n}
    if isinstance(t, sa.String):  # Text included; a JSON document where one is read
        text = "{}" if isinstance(t, sa.Text) or (t.length or 99) < 8 else f"v{n}-{column.name}"
        return text[: t.length] if t.length else text
    raise AssertionError(f"no representative value for {column.table.name}.{column.name}: {t!r}")


def _normal(value: Any) -> Any:
    if isinstance(value, datetime):
        return (value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)).replace(tzinfo=None)
    if isinstance(value, memoryview):
        return bytes(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


async def _fill(url: str) -> dict[str, dict[str, Any]]:
    """One row in every table (parents first), each column given a value: the rows as they are once all are
    written (a trigger keeping a version may have changed an earlier one), by table."""
    engine = create_async_engine(url, poolclass=NullPool)
    written: dict[str, dict[str, Any]] = {}
    try:
        async with engine.begin() as conn:
            metadata = sa.MetaData()
            await conn.run_sync(metadata.reflect)
            for table in metadata.sorted_tables:
                if table.name == "alembic_version":
                    continue
                mirrored = (await conn.execute(sa.select(table).limit(1))).first()
                if mirrored is not None:  # a dual-write trigger copied an earlier table's row into it
                    written[table.name] = dict(mirrored._mapping)
                    continue
                row = {c.name: _value(c, 7) for c in table.columns}
                await conn.execute(table.insert().values(**row))
                written[table.name] = row
            for table in metadata.sorted_tables:  # as the rows are now: a trigger may have changed one since
                if table.name in written:
                    written[table.name] = dict((await conn.execute(sa.select(table).limit(1))).one()._mapping)
    finally:
        await engine.dispose()
    return written


async def _read(url: str) -> dict[str, list[dict[str, Any]]]:
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            metadata = sa.MetaData()
            await conn.run_sync(metadata.reflect)
            return {
                t.name: [dict(r._mapping) for r in (await conn.execute(sa.select(t))).all()]
                for t in metadata.sorted_tables
            }
    finally:
        await engine.dispose()


CASES = [(name, rev) for name in SERVICES for rev in _history(name)[:-1]]  # every head but the current


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
@pytest.mark.parametrize(("name", "revision"), CASES, ids=[f"{n}@{r}" for n, r in CASES])
def test_a_database_at_an_earlier_head_upgrades_with_its_rows(
    name: str, revision: str, dialect: str, test_servers: Any, tmp_path: Path
) -> None:
    url = (
        f"sqlite+aiosqlite:///{tmp_path / name}.db"
        if dialect == "sqlite"
        else test_servers.create_database(f"every_{name}")
    )
    migrate.upgrade(name, url, revision)
    written = asyncio.run(_fill(url))
    assert written, f"{name}@{revision}: no tables"
    migrate.upgrade(name, url)
    now = asyncio.run(_read(url))

    lost = []
    for table, row in written.items():
        target = MOVED.get(table, table) if table not in now else table
        rows = now.get(target, [])
        wanted = {k: _normal(v) for k, v in row.items() if rows and k in rows[0]}
        if not any(all(_normal(r[k]) == v for k, v in wanted.items()) for r in rows):
            lost.append(f"{table} -> {target}: {row} not among {rows}")
    assert lost == [], f"{name}@{revision} -> head lost rows"
    from tests.integration.test_migrations import _drift

    assert _drift(name, url) == []
