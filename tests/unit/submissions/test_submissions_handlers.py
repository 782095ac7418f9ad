"""Submissions' handlers fold facts so that redelivery and reordering never roll state backwards."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from types import SimpleNamespace

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from services.submissions import handlers, models
from shared.events.envelope import make_event


def _extended(new: str, sequence: int) -> object:
    return make_event(
        "deadline.extended",
        {
            "assignment_id": "a-1",
            "part": "experience",
            "assignee_kind": "person",
            "assignee_id": "p-0019",
            "previous_deadline": "2023-10-26T00:00:00+07:00",
            "new_deadline": new,
            "reason": "Đi công tác",
            "approved_by": "p-0003",
        },
        source="campaign",
        tenant="soctrang-stnmt",
        subject="a-1",
        sequence=sequence,
        time=datetime.fromisoformat("2023-10-24T08:00:00+07:00"),
        edition="2023",
    )


async def test_a_redelivered_older_extension_never_shortens_a_newer_one(tmp_path: Path) -> None:
    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'h.db'}")
    async with engine.begin() as conn:
        await conn.run_sync(models.metadata.create_all)
    apply = handlers.build(SimpleNamespace(copies=models.copies))["facts"]["deadline.extended"]  # type: ignore[arg-type]
    async with engine.begin() as conn:
        await apply(conn, _extended("2023-10-31T00:00:00+07:00", 2))  # type: ignore[arg-type]
        await apply(conn, _extended("2023-10-28T00:00:00+07:00", 1))  # type: ignore[arg-type]
        deadline = (await conn.execute(sa.select(models.extensions.c.deadline))).scalar_one()
    assert deadline == datetime.fromisoformat("2023-10-31T00:00:00+07:00")
    async with engine.begin() as conn:
        await apply(conn, _extended("2023-11-02T00:00:00+07:00", 3))  # type: ignore[arg-type]
        deadline = (await conn.execute(sa.select(models.extensions.c.deadline))).scalar_one()
    assert deadline == datetime.fromisoformat("2023-11-02T00:00:00+07:00")
    await engine.dispose()
