"""Periodic work runs once per deployment: two replicas of a service on one database, SQLite and PostgreSQL.

The rewards lease: one holder at a time, and an expired holder's writes are refused. rewards' standings are
kept by its consumers in each fact's transaction: two replicas consuming at once keep one list and tell each
eligibility change once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from services.notify import app as notify_app
from services.notify import models as notify_models
from services.notify.usecases import timed
from services.rewards import models
from services.submissions import app as submissions_app
from services.submissions import models as submissions_models
from services.submissions.usecases import intake, objects
from shared.lease import Lease, LeaseLost
from shared.migrate import upgrade
from shared.service import Runtime, ServiceSpec, build_runtime
from shared.settings import Settings, service_settings
from tests.support.notify import seeded_notify
from tests.support.rewards import (
    EXPECTED_PERSONS,
    NOW,
    TENANT,
    VN,
    Rewards,
    all_facts,
    edition_published,
    rewards_on,
)
from tests.support.wait import eventually

pytestmark = pytest.mark.serial  # 1 s leases: a loaded machine would miss renewals

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


async def test_two_replicas_consuming_at_once_keep_one_list_and_tell_each_eligibility_change_once(
    replicas: tuple[Rewards, Rewards],
) -> None:
    """rewards' standings are kept by its consumers, in each fact's transaction (no standings job to fence any
    more: the lease now only runs the re-pricing resumer). Two replicas folding at once on PostgreSQL take
    turns on each participant's totals row, so the list is the one worked out by hand, and each eligibility
    change is told once, the last word being the list's."""
    a, b = replicas
    facts = all_facts()
    await asyncio.gather(a.deliver(facts[0::2], batch=3), b.deliver(facts[1::2], batch=3))
    await asyncio.gather(a.deliver(facts[1::2], batch=5), b.deliver(facts[0::2], batch=5))  # redelivered
    pl = await b.listing()
    assert [(p.person_id, p.rank, p.points) for p in pl.persons] == [
        (pid, rank, points) for pid, rank, points, *_ in EXPECTED_PERSONS
    ]
    told = await a.emitted()
    assert len({e["id"] for e in told}) == len(told)
    last: dict[str, list[str]] = {}
    for e in sorted(told, key=lambda e: e["sequence"]):
        assert e["data"]["eligibility"] != last.get(e["subject"], []), "told without an eligibility change"
        last[e["subject"]] = e["data"]["eligibility"]
    titled = {p.person_id: sorted(x.key for x in p.eligibility) for p in pl.persons if p.eligibility}
    titled |= {u.unit_id: sorted(x.key for x in u.eligibility) for u in pl.units if u.eligibility}
    assert {k: v for k, v in last.items() if v} == titled


# ------------------------------------------------------------------------------------------------------------
# Every other periodic job of the deployment: notify's timed lists and digests, submissions' intake closing and
# attachment collector. Two replicas — two runtimes of the service on one database, each running the job's real
# loop — on SQLite and PostgreSQL.

SEEDED_AT = datetime(2023, 10, 20, 8, 0, 30, tzinfo=VN)  # 20/10/2023 08:00:30: the day's lists are due
LOOP_TTL = 3.0  # the running loops' lease: renewed every second, so a loaded machine does not lose it


@dataclass
class Job:
    """A periodic job as ``ServiceSpec.background`` runs it, and the pass its loop calls (recorded per replica)."""

    service: str
    spec: ServiceSpec
    loop: Callable[[Runtime], Awaitable[None]]
    module: Any
    pass_name: str  # the function one pass of the loop calls: monkeypatched to record who called it
    lease_key: str  # where the loop keeps its lease (``rt.extra``)


JOBS = {
    "notify-timed": Job("notify", notify_app.SPEC, timed.timed_loop, timed, "run_due", "timed_lease"),
    "submissions-intake-closing": Job(
        "submissions", submissions_app.SPEC, intake.closing_job, intake, "close_due", "closing_lease"
    ),
    "submissions-attachment-collector": Job(
        "submissions", submissions_app.SPEC, objects.collector_job, objects, "collect", "collector_lease"
    ),
}


async def _two_runtimes(
    service: str,
    spec: ServiceSpec,
    dialect: str,
    request: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> tuple[Runtime, Runtime]:
    """Two replicas of ``service`` on one migrated database, sharing the simulated clock's file."""
    url = _url(dialect, request, tmp_path)
    await asyncio.to_thread(upgrade, service, url)
    monkeypatch.setenv(f"HOITHI_{service.upper()}_DATABASE_URL", url)
    settings = Settings(
        env="test",
        data_dir=tmp_path,
        clock_simulated_at=SEEDED_AT,
        clock_file=tmp_path / "clock.json",
        lease_ttl=LOOP_TTL,
    )
    a = build_runtime(spec, settings, service_settings(service, settings))
    b = build_runtime(spec, settings, service_settings(service, settings))
    return a, b


async def _lease_row(rt: Runtime, name: str) -> Any:
    t = rt.backbone.leases
    async with rt.engine.connect() as conn:
        return (await conn.execute(sa.select(t).where(t.c.name == name))).one()


@pytest.mark.parametrize("dialect", ["postgresql", "sqlite"])
@pytest.mark.parametrize("job_name", list(JOBS))
async def test_one_replica_runs_the_job_and_the_other_takes_over_once_its_lease_expires(
    job_name: str, dialect: str, request: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = JOBS[job_name]
    a, b = await _two_runtimes(job.service, job.spec, dialect, request, tmp_path, monkeypatch)
    name = {id(a): "a", id(a.engine): "a", id(b): "b", id(b.engine): "b"}
    passes = {"a": 0, "b": 0}

    async def recorded(first: Any, *args: Any, **kwargs: Any) -> Any:
        passes[name[id(first)]] += 1
        return [] if job.pass_name != "run_due" else 0

    monkeypatch.setattr(job.module, job.pass_name, recorded)
    monkeypatch.setattr(objects, "COLLECT_EVERY", 0.2)
    monkeypatch.setattr(objects, "store_of", lambda rt: asyncio.sleep(0, result=None))
    tasks = {"a": asyncio.create_task(job.loop(a)), "b": asyncio.create_task(job.loop(b))}
    try:
        # Both loops run; only the lease's holder passes, again and again, while the other stands by.
        await eventually(lambda: max(passes.values()) >= 4, timeout=30, message="the holder passes")
        holder = "a" if passes["a"] else "b"
        standby = "b" if holder == "a" else "a"
        assert passes[standby] == 0, passes
        rts = {"a": a, "b": b}
        held: Lease = rts[holder].extra[job.lease_key]
        assert held.held

        # The holder dies (SIGKILL: its lease is not given up); the standby takes over only once it expired.
        monkeypatch.setattr(held, "release", lambda engine: asyncio.sleep(0))
        tasks[holder].cancel()
        await asyncio.gather(tasks[holder], return_exceptions=True)
        before = await _lease_row(rts[holder], job_name)
        await eventually(lambda: passes[standby] >= 2, timeout=30, message="the standby took the job over")
        after = await _lease_row(rts[standby], job_name)
        assert after.generation == before.generation + 1
        assert after.holder == rts[standby].extra[job.lease_key].holder != before.holder
        assert after.acquired_at >= before.expires_at  # not before the dead holder's lease expired
    finally:
        for t in tasks.values():
            t.cancel()
        await asyncio.gather(*tasks.values(), return_exceptions=True)
        await a.engine.dispose()
        await b.engine.dispose()


@pytest.mark.parametrize("dialect", ["postgresql", "sqlite"])
async def test_a_stalled_timed_pass_sends_no_stale_list_after_its_successors(
    dialect: str, request: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A replica reads the clock (20/10), stalls past its lease; its successor sends the 21/10 lists. The stalled
    pass wakes with yesterday's instant: without the fence the officials would get the 20/10 list after 21/10's."""
    a, b = await _two_runtimes("notify", notify_app.SPEC, dialect, request, tmp_path, monkeypatch)
    try:
        await seeded_notify(a)
        la = Lease(a.backbone.leases, timed.TIMED_LEASE, ttl=TTL)
        lb = Lease(b.backbone.leases, timed.TIMED_LEASE, ttl=TTL)
        assert await la.hold(a.engine)
        assert not await lb.hold(b.engine)

        # It stalls after reading the clock and the editions, before its first write transaction.
        read, resume = asyncio.Event(), asyncio.Event()
        real_begin = timed.fenced_begin

        @asynccontextmanager
        async def stall_then_begin(engine: Any, lease: Any) -> AsyncIterator[Any]:
            if asyncio.current_task() is stalled:
                read.set()
                await resume.wait()
            async with real_begin(engine, lease) as conn:
                yield conn

        monkeypatch.setattr(timed, "fenced_begin", stall_then_begin)
        stalled = asyncio.create_task(timed.run_due(a, SEEDED_AT, lease=la))
        await asyncio.wait_for(read.wait(), 30)

        next_day = SEEDED_AT + timedelta(days=1)
        await eventually(lambda: lb.hold(b.engine), timeout=15, message="b took the lease over")
        assert await timed.run_due(b, next_day, lease=lb) > 0

        resume.set()
        (late,) = await asyncio.gather(stalled, return_exceptions=True)
        r = notify_models.timed_runs
        async with b.engine.connect() as conn:
            days = (await conn.execute(sa.select(r.c.day).where(r.c.kind == "mobilisation"))).scalars().all()
        assert {str(d)[:10] for d in days} == {"2023-10-21"}  # no 20/10 list after the 21/10 one
        assert isinstance(late, LeaseLost)
    finally:
        await a.engine.dispose()
        await b.engine.dispose()


@pytest.mark.parametrize("dialect", ["postgresql", "sqlite"])
async def test_a_stale_closing_holder_closes_nothing(
    dialect: str, request: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Intake of the 2023 edition has closed. The replica whose closing lease was taken over emits nothing; the
    holder closes each deadline once."""
    a, b = await _two_runtimes("submissions", submissions_app.SPEC, dialect, request, tmp_path, monkeypatch)
    try:
        async with a.engine.begin() as conn:
            assert a.copies is not None
            await a.copies.apply(conn, edition_published())
        for rt in (a, b):  # 05/11/2023: the intake (25/10) and selection (31/10) deadlines have passed
            rt.clock.set(datetime(2023, 11, 5, 9, 0, tzinfo=VN))
        la = Lease(a.backbone.leases, intake.CLOSING_LEASE, ttl=TTL)
        lb = Lease(b.backbone.leases, intake.CLOSING_LEASE, ttl=TTL)
        assert await la.hold(a.engine)
        await eventually(lambda: lb.hold(b.engine), timeout=15, message="b took the lease over")

        (stale,) = await asyncio.gather(intake.close_due(a, la), return_exceptions=True)
        c, o = submissions_models.intake_closures, a.backbone.outbox
        async with a.engine.connect() as conn:
            assert (await conn.execute(sa.select(sa.func.count()).select_from(c))).scalar_one() == 0
            assert (await conn.execute(sa.select(sa.func.count()).select_from(o))).scalar_one() == 0
        assert isinstance(stale, LeaseLost)

        closed = await intake.close_due(b, lb)
        assert closed  # the intake and selection parts of 2023, by the holder
        async with b.engine.connect() as conn:
            assert (await conn.execute(sa.select(sa.func.count()).select_from(c))).scalar_one() == len(closed)
    finally:
        await a.engine.dispose()
        await b.engine.dispose()
