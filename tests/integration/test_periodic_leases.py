"""Periodic work runs once per deployment: two rewards replicas (two consumers and two standings-job runners)
on one database. Only the holder of the standings lease runs a pass; a holder that stalls past the lease's
expiry loses it to the other, and its late commit of an older computation is refused — no stale standings, no
participant announced "back" onto the list they left."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from services.rewards import models, projection
from shared.lease import LeaseLost
from tests.support.rewards import EDITION, NOW, TENANT, Rewards, all_facts, rewards_on
from tests.support.wait import eventually

TTL = 1.0  # seconds: a short lease, so the stalled holder's expiry comes quickly


def _url(dialect: str, request: Any, tmp_path: Path) -> str:
    if dialect == "postgresql":
        return str(request.getfixturevalue("test_servers").create_database("lease"))
    return f"sqlite+aiosqlite:///{tmp_path / 'rewards.db'}"


@pytest.fixture
async def replicas(request: Any, tmp_path: Path) -> AsyncIterator[tuple[Rewards, Rewards]]:
    """Two rewards replicas on one PostgreSQL database. (On SQLite the list is computed on a connection that
    begins IMMEDIATE, so a stalled pass blocks every writer and no takeover can happen meanwhile.)"""
    url = _url("postgresql", request, tmp_path)
    a = await rewards_on(url, lease_ttl=TTL)
    b = await rewards_on(url, create=False, lease_ttl=TTL)
    yield a, b
    await a.engine.dispose()
    await b.engine.dispose()


@pytest.mark.parametrize("dialect", ["postgresql", "sqlite"])
async def test_one_holder_at_a_time_and_the_expired_holders_writes_are_refused(
    dialect: str, request: Any, tmp_path: Path
) -> None:
    url = _url(dialect, request, tmp_path)
    a = await rewards_on(url, lease_ttl=TTL)
    b = await rewards_on(url, create=False, lease_ttl=TTL)
    try:
        assert await a.lease.hold(a.engine)
        assert not await b.lease.hold(b.engine)
        assert await a.lease.hold(a.engine)  # a renewal
        async with a.lease.begin(a.engine) as conn:  # a fenced write of the holder commits
            await conn.execute(models.dirty.insert().values(tenant=TENANT, edition="held", since=NOW))
        # a stops renewing; once its lease expires b takes it over, with the next generation.
        await eventually(lambda: b.lease.hold(b.engine), timeout=15, message="b took the lease over")
        assert b.lease.generation == (a.lease.generation or 0) + 1
        with pytest.raises(LeaseLost):
            async with a.lease.begin(a.engine) as conn:
                await conn.execute(models.dirty.insert().values(tenant=TENANT, edition="stale", since=NOW))
        assert not a.lease.held and not await a.lease.hold(a.engine)
        async with a.engine.connect() as conn:
            kept = (await conn.execute(sa.select(models.dirty.c.edition))).scalars().all()
        assert kept == ["held"]  # nothing of the stale holder's transaction
        await b.lease.release(b.engine)  # given up at shutdown: a takes over at once, not after the ttl
        assert await a.lease.hold(a.engine)
    finally:
        await a.engine.dispose()
        await b.engine.dispose()


async def _told_standings(r: Rewards) -> dict[str, int | None]:
    """participant → rank, as the standings job last told others."""
    s = models.standings
    async with r.engine.connect() as conn:
        rows = (
            await conn.execute(
                sa.select(s.c.participant_id, s.c.rank).where(s.c.tenant == TENANT, s.c.edition == EDITION)
            )
        ).all()
    return {r.participant_id: r.rank for r in rows}


async def test_a_stalled_standings_holder_loses_the_lease_and_its_late_commit_is_refused(
    replicas: tuple[Rewards, Rewards], monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = replicas
    facts = all_facts()
    withdrawal = next(i for i, f in enumerate(facts) if f.type == "submission.withdrawn")
    withdrawn_by = facts[withdrawal].data["author_id"]  # p-0006: listed until the withdrawal
    await a.deliver(facts[:withdrawal])

    # One runner at a time: a holds the lease, b stands by.
    assert await a.lease.hold(a.engine)
    assert not await b.lease.hold(b.engine)
    first = a.lease.generation

    # a's pass computes the list before the withdrawal, then stalls (a GC pause, a SIGSTOP) before writing.
    computed, resume = asyncio.Event(), asyncio.Event()
    real_compute = projection.compute

    async def compute_then_stall(*args: Any, **kwargs: Any) -> projection.Computed:
        c = await real_compute(*args, **kwargs)
        if asyncio.current_task() is stalled:
            computed.set()
            await resume.wait()
        return c

    monkeypatch.setattr(projection, "compute", compute_then_stall)
    stalled = asyncio.create_task(
        projection.refresh_standings(a.engine, models.backbone, models.copies, a.outbox, NOW, lease=a.lease)
    )
    await asyncio.wait_for(computed.wait(), 30)

    # Meanwhile the withdrawal and the rest arrive; a renews nothing, so b takes the lease over once it expires.
    await b.deliver(facts)
    await eventually(lambda: b.lease.hold(b.engine), timeout=15, message="b took the lease over")
    assert b.lease.generation == (first or 0) + 1
    assert await b.standings_pass() > 0
    newer = await _told_standings(b)
    assert withdrawn_by not in newer

    # a wakes up with its older list: the fence refuses its commit, nothing of it is written.
    resume.set()
    with pytest.raises(LeaseLost):
        await stalled
    assert not a.lease.held
    assert await _told_standings(b) == newer  # no stale standings
    told = await b.emitted()
    assert [e for e in told if e["subject"] == withdrawn_by] == []  # never announced "back" on the list
    assert len({e["id"] for e in told}) == len(told)
    # b still holds the lease and its next pass has nothing left to tell.
    assert await b.standings_pass() == 0
    assert not await a.lease.hold(a.engine)
