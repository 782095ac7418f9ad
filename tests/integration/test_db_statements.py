"""The statements ``shared/db.py`` builds once and runs with their values as parameters (hot statements) mean
on both databases what the statements built at each call meant: an insert that keeps the first row, an upsert
that keeps the newest fact or updates only the columns named, reads, deletes and updates by equal columns —
and a deterministic fact emitted twice, even by two writers at once, is recorded once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from shared.clock import Clock
from shared.db import (
    backbone_tables,
    delete_rows,
    insert_if_absent,
    make_engine,
    select_rows,
    update_rows,
    upsert_newer,
    upsert_row,
)
from shared.outbox import Outbox
from shared.settings import Settings
from tests.support.wait import eventually, waiting_on_a_lock

AT = datetime(2023, 10, 20, 2, 0, tzinfo=UTC)
metadata = sa.MetaData()
things = sa.Table(
    "things",
    metadata,
    sa.Column("tenant", sa.String(50), primary_key=True),
    sa.Column("id", sa.String(50), primary_key=True),
    sa.Column("sequence", sa.Integer, nullable=False),
    sa.Column("doc", sa.Text, nullable=False),
    sa.Column("note", sa.Text),
)
backbone = backbone_tables(metadata)


@pytest.fixture(params=["sqlite", "postgresql"])
async def engine(request: Any, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}"
    else:
        url = request.getfixturevalue("test_servers").create_database("db_statements")
    engine = make_engine(url)
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    yield engine
    await engine.dispose()


async def _rows(engine: AsyncEngine) -> list[tuple[Any, ...]]:
    async with engine.connect() as conn:
        return [tuple(r) for r in await select_rows(conn, things, order_by=("tenant", "id"))]


async def test_insert_if_absent_keeps_the_first_row_and_says_whether_it_inserted(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        first = await insert_if_absent(
            conn, things, {"tenant": "a", "id": "1", "sequence": 1, "doc": "first"}
        )
        again = await insert_if_absent(
            conn, things, {"tenant": "a", "id": "1", "sequence": 2, "doc": "second"}
        )
        other = await insert_if_absent(
            conn, things, {"tenant": "b", "id": "1", "sequence": 1, "doc": "other"}
        )
    assert (first, again, other) == (True, False, True)
    assert await _rows(engine) == [("a", "1", 1, "first", None), ("b", "1", 1, "other", None)]


async def test_upsert_newer_keeps_the_fact_of_the_highest_sequence_in_any_order(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        written = [
            await upsert_newer(conn, things, {"tenant": "a", "id": "1", "sequence": s, "doc": f"v{s}"})
            for s in (2, 1, 3, 3)
        ]
    assert written == [1, 0, 1, 0]
    assert await _rows(engine) == [("a", "1", 3, "v3", None)]


async def test_upsert_row_updates_only_the_columns_named(engine: AsyncEngine) -> None:
    row = {"tenant": "a", "id": "1", "sequence": 1, "doc": "d", "note": "n"}
    async with engine.begin() as conn:
        await upsert_row(conn, things, row, update=("note",))  # absent: inserted whole
        await upsert_row(conn, things, row | {"sequence": 9, "doc": "new", "note": "x"}, update=("note",))
    assert await _rows(engine) == [("a", "1", 1, "d", "x")]


async def test_select_delete_and_update_by_equal_columns(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        for tenant, id_, seq in [("a", "2", 2), ("a", "1", 1), ("b", "1", 5)]:
            await insert_if_absent(conn, things, {"tenant": tenant, "id": id_, "sequence": seq, "doc": "d"})
        mine = await select_rows(conn, things, order_by=("id",), tenant="a")
        assert [r.id for r in mine] == ["1", "2"]
        assert (
            await update_rows(conn, things, {"tenant": "a", "id": "2"}, {"doc": "changed", "note": None}) == 1
        )
        assert await update_rows(conn, things, {"tenant": "c"}, {"doc": "nobody"}) == 0
        assert await delete_rows(conn, things, tenant="b") == 1
    assert await _rows(engine) == [("a", "1", 1, "d", None), ("a", "2", 2, "changed", None)]
    async with engine.begin() as conn:  # a bound "= NULL" never matches: refused, not silently nothing
        with pytest.raises(ValueError, match="note"):
            await select_rows(conn, things, note=None)
        with pytest.raises(ValueError, match="note"):
            await delete_rows(conn, things, tenant="a", note=None)


async def test_a_deterministic_fact_emitted_twice_is_recorded_once(engine: AsyncEngine) -> None:
    """Two replicas deciding the same fact (a miss, a ``notification.sent``): on PostgreSQL the second waits for
    the first one's row and then records nothing — no unique violation to retry; on SQLite writers are serial."""
    outbox = Outbox(backbone, Settings(), "campaign", Clock())
    data = {"part": "experience", "deadline": AT, "assigned": 1, "fulfilled": 0, "missed_by_unit": {}}

    async def decide(conn: AsyncConnection) -> bool:
        env = await outbox.emit(
            conn, "deadline.passed", data, tenant="t", subject="experience", time=AT, event_id="d-1"
        )
        return env is not None

    if engine.dialect.name == "sqlite":
        results = []
        for _ in range(2):
            async with engine.begin() as conn:
                results.append(await decide(conn))
    else:
        async with engine.connect() as one, engine.connect() as two:
            await one.begin()
            first = await decide(one)
            await two.begin()
            late = asyncio.create_task(decide(two))
            await eventually(lambda: waiting_on_a_lock(engine), timeout=10, message="the second writer waits")
            await one.commit()
            results = [first, await asyncio.wait_for(late, timeout=10)]
            await two.commit()
    assert results == [True, False]
    async with engine.connect() as conn:
        kept = (await conn.execute(sa.select(backbone.outbox.c.event_id))).scalars().all()
    assert kept == ["d-1"]
