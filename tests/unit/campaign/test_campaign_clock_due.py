"""The deadline clock touches only what is due (issue 16), on SQLite with the 2023 edition: reminders come from
the indexed agenda, once each; an idle look at the clock reads one row and no assignment; a deadline's misses are
recorded in bounded chunks (here three assignments a transaction) and still once each, with one summary."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa

from services.campaign import models
from services.campaign.usecases import deadlines
from services.campaign.usecases.publishing import import_directory, publish_edition
from shared.clock import Clock
from shared.db import make_engine
from shared.documents import load_directory, load_edition
from shared.lease import Lease
from shared.outbox import Outbox
from shared.settings import Settings

SEED = Path(__file__).resolve().parents[3] / "deploy" / "seed" / "soctrang-stnmt-2023"
PUBLISHED_AT = datetime.fromisoformat("2023-10-01T09:00:00+07:00")
TENANT, EDITION = "soctrang-stnmt", "2023"
DEADLINE = datetime.fromisoformat("2023-10-26T00:00:00+07:00")


@pytest.fixture
async def clock_rt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Any]:
    monkeypatch.setenv("HOITHI_CAMPAIGN_CLOCK_CHUNK", "3")
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'campaign.db'}")
    async with engine.begin() as conn:
        await conn.run_sync(models.metadata.create_all)
    clock = Clock(simulated_at=datetime.fromisoformat("2023-10-24T08:00:00+07:00"), rate=0.0)
    outbox = Outbox(models.backbone, Settings(env="test"), "campaign", clock)
    directory = load_directory(SEED / "directory.yaml")
    async with engine.begin() as conn:
        await import_directory(conn, outbox, directory, PUBLISHED_AT)
        await publish_edition(conn, outbox, load_edition(SEED / "edition.yaml"), directory, PUBLISHED_AT)
    statements: list[str] = []
    sa.event.listen(engine.sync_engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    rt = SimpleNamespace(
        engine=engine,
        backbone=models.backbone,
        outbox=outbox,
        extra={},
        clock=clock,
        now=clock.now,
        name="campaign",
        statements=statements,
    )
    yield rt
    await engine.dispose()


async def _events(rt: Any, type_: str) -> list[dict[str, Any]]:
    o = models.backbone.outbox
    async with rt.engine.connect() as conn:
        rows = (await conn.execute(sa.select(o.c.payload).where(o.c.event_type == type_))).scalars()
        return [json.loads(p)["data"] for p in rows]


async def _open(rt: Any, *parts: str) -> set[str]:
    a = models.assignments
    async with rt.engine.connect() as conn:
        q = sa.select(a.c.id).where(a.c.part.in_(parts), a.c.status == "open")
        return set((await conn.execute(q)).scalars())


async def _settle(rt: Any, lease: Lease) -> None:
    """Look until a look finds nothing to do (each full pass's own writes make the next look a full pass)."""
    for _ in range(5):
        if not await deadlines.look(rt, lease):
            return
    raise AssertionError("the clock keeps running full passes with nothing due")


async def test_reminders_come_from_the_agenda_once_and_an_idle_look_reads_no_assignment(
    clock_rt: Any,
) -> None:
    rt = clock_rt
    lease = Lease(rt.backbone.leases, deadlines.CLOCK_LEASE, ttl=60)
    assert await lease.hold(rt.engine)
    # 24/10 08:00: the P3D reminder (due 23/10 00:00) is the latest due, one per open clocked assignment.
    await _settle(rt, lease)
    first = await _events(rt, "deadline.approaching")
    clocked = await _open(rt, "initiative", "experience")
    assert Counter(e["assignment_id"] for e in first) == Counter(dict.fromkeys(clocked, 1))
    assert {e["offset"] for e in first} == {"P3D"}

    # Nothing due until the P1D instant: a look costs one indexed read, no assignment, no edition.
    rt.statements.clear()
    passes = deadlines.status_of(rt).passes
    assert not await deadlines.look(rt, lease)
    assert deadlines.status_of(rt).passes == passes
    reads = [q for q in rt.statements if not q.startswith("BEGIN")]
    assert len(reads) == 1 and "assignments" not in reads[0] and "editions" not in reads[0]
    assert deadlines.status_of(rt).next_due == datetime.fromisoformat("2023-10-25T00:00:00+07:00")

    # 25/10 00:00: the P1D reminder, once each; a second pass at the same instant sends nothing.
    rt.clock.set(datetime.fromisoformat("2023-10-25T00:00:00+07:00"), rate=0.0)
    await _settle(rt, lease)
    second = [e for e in await _events(rt, "deadline.approaching") if e["offset"] == "P1D"]
    assert Counter(e["assignment_id"] for e in second) == Counter(dict.fromkeys(clocked, 1))


async def test_a_deadline_decided_in_chunks_misses_each_assignee_once_with_one_summary(clock_rt: Any) -> None:
    rt = clock_rt
    lease = Lease(rt.backbone.leases, deadlines.CLOCK_LEASE, ttl=60)
    assert await lease.hold(rt.engine)
    experience = await _open(rt, "experience")
    assert len(experience) > 3  # more than one chunk
    rt.clock.set(DEADLINE, rate=0.0)
    await deadlines.look(rt, lease)
    assert deadlines.status_of(rt).waiting  # no intake.closed yet: nothing decided, every look a full pass
    assert await _events(rt, "deadline.missed") == []
    async with rt.engine.begin() as conn:  # what campaign's handler stores for submissions' intake.closed
        await conn.execute(
            models.intake_closures.insert(),
            [
                {
                    "tenant": TENANT,
                    "edition": EDITION,
                    "part": part,
                    "deadline": DEADLINE,
                    "assignee_id": "",
                    "accepted_on_time": 0,
                    "arrived_at": DEADLINE,
                }
                for part in ("initiative", "experience")
            ],
        )
    await _settle(rt, lease)
    missed = Counter(e["assignment_id"] for e in await _events(rt, "deadline.missed"))
    assert missed == Counter(dict.fromkeys(experience | await _open(rt, "initiative"), 1))
    passed = {e["part"]: e for e in await _events(rt, "deadline.passed")}
    assert set(passed) == {"initiative", "experience"}
    exp = passed["experience"]
    assert exp["assigned"] == len(experience) and exp["fulfilled"] == 0
    assert sum(len(people) for people in exp["missed_by_unit"].values()) == len(experience)
    d = models.deadline_decisions
    async with rt.engine.connect() as conn:
        decided = (await conn.execute(sa.select(d.c.part, d.c.missed))).all()
    assert dict(decided) == {"initiative": len(await _open(rt, "initiative")), "experience": len(experience)}
