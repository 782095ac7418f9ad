"""Periodic work reads what is due by its index, not every row it might one day be due for (issue 16): the
delivery loop's next rows of a lane, and the deadline clock's extended assignments — each a range of its own
index on SQLite and PostgreSQL, whatever the planner knows (``tests/support/plans.py``). Both once read a whole
backlog at every pass: the loop sorted every pending e-mail (34,000 after a 20,000-official rush) to send 100,
and the clock read every assignment of each part (20,000) to find the few extended."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from services.campaign import models as campaign
from services.campaign.usecases.deadlines import extended_assignments
from services.notify import domain
from services.notify import models as notify
from services.notify.usecases.delivery import due_in_lane
from tests.support.plans import KNOWLEDGE, compiled, holding, plans

ROWS = 2000
START = datetime(2023, 10, 1, tzinfo=UTC)
NOW = START + timedelta(days=30)


def _whole_table(plan: list[str]) -> bool:
    text = "\n".join(plan)
    return any(s in text for s in ("SCAN", "Seq Scan", "TEMP B-TREE", "Sort"))


@pytest.fixture(params=KNOWLEDGE)
async def deliveries(request, tmp_path: Path, test_servers) -> AsyncIterator[AsyncEngine]:  # type: ignore[no-untyped-def]
    def row(i: int, lane: int, status: str) -> dict[str, object]:
        return {
            "id": f"d-{lane}-{status}-{i:05d}",
            "tenant": "t",
            "channel": domain.EMAIL,
            "template": "submission.received" if lane == domain.RECEIPT_LANE else "reward.priority.changed",
            "recipient": f"p-{i:05d}",
            "to_address": f"p{i}@example.vn",
            "subject": "s",
            "text": "t",
            "cause_event_id": f"e-{i}",
            "status": status,
            "attempts": 0,
            "lane": lane,
            "next_attempt_at": START + timedelta(seconds=i),
            "created_at": START,
        }

    rows = [row(i, domain.OTHER_LANE, "pending") for i in range(ROWS)]  # the backlog behind the receipts
    rows += [row(i, domain.RECEIPT_LANE, "sent") for i in range(ROWS)]
    rows += [row(i, domain.RECEIPT_LANE, "pending") for i in range(0, ROWS, 400)]  # five receipts just in
    eng = await holding(request.param, tmp_path, test_servers, notify.deliveries, rows)
    yield eng
    await eng.dispose()


async def test_the_delivery_loop_reads_the_next_rows_of_each_lane_in_order_from_its_index(
    deliveries: AsyncEngine,
) -> None:
    async with deliveries.connect() as conn:
        receipts = (await conn.execute(due_in_lane(domain.RECEIPT_LANE, NOW, NOW, ["email"], 100))).all()
        assert [r.recipient for r in receipts] == [f"p-{i:05d}" for i in range(0, ROWS, 400)]
        others = (await conn.execute(due_in_lane(domain.OTHER_LANE, NOW, NOW, ["email"], 95))).all()
        assert [r.recipient for r in others] == [
            f"p-{i:05d}" for i in range(95)
        ]  # in the order they fell due
        for lane in domain.LANES:
            for plan in await plans(conn, *compiled(conn, due_in_lane(lane, NOW, NOW, ["email"], 100))):
                assert "ix_deliveries_lane" in "\n".join(plan), plan
                assert not _whole_table(plan), plan


@pytest.fixture(params=KNOWLEDGE)
async def assignments(request, tmp_path: Path, test_servers) -> AsyncIterator[AsyncEngine]:  # type: ignore[no-untyped-def]
    rows = [
        {
            "id": f"a-{part}-{i:05d}",
            "tenant": "t",
            "edition": "2023",
            "part": part,
            "part_kind": "experience_report",
            "assignee_kind": "person",
            "assignee_id": f"p-{i:05d}",
            "unit_id": f"u-{i % 40}",
            "deadline": START + timedelta(days=20),
            "created_at": START,
            "standing": "open",
            "standing_since": START,
            # three extended: one whose extension has passed by NOW, two still running
            "extended_to": START + timedelta(days=20 + i // 500 * 11)
            if i % 500 == 7 and part == "experience"
            else None,
        }
        for part in ("experience", "initiative")
        for i in range(ROWS)
    ]
    eng = await holding(request.param, tmp_path, test_servers, campaign.assignments, rows)
    yield eng
    await eng.dispose()


async def test_the_clock_finds_extended_assignments_by_their_index(assignments: AsyncEngine) -> None:
    async with assignments.connect() as conn:
        every = {r.assignee_id for r in await conn.execute(extended_assignments())}
        assert every == {"p-00007", "p-00507", "p-01007", "p-01507"}
        passed = [(r.part, r.assignee_id) for r in await conn.execute(extended_assignments(until=NOW))]
        assert passed == [("experience", "p-00007")]  # extended to 21/10: by NOW (31/10); the others later
        for statement in (extended_assignments(), extended_assignments(until=NOW)):
            for plan in await plans(conn, *compiled(conn, statement)):
                assert "ix_assignments_extended_to" in "\n".join(plan), plan
                assert not _whole_table(plan), plan
