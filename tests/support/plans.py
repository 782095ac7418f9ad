"""Query plans of the statements a hot path runs, on SQLite and PostgreSQL: what the planner does with them when
it knows nothing of the tables (SQLite never has statistics; PostgreSQL has none before its first ANALYZE, and
asyncpg's prepared statements switch to a generic plan after five runs)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine


@contextlib.contextmanager
def statements_on(engine: AsyncEngine) -> Iterator[list[tuple[str, Any]]]:
    """The statements run on ``engine`` meanwhile, with their parameters."""
    seen: list[tuple[str, Any]] = []

    def grab(conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool) -> None:
        seen.append((statement, params))

    sa.event.listen(engine.sync_engine, "before_cursor_execute", grab)
    try:
        yield seen
    finally:
        sa.event.remove(engine.sync_engine, "before_cursor_execute", grab)


async def plans(conn: AsyncConnection, statement: str, params: Any = ()) -> list[list[str]]:
    """The statement's plan, a line per step: SQLite's; PostgreSQL's custom and generic plans (asyncpg prepares
    every statement, and switches to the generic plan after five runs)."""
    if conn.dialect.name == "sqlite":
        return [
            [r[-1] for r in (await conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", params)).all()]
        ]

    def literal(v: Any) -> str:
        if isinstance(v, int | float):
            return repr(v)
        return "'" + (v.isoformat() if isinstance(v, datetime) else str(v)).replace("'", "''") + "'"

    name = f"plan_{abs(hash(statement))}"
    await conn.exec_driver_sql(f"PREPARE {name} AS {statement}")
    plans = []
    for mode in ("force_custom_plan", "force_generic_plan"):
        await conn.exec_driver_sql(f"SET plan_cache_mode = {mode}")
        execute = f"EXPLAIN EXECUTE {name}({', '.join(literal(v) for v in params)})"
        plans.append([r[0] for r in (await conn.exec_driver_sql(execute)).all()])
    await conn.exec_driver_sql(f"DEALLOCATE {name}")
    await conn.exec_driver_sql("SET plan_cache_mode = auto")
    return plans


def compiled(conn: AsyncConnection, statement: Any) -> tuple[str, tuple[Any, ...]]:
    """A SQLAlchemy statement as the driver receives it on ``conn``: its text and positional parameters."""
    engine = conn.sync_engine if hasattr(conn, "sync_engine") else conn.engine.sync_engine
    c = statement.compile(engine, compile_kwargs={"render_postcompile": True})  # an IN list as its values
    return str(c), tuple(c.params[name] for name in c.positiontup or ())


# What a plan test's database knows of its tables: SQLite never has statistics; PostgreSQL has none until
# autovacuum runs — then page and row counts (VACUUM), then column statistics (ANALYZE). A plan that holds in one
# state can lose a tie in another, so the plan tests run in each.
KNOWLEDGE = ["sqlite", "postgresql", "postgresql-vacuumed", "postgresql-analyzed"]


def database_url(kind: str, tmp_path: Path, test_servers: Any, name: str) -> str:
    """An empty database of ``kind`` (one of :data:`KNOWLEDGE`; "sqlite": a file in ``tmp_path``; else a fresh
    PostgreSQL database on the test server) for a plan test."""
    if kind == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / f'{name}.db'}"
    return str(test_servers.create_database(name))


async def learn(engine: AsyncEngine, kind: str, *tables: str) -> None:
    """Give PostgreSQL what ``kind`` says it knows of ``tables``, once they hold their rows."""
    command = {"postgresql-vacuumed": "VACUUM", "postgresql-analyzed": "VACUUM ANALYZE"}.get(kind)
    if command is None:
        return
    async with engine.connect() as conn:
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        for table in tables:
            await conn.exec_driver_sql(f"{command} {table}")


async def holding(
    kind: str, tmp_path: Path, test_servers: Any, table: sa.Table, rows: list[dict[str, Any]]
) -> AsyncEngine:
    """An engine on an empty database of ``kind`` (``database_url``) with ``table``'s metadata created, ``rows``
    in ``table`` and what ``kind`` says the planner knows of it (``learn``). The caller disposes of it."""
    engine = create_async_engine(database_url(kind, tmp_path, test_servers, f"plans_{table.name}"))
    async with engine.begin() as conn:
        await conn.run_sync(table.metadata.create_all)
        await conn.execute(table.insert(), rows)
    await learn(engine, kind, table.name)
    return engine
