"""campaign reads one assignee's receipts of a part, and a submission's other parts, at every receipt it applies
(issue 16): each by an index to exactly those rows, whatever the planner knows, on SQLite and PostgreSQL — not
by ranging over every receipt of the part or of the tenant, a cost that grew with the contest. The table has one
index besides its key, so that no estimate can tie two indexes: with two led by (tenant, edition, part),
PostgreSQL before its first VACUUM priced both at one row, and the tie went to the part's whole range."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from services.campaign import models
from services.campaign.usecases.assignments import receipts_counting
from services.campaign.usecases.deadlines import receipts_before
from services.campaign.usecases.receipts import other_parts
from tests.support.plans import KNOWLEDGE, compiled, holding, plans

ASSIGNEES = 1500
START = datetime(2023, 10, 1, tzinfo=UTC)


@pytest.fixture(params=KNOWLEDGE)
async def engine(request, tmp_path: Path, test_servers) -> AsyncIterator[AsyncEngine]:  # type: ignore[no-untyped-def]
    rows = [
        {
            "submission_id": f"sub-{tenant}-{part}-{i:05d}",
            "tenant": tenant,
            "edition": "2023",
            "part": part,
            "assignee_id": f"p-{i:05d}",
            "received_at": START + timedelta(minutes=i),
        }
        for tenant in ("t-one", "t-two")
        for part in ("experience", "initiative")
        for i in range(ASSIGNEES)
    ]
    # a selected initiative is also a receipt of the selection part
    rows.append({**rows[-1], "part": "selection"})
    eng = await holding(request.param, tmp_path, test_servers, models.receipts, rows)
    yield eng
    await eng.dispose()


async def test_an_assignees_receipts_of_a_part_are_read_by_their_own_index(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        mine = receipts_counting("t-one", "2023", "experience", "p-00007")
        assert (await conn.execute(mine)).scalars().all() == ["sub-t-one-experience-00007"]
        everyone = receipts_counting("t-one", "2023", "experience", None)  # a council's selection part
        assert len((await conn.execute(everyone)).scalars().all()) == ASSIGNEES
        for plan in await plans(conn, *compiled(conn, mine)):
            _ranges_over(plan, "assignee_id")


async def test_a_deadlines_receipts_are_counted_from_the_index(engine: AsyncEngine) -> None:
    """The clock counts the receipts applied from before a deadline: one assignee's (an extended deadline) as
    their own range, the part's from the part's range — from the index, never the table."""
    deadline = START + timedelta(minutes=100)
    async with engine.connect() as conn:
        theirs = receipts_before("t-one", "2023", "experience", deadline, "p-00007")
        assert (await conn.execute(theirs)).scalar_one() == 1
        late = receipts_before("t-one", "2023", "experience", deadline, "p-00700")
        assert (await conn.execute(late)).scalar_one() == 0
        everyone = receipts_before("t-one", "2023", "experience", deadline, "")
        assert (await conn.execute(everyone)).scalar_one() == 100
        for plan in await plans(conn, *compiled(conn, theirs)):
            _ranges_over(plan, "assignee_id")
        for plan in await plans(conn, *compiled(conn, everyone)):
            _ranges_over(plan, "part")


def _ranges_over(plan: list[str], column: str) -> None:
    """``plan`` reads ``ix_receipts_part_assignee`` alone, its range bounded up to ``column``."""
    text = "\n".join(plan)
    assert "ix_receipts_part_assignee" in text, plan
    assert "SCAN" not in text and "Seq Scan" not in text and "Bitmap Heap" not in text, plan
    bounds = [
        "".join(c for c in line.replace("::text", "") if c not in " ()")
        for line in plan
        if "Index Cond" in line or "USING" in line
    ]
    assert bounds and all(f"{column}=" in line for line in bounds), plan


async def test_a_submissions_other_parts_are_read_by_its_primary_key(engine: AsyncEngine) -> None:
    selected = f"sub-t-two-initiative-{ASSIGNEES - 1:05d}"
    async with engine.connect() as conn:
        found = (await conn.execute(other_parts(selected, "initiative"))).all()
        assert [(r.part, r.tenant) for r in found] == [("selection", "t-two")]
        assert (await conn.execute(other_parts("sub-t-one-experience-00001", "experience"))).all() == []
        for plan in await plans(conn, *compiled(conn, other_parts(selected, "initiative"))):
            text = "\n".join(plan)
            assert "ix_receipts_part" not in text and "SCAN" not in text and "Seq Scan" not in text, plan
            assert "receipts_pkey" in text or "sqlite_autoindex_receipts" in text, plan
