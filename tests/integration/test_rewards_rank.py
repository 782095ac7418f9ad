"""A participant's rank on the list (``readmodel.rank_of``, told in ``reward.priority.changed``), on SQLite and on
PostgreSQL: right under every order of tie-breaks, with participants off the list left out, and counted from the
list's index alone — its cost is the ranges it counts, not every participant of the contest (issue 16)."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from services.rewards import domain, models
from services.rewards.usecases import readmodel
from shared.reward_rules import EARLIEST_FULFILMENT, FEWER_MISSED

PEOPLE = 3000
START = datetime(2023, 10, 1, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgresql"])
async def engine(request, tmp_path: Path, test_servers) -> AsyncIterator[AsyncEngine]:  # type: ignore[no-untyped-def]
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'rewards.db'}"
    else:
        url = test_servers.create_database("rewards_rank")
    eng = create_async_engine(url)
    rng = random.Random(16)
    now = datetime.now(UTC)
    rows = []
    for i in range(PEOPLE):
        on_list = rng.random() < 0.7  # the rest: rows kept off the list (a change once told), points 0
        rows.append(
            {
                "generation": 0,
                "tenant": "t-rank",
                "edition": "2023",
                "participant_kind": "person" if i % 10 else "unit",
                "participant_id": f"p-{i:05d}",
                "points": float(rng.randint(0, 6)) if on_list else 0.0,
                "first_at": START + timedelta(days=rng.randint(0, 3)) if on_list else domain.FAR_FUTURE,
                "misses": rng.randint(0, 2) if on_list else 0,
                "entries": rng.randint(1, 3) if on_list and rng.random() < 0.8 else 0,
                "eligibility": "[]",
                "eligibility_keys": "lao_dong_tien_tien_evidence" if on_list and rng.random() < 0.3 else "",
                "changes": 1,
                "updated_at": now,
            }
        )
    async with eng.begin() as conn:
        await conn.run_sync(models.metadata.create_all)
        await conn.execute(models.totals.insert(), rows)  # and no ANALYZE: the planner knows nothing of them
    yield eng
    await eng.dispose()


def _rank_key(row: Any, tie_breakers: tuple[str, ...]) -> tuple[Any, ...]:
    key: list[Any] = [-row.points]
    for name in tie_breakers:
        key.append(row.first_at if name == EARLIEST_FULFILMENT else row.misses)
    return tuple(key)


@pytest.mark.parametrize(
    "tie_breakers",
    [(EARLIEST_FULFILMENT,), (FEWER_MISSED, EARLIEST_FULFILMENT), (EARLIEST_FULFILMENT, FEWER_MISSED), ()],
)
async def test_a_rank_counts_those_ahead_on_the_list_under_the_rules_tie_breaks(
    engine: AsyncEngine, tie_breakers: tuple[str, ...]
) -> None:
    rules = domain.Rules(tie_breakers=tie_breakers)
    async with engine.connect() as conn:
        everyone = (await conn.execute(sa.select(models.totals))).all()
        listed = [r for r in everyone if readmodel._listed(r)]
        for row in random.Random(len(tie_breakers)).sample(listed, 40):
            same_kind = [r for r in listed if r.participant_kind == row.participant_kind]
            ahead = sum(1 for r in same_kind if _rank_key(r, tie_breakers) < _rank_key(row, tie_breakers))
            assert await readmodel.rank_of(conn, 0, "t-rank", "2023", row, rules) == ahead + 1, row
        # the database's RANK() OVER the list agrees with every rank told
        ranked = await readmodel.ranked(conn, 0, "t-rank", "2023", "person", rules)
        told = {r.participant_id: n for n, r in ranked}
        for row in [r for r in listed if r.participant_kind == "person"][:50]:
            assert await readmodel.rank_of(conn, 0, "t-rank", "2023", row, rules) == told[row.participant_id]


async def test_a_rank_is_counted_from_the_lists_index_without_reading_the_table(engine: AsyncEngine) -> None:
    statements: list[tuple[str, Any]] = []

    def grab(conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool) -> None:
        statements.append((statement, params))

    rules = domain.Rules(tie_breakers=(FEWER_MISSED, EARLIEST_FULFILMENT))
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                sa.select(models.totals).where(models.totals.c.entries > 0).order_by(models.totals.c.points)
            )
        ).first()
        sa.event.listen(engine.sync_engine, "before_cursor_execute", grab)
        try:
            await readmodel.rank_of(conn, 0, "t-rank", "2023", row, rules)
        finally:
            sa.event.remove(engine.sync_engine, "before_cursor_execute", grab)
        ((statement, params),) = statements
        if engine.dialect.name == "sqlite":
            plan = [
                r[-1] for r in (await conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", params)).all()
            ]
            searches = [p for p in plan if "totals" in p]
            assert len(searches) == 3, plan  # one range per level: points, misses, first fulfilment
            assert all(p.startswith("SEARCH totals USING COVERING INDEX ix_totals_rank") for p in searches), (
                plan
            )
        else:

            def literal(v: Any) -> str:
                if isinstance(v, int | float):
                    return repr(v)
                return "'" + (v.isoformat() if isinstance(v, datetime) else str(v)).replace("'", "''") + "'"

            await conn.exec_driver_sql(f"PREPARE rank_of AS {statement}")
            execute = f"EXECUTE rank_of({', '.join(literal(v) for v in params)})"
            for mode in ("force_custom_plan", "force_generic_plan"):  # asyncpg's prepared statement: both
                await conn.exec_driver_sql(f"SET plan_cache_mode = {mode}")
                plan = "\n".join(r[0] for r in (await conn.exec_driver_sql(f"EXPLAIN {execute}")).all())
                assert plan.count("Index Only Scan using ix_totals_rank") == 3, (mode, plan)
                assert "Seq Scan" not in plan and "Bitmap" not in plan, (mode, plan)
