"""Order doesn't matter, on the real handlers (issue 12): rewards' and notify's consumers (inbox + handlers, one
transaction per batch, exactly what the NATS consumer calls) on a temp SQLite database, fed a contest's history
(``tests.support.contest``) in publication order and in a random order with duplicates, end with the same
priority list as the API builds it and the same messages (recipient, template) — and notify writes no
``deadline.missed`` to an assignee whose assignment is fulfilled on time. No NATS is needed.

Campaign's own consumer and clock under reordering are ``test_campaign_assignment_order.py``.
"""

from __future__ import annotations

import asyncio
import shutil
import uuid
from collections.abc import Coroutine, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, example, given, settings

from services.notify import app as notify_app
from services.notify import handlers as notify_handlers
from services.notify import models as notify_models
from shared.consumer import EventConsumer
from shared.events.envelope import Envelope
from shared.service import build_runtime
from shared.settings import Settings, service_settings
from shared.streams import consumers_of
from tests.support.assignments import expected
from tests.support.contest import Contest, assignment_id, contests, counterexample_contest, event
from tests.support.rewards import Msg, directory_facts, edition_published, rewards_on_sqlite

NOW = datetime.fromisoformat("2023-11-05T09:00:00+07:00")  # every deadline, extended ones too, has passed
T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` on a private event loop (Hypothesis calls the test synchronously, once per example)."""
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coro)
    finally:
        loop.close()


def for_service(service: str, facts: Sequence[Envelope]) -> list[Envelope]:
    """The facts ``service``'s facts consumer subscribes to (its filter subjects), in the given order."""
    types = set(next(c for c in consumers_of(service) if c.purpose == "facts").types)
    return [f for f in facts if f.type in types]


def setup_facts() -> list[Envelope]:
    """The directory and the edition (its rules with a miss deducting one point), as campaign publishes them."""
    return [*directory_facts(), edition_published(deadline_missed={"deduct": 1})]


# ------------------------------------------------------------------------------------------------- rewards


async def rewards_list(path: Path, facts: Sequence[Envelope], batch: int) -> dict[str, Any]:
    """rewards' list after ``facts``, on ``path`` (a copy of the seeded database, or a fresh one seeded here)."""
    seeded = path.exists()
    r = await rewards_on_sqlite(path)
    try:
        if not seeded:
            await r.deliver(for_service("rewards", setup_facts()), batch=50)
        await r.deliver(for_service("rewards", facts), batch=batch)
        pl = (await r.listing()).model_dump(mode="json")
    finally:
        await r.engine.dispose()
    for row in pl["ledger"]:
        row.pop("event_id")  # campaign's ids are its outbox's own: another order, other ids
    return pl


# -------------------------------------------------------------------------------------------------- notify


@dataclass(frozen=True)
class Told:
    person: str
    template: str
    channel: str
    cause_subject: str


async def notify_told(path: Path, facts: Sequence[Envelope], batch: int) -> tuple[set[Told], dict[str, bool]]:
    """notify's messages after ``facts``, on ``path`` (a copy of the seeded database, or a fresh one seeded)."""
    seeded = path.exists()
    shared = Settings(env="test", data_dir=path.parent, clock_simulated_at=NOW)
    own = service_settings("notify", shared)
    own.database_url = f"sqlite+aiosqlite:///{path}"
    rt = build_runtime(notify_app.SPEC, shared, own)
    if not seeded:
        async with rt.engine.begin() as conn:
            await conn.run_sync(notify_models.metadata.create_all)
    consumer = EventConsumer(
        spec=next(c for c in consumers_of("notify") if c.purpose == "facts"),
        engine=rt.engine,
        backbone=rt.backbone,
        outbox=rt.outbox,
        settings=shared,
        handlers=notify_handlers.build(rt)["facts"],
    )

    async def deliver(envs: Sequence[Envelope], size: int) -> None:
        msgs = [Msg(f.to_json(), f"hoithi.{f.tenant}.{f.type}", {"Nats-Msg-Id": f.id}) for f in envs]
        for i in range(0, len(msgs), size):
            await consumer.process(msgs[i : i + size])

    subject_of = {f.id: f.subject for f in facts}
    try:
        if not seeded:
            await deliver(for_service("notify", setup_facts()), 50)
        await deliver(for_service("notify", facts), batch)
        i, d = notify_models.inapp, notify_models.deliveries
        async with rt.engine.connect() as conn:
            inapp = (await conn.execute(sa.select(i.c.person_id, i.c.template, i.c.cause_event_id))).all()
            mails = (await conn.execute(sa.select(d.c.recipient, d.c.template, d.c.cause_event_id))).all()
            a = notify_models.assignments
            still_open = dict((await conn.execute(sa.select(a.c.assignment_id, a.c.open))).tuples().all())
    finally:
        await rt.engine.dispose()
    told = {Told(p, t, "in_app", subject_of[c]) for p, t, c in inapp} | {
        Told(p, t, "email", subject_of[c]) for p, t, c in mails
    }
    return told, still_open


# ---------------------------------------------------------------------------------------------- the property


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """rewards' and notify's databases with the directory and the edition applied, copied per run."""
    path = tmp_path_factory.mktemp("contest-order")
    run(rewards_list(path / "rewards.db", [], 1))
    run(notify_told(path / "notify.db", [], 1))
    yield path


Outcome = tuple[dict[str, Any], set[Told], dict[str, bool]]


def outcome(workdir: Path, facts: Sequence[Envelope], batch: int) -> Outcome:
    paths = [workdir / f"{uuid.uuid4()}.db" for _ in range(2)]
    shutil.copy(workdir / "rewards.db", paths[0])
    shutil.copy(workdir / "notify.db", paths[1])
    try:
        return (run(rewards_list(paths[0], facts, batch)), *run(notify_told(paths[1], facts, batch)))
    finally:
        for p in paths:
            p.unlink(missing_ok=True)


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
    ],
)
@given(c=contests())
@example(c=counterexample_contest())
def test_rewards_and_notify_handlers_end_the_same_in_any_order(workdir: Path, c: Contest) -> None:
    published = c.published()
    arrived = c.arrived()
    want_list, want_told, want_open = outcome(workdir, published.stream, 50)
    got_list, got_told, got_open = outcome(workdir, c.received_by_others(arrived), c.scenario.batch)

    assert got_list == want_list
    assert got_told == want_told
    final = expected(c.scenario)
    by_id = {assignment_id(k): k for k in final}
    # notify's copy of the assignments (whom the daily "not yet submitted" lists name): open as campaign says
    assert got_open == want_open == {aid: final[k].status == "open" for aid, k in by_id.items()}
    contradicting = sorted(
        (t.person, by_id[t.cause_subject])
        for t in got_told
        if t.template == "deadline.missed"
        and final[by_id[t.cause_subject]].status == "fulfilled"
        and final[by_id[t.cause_subject]].on_time
    )
    assert contradicting == [], f"told they missed a deadline they met: {contradicting}"


def test_the_counterexample_costs_the_official_nothing(workdir: Path) -> None:
    """Defect 1's order through rewards' and notify's handlers: no deduction, no 'deadline.missed' message."""
    c = counterexample_contest()
    pl, told, _ = outcome(workdir, c.received_by_others(c.arrived()), 1)
    me = next(p for p in pl["persons"] if p["person_id"] == "p-0007")
    assert me["missed_deadlines"] == 0
    aid = assignment_id(("experience", "p-0007"))
    assert not [t for t in told if t.template == "deadline.missed" and t.cause_subject == aid]
    assert any(t.person == "p-0007" and t.template == "submission.received" for t in told)


def test_a_reopening_that_arrives_before_the_creation_still_reopens_notifys_copy(tmp_path: Path) -> None:
    """Found by the property: notify dropped an ``assignment.reopened`` it received before the assignment's
    ``assignment.created`` (no deadline known yet), so after the creation and the fulfilment arrived the copy
    said fulfilled and the daily "not yet submitted" list left the official out."""
    key = ("experience", "p-0007")
    aid = assignment_id(key)
    who = {"assignment_id": aid, "part": "experience", "part_kind": "experience_report"}
    who |= {"assignee_kind": "person", "assignee_id": "p-0007", "unit_id": "u-tnn-ks"}
    deadline = datetime.fromisoformat("2023-10-26T00:00:00+07:00")
    received = datetime.fromisoformat("2023-10-24T09:00:00+07:00")
    created, fulfilled, reopened = (
        event(
            t,
            {**who, **data},
            subject=aid,
            sequence=n,
            at=received,
            eid=f"00000000-0000-4000-8000-00000000000{n}",
        )
        for n, (t, data) in enumerate(
            [
                ("assignment.created", {"deadline": deadline}),
                (
                    "assignment.fulfilled",
                    {"submission_id": "s-1", "fulfilled_at": received, "deadline": deadline, "on_time": True},
                ),
                ("assignment.reopened", {"reason": "withdrawn", "submission_id": "s-1", "at": received}),
            ],
            start=1,
        )
    )
    _, in_order = run(notify_told(tmp_path / "a.db", [created, fulfilled, reopened], 1))
    _, reordered = run(notify_told(tmp_path / "b.db", [reopened, created, fulfilled], 1))
    assert in_order == {aid: True}
    assert reordered == {aid: True}
