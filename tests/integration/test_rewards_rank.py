"""A participant's rank on the list (``readmodel.rank_of``, told in ``reward.priority.changed``), on SQLite and on
PostgreSQL: right under every order of tie-breaks, with participants off the list left out, and counted from the
list's index alone — its cost is the ranges it counts, not every participant of the contest (issue 16). And the
participants' timelines (``asof._cut``) are cut through each one's own rows, never the whole list's."""

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
from services.rewards.usecases import asof, readmodel
from shared.reward_rules import EARLIEST_FULFILMENT, FEWER_MISSED
from tests.support.plans import KNOWLEDGE, database_url, learn, plans, statements_on

PEOPLE = 3000
START = datetime(2023, 10, 1, tzinfo=UTC)


@pytest.fixture(params=KNOWLEDGE)
async def engine(request, tmp_path: Path, test_servers) -> AsyncIterator[AsyncEngine]:  # type: ignore[no-untyped-def]
    eng = create_async_engine(database_url(request.param, tmp_path, test_servers, "rewards_rank"))
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
    versions = [
        {
            **{k: r[k] for k in ("generation", "tenant", "edition", "participant_kind", "participant_id")},
            **{k: r[k] for k in ("points", "first_at", "misses", "eligibility")},
            "valid_from": START,
            "valid_to": domain.FAR_FUTURE,
        }
        for r in rows
    ]
    async with eng.begin() as conn:
        await conn.run_sync(models.metadata.create_all)
        await conn.execute(models.totals.insert(), rows)
        await conn.execute(models.participant_versions.insert(), versions)
    await learn(eng, request.param, "totals", "participant_versions")
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
    rules = domain.Rules(tie_breakers=(FEWER_MISSED, EARLIEST_FULFILMENT))
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                sa.select(models.totals).where(models.totals.c.entries > 0).order_by(models.totals.c.points)
            )
        ).first()
        with statements_on(engine) as statements:
            await readmodel.rank_of(conn, 0, "t-rank", "2023", row, rules)
        ((statement, params),) = statements
        for plan in await plans(conn, statement, params):
            if engine.dialect.name == "sqlite":
                searches = [p for p in plan if "totals" in p]
                assert len(searches) == 3, plan  # one range per level: points, misses, first fulfilment
                assert all(
                    p.startswith("SEARCH totals USING COVERING INDEX ix_totals_rank") for p in searches
                ), plan
            else:
                assert "\n".join(plan).count("Index Only Scan using ix_totals_rank") == 3, plan
                assert not any("Seq Scan" in p or "Bitmap" in p for p in plan), plan


async def test_a_timeline_is_cut_through_the_participants_own_rows(engine: AsyncEngine) -> None:
    since = START + timedelta(days=2)
    keys = [
        {
            "k_tenant": "t-rank",
            "k_edition": "2023",
            "k_kind": "person",
            "k_id": f"p-{i:05d}",
            "k_since": since,
        }
        for i in (1, 2)
    ]
    if engine.dialect.name == "postgresql":
        # PostgreSQL, knowing nothing of the table, prices the primary key and the in-force index alike and may
        # take either; with statistics (autovacuum, on by default) it takes the key. SQLite's planner never
        # has them: its statements are written so that the key is the only sensible way in.
        async with engine.connect() as conn:
            await conn.execute(sa.text("ANALYZE participant_versions"))
            await conn.commit()
    async with engine.begin() as conn:
        with statements_on(engine) as statements:
            await asof._cut(conn, 0, keys)
        cut = (
            await conn.execute(
                sa.select(models.participant_versions.c.valid_to).where(
                    models.participant_versions.c.participant_id.in_(["p-00001", "p-00002", "p-00003"])
                )
            )
        ).scalars()
        assert sorted(cut) == [since, since, domain.FAR_FUTURE]  # the two cut where the change begins
        assert len(statements) == 2  # a delete of what begins at or after the change, and the cut
        for statement, params in statements:
            for plan in await plans(conn, statement, params[0] if isinstance(params, list) else params):
                # the participant's own rows (the primary key), not the list's current versions
                assert not any("ix_participant_versions_in_force" in p for p in plan), plan
                assert not any("SCAN participant_versions" in p or "Seq Scan" in p for p in plan), plan


async def test_a_page_of_the_list_is_ranked_from_its_index_and_reads_the_pages_rows_only(
    engine: AsyncEngine, request: pytest.FixtureRequest
) -> None:
    async with engine.connect() as conn:
        listed = [
            r
            for r in (await conn.execute(sa.select(models.totals))).all()
            if readmodel._listed(r) and r.participant_kind == "person"
        ]
        versions = [  # every row has a version in force from START on, on the list or not
            r for r in (await conn.execute(sa.select(models.totals))).all() if r.participant_kind == "person"
        ]
        orders = [(EARLIEST_FULFILMENT,), (FEWER_MISSED, EARLIEST_FULFILMENT), (FEWER_MISSED,), ()]
        for tie_breakers in [(EARLIEST_FULFILMENT, FEWER_MISSED), *orders]:
            rules = domain.Rules(tie_breakers=tie_breakers)
            for at, among in ((None, listed), (START + timedelta(days=1), versions)):
                keys = {r.participant_id: _rank_key(r, tie_breakers) for r in among}
                in_order = sorted(keys, key=lambda p: (keys[p], p))
                for offset in (0, 1, 37, 1000, len(in_order) - 10, len(in_order)):
                    page = await readmodel.ranked(
                        conn, 0, "t-rank", "2023", "person", rules, offset=offset, limit=25, at=at
                    )
                    assert [r.participant_id for _, r in page] == in_order[offset : offset + 25]
                    for n, r in page:  # 1 + those strictly ahead; equals share a rank, across pages too
                        assert n == 1 + sum(1 for k in keys.values() if k < keys[r.participant_id]), r
        rules = domain.Rules(tie_breakers=(EARLIEST_FULFILMENT, FEWER_MISSED))
        with statements_on(engine) as statements:
            await readmodel.ranked(conn, 0, "t-rank", "2023", "person", rules, offset=1000, limit=50)
        (ranking, ranking_params), (rows, rows_params), (ahead, ahead_params) = statements
        if engine.dialect.name == "sqlite":  # (PostgreSQL may well scan: the ranking reads most of the table)
            for statement, params in ((ranking, ranking_params), (ahead, ahead_params)):
                for plan in await plans(conn, statement, params):  # from the list's index alone
                    assert [p for p in plan if "totals" in p] == [
                        p for p in plan if p.startswith("SEARCH totals USING COVERING INDEX ix_totals_rank")
                    ], plan
            # in the index's order from the page's offset: the list is not sorted (nor ranked) whole
            assert not any("TEMP B-TREE" in p for p in await plans(conn, ranking, ranking_params))
        # then the page's rows, by primary key (a planner that knows the table is small may scan it instead)
        knows = request.node.callspec.params["engine"] != "postgresql"
        for plan in await plans(conn, rows, rows_params):
            text = "\n".join(plan)
            if engine.dialect.name == "sqlite":
                assert all("participant_id=?" in p for p in plan if "totals" in p), plan
            elif not knows:
                assert "Index" in text and "participant_id" in text and "Seq Scan" not in text, text
