"""Campaign's real consumer (inbox + handlers, one transaction per batch) and deadline clock on SQLite, seeded
with the 2023 edition: facts about submissions in any order, duplicates and extensions included, leave every
assignment as publication order would, and the clock never marks as missed an assignee who has a live
submission received before the deadline in force (a *false miss*, issue 12)."""

from __future__ import annotations

import asyncio
import json
import shutil
import uuid
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from itertools import pairwise
from pathlib import Path
from types import SimpleNamespace
from typing import Any, TypeVar

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, example, given, settings

from services.campaign import handlers, models
from services.campaign.usecases import assignments, deadlines
from services.campaign.usecases.publishing import import_directory, publish_edition
from shared.clock import Clock
from shared.consumer import EventConsumer
from shared.db import make_engine
from shared.documents import load_directory, load_edition
from shared.events.envelope import Envelope, deterministic_id, make_event
from shared.lease import Lease
from shared.outbox import Outbox
from shared.settings import Settings
from shared.streams import consumers_of
from tests.support.assignments import (
    DEADLINE,
    EDITION,
    OPEN,
    SELECTION_DEADLINE,
    TENANT,
    Key,
    Scenario,
    State,
    counterexample,
    expected,
    facts_of,
    live_on_time,
    scenarios,
)
from tests.support.rewards import Msg

SEED = Path(__file__).resolve().parents[3] / "deploy" / "seed" / "soctrang-stnmt-2023"
PUBLISHED_AT = datetime.fromisoformat("2023-10-01T09:00:00+07:00")
GRANTED_AT = datetime.fromisoformat("2023-10-25T08:00:00+07:00")
AFTER = datetime.fromisoformat("2023-11-05T09:00:00+07:00")  # every deadline, extended ones too, has passed
SECRETARIAT = "p-0004"

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` on a private event loop (Hypothesis calls the test synchronously, once per example)."""
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coro)
    finally:
        loop.close()


async def _seed(path: Path) -> None:
    engine = make_engine(f"sqlite+aiosqlite:///{path}")
    async with engine.begin() as conn:
        await conn.run_sync(models.metadata.create_all)
    outbox = Outbox(models.backbone, Settings(env="test"), "campaign", Clock())
    directory = load_directory(SEED / "directory.yaml")
    async with engine.begin() as conn:
        await import_directory(conn, outbox, directory, PUBLISHED_AT)
        await publish_edition(conn, outbox, load_edition(SEED / "edition.yaml"), directory, PUBLISHED_AT)
    await engine.dispose()


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Campaign's database with the 2023 directory and edition published (its assignments made), copied per
    example."""
    path = tmp_path_factory.mktemp("campaign") / "seeded.db"
    run(_seed(path))
    yield path


@dataclass
class Outcome:
    states: dict[Key, State]
    misses: set[Key]
    emitted: dict[Key, list[State]]  # assignment.fulfilled / .reopened, in the order emitted
    as_of: dict[datetime, dict[Key, tuple[str, bool | None]]]  # participation's history, per instant


def _closures(s: Scenario) -> list[Envelope]:
    """``intake.closed`` as submissions would publish it, counting every receipt before each deadline."""
    closures: list[tuple[str, datetime, str | None, int]] = []
    for part in ("initiative", "experience"):
        on_time = [sub for sub in s.subs if sub.part == part and sub.received_at < DEADLINE]
        closures.append((part, DEADLINE, None, len(on_time)))
    selected = [at for sub in s.subs for op, at in sub.ops if op == "select" and at < SELECTION_DEADLINE]
    closures.append(("selection", SELECTION_DEADLINE, None, len(selected)))
    for (part, assignee), new, _ in s.extensions:
        mine = [
            sub for sub in s.subs if sub.part == part and sub.assignee == assignee and sub.received_at < new
        ]
        closures.append((part, new, assignee, len(mine)))
    return [
        make_event(
            "intake.closed",
            {"part": part, "deadline": at, "assignee_id": who, "accepted_on_time": count},
            source="submissions",
            tenant=TENANT,
            subject=part,
            sequence=n,
            time=at,
            edition=EDITION,
            event_id=deterministic_id("test-closure", part, at.isoformat(), who or ""),
        )
        for n, (part, at, who, count) in enumerate(closures, start=1)
    ]


def _state(row: Any) -> State:
    if row.status != "fulfilled":
        return OPEN
    return State("fulfilled", row.submission_id, row.fulfilled_at, row.on_time)


async def _apply(s: Scenario, path: Path) -> Outcome:
    engine = make_engine(f"sqlite+aiosqlite:///{path}")
    settings_ = Settings(env="test")
    outbox = Outbox(models.backbone, settings_, "campaign", Clock())
    rt: Any = SimpleNamespace(
        engine=engine, backbone=models.backbone, outbox=outbox, extra={}, now=lambda: AFTER, name="campaign"
    )
    consumer = EventConsumer(
        spec=next(c for c in consumers_of("campaign") if c.purpose == "facts"),
        engine=engine,
        backbone=models.backbone,
        outbox=outbox,
        settings=settings_,
        handlers=handlers.build(rt)["facts"],
    )

    async def deliver(facts: list[Envelope]) -> None:
        msgs = [Msg(f.to_json(), f"hoithi.{f.tenant}.{f.type}", {"Nats-Msg-Id": f.id}) for f in facts]
        for i in range(0, len(msgs), s.batch):
            await consumer.process(msgs[i : i + s.batch])

    arrived = s.arrived()
    done = 0
    for (part, assignee), new, after in sorted(s.extensions, key=lambda e: e[2]):
        await deliver(arrived[done:after])
        done = max(done, after)
        async with engine.begin() as conn:  # what POST …/extensions does
            row = await assignments.assignment_for(conn, TENANT, EDITION, part, assignee)
            await assignments.extend(
                rt, conn, row, new, reason="Đi công tác", approved_by=SECRETARIAT, now=GRANTED_AT
            )
    await deliver(arrived[done:])
    await deliver(_closures(s))
    lease = Lease(rt.backbone.leases, deadlines.CLOCK_LEASE, ttl=60)  # one replica: the clock's lease is ours
    assert await lease.hold(engine)
    await deadlines.tick(rt, AFTER, lease)

    keys = set(s.assignments())
    a, o, c = models.assignments, models.backbone.outbox, models.assignment_changes
    async with engine.connect() as conn:
        rows = (await conn.execute(sa.select(a).where(a.c.tenant == TENANT, a.c.edition == EDITION))).all()
        by_id = {r.id: (r.part, r.assignee_id) for r in rows}
        states = {(r.part, r.assignee_id): _state(r) for r in rows if (r.part, r.assignee_id) in keys}
        events = (
            await conn.execute(
                sa.select(o.c.event_type, o.c.payload)
                .where(o.c.event_type.in_(["deadline.missed", "assignment.fulfilled", "assignment.reopened"]))
                .order_by(o.c.position)
            )
        ).all()
        changes = (await conn.execute(sa.select(c).order_by(c.c.assignment_id, c.c.at, c.c.recorded))).all()
    await engine.dispose()
    misses: set[Key] = set()
    emitted: dict[Key, list[State]] = {k: [] for k in keys}
    for type_, payload in events:
        d = json.loads(payload)["data"]
        key = by_id[d["assignment_id"]]
        if key not in keys:
            continue
        if type_ == "deadline.missed":
            misses.add(key)
        elif type_ == "assignment.reopened":
            emitted[key].append(OPEN)
        else:
            at = datetime.fromisoformat(d["fulfilled_at"])
            emitted[key].append(State("fulfilled", d["submission_id"], at, d["on_time"]))
    as_of: dict[datetime, dict[Key, tuple[str, bool | None]]] = {}
    for t in s.instants():
        seen: dict[Key, tuple[str, bool | None]] = {k: ("open", None) for k in keys}
        for ch in changes:
            key = by_id[ch.assignment_id]
            if key in keys and ch.at <= t:
                seen[key] = (ch.status, ch.on_time if ch.status == "fulfilled" else None)
        as_of[t] = seen
    return Outcome(states, misses, emitted, as_of)


def outcome(seeded: Path, s: Scenario) -> Outcome:
    """``s`` applied to a fresh copy of the seeded database."""
    path = seeded.with_name(f"{uuid.uuid4()}.db")
    shutil.copy(seeded, path)
    try:
        return run(_apply(s, path))
    finally:
        path.unlink(missing_ok=True)


@settings(
    max_examples=30,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
    ],
)
@given(s=scenarios())
@example(s=counterexample())
def test_assignments_through_the_handlers_do_not_depend_on_arrival_order(seeded: Path, s: Scenario) -> None:
    out = outcome(seeded, s)
    want = expected(s)
    false_misses = sorted(k for k in out.misses if live_on_time(s, k))
    assert false_misses == [], f"deadline.missed for assignees with a live on-time submission: {false_misses}"
    assert out.states == want
    for key, states in out.emitted.items():
        # fulfilled / reopened only on a real change, and the last one says what the assignment is
        assert all(x != y for x, y in pairwise(states)), (key, states)
        assert (states[-1] if states else OPEN) == want[key], key
    for t, seen in out.as_of.items():
        assert seen == {k: (v.status, v.on_time) for k, v in expected(s, as_of=t).items()}, t


def test_an_extension_makes_a_late_fulfilment_on_time(seeded: Path) -> None:
    """A report received after the official deadline but before the extended one: fulfilled on time, and the
    clock misses nobody for it."""
    base = counterexample()
    late = [replace(base.subs[1], received_at=DEADLINE + timedelta(hours=5))]
    facts = facts_of(late)
    s = Scenario(tuple(late), facts, (0,), ((("experience", "p-0007"), DEADLINE + timedelta(days=1), 1),), 1)
    out = outcome(seeded, s)
    assert out.states[("experience", "p-0007")] == State("fulfilled", "s-p-0007-2", late[0].received_at, True)
    assert out.emitted[("experience", "p-0007")] == [
        State("fulfilled", "s-p-0007-2", late[0].received_at, False),
        State("fulfilled", "s-p-0007-2", late[0].received_at, True),
    ]
    assert ("experience", "p-0007") not in out.misses
