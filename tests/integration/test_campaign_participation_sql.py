"""Participation's standings are decided by the database (``usecases.participation.standings``); the rule is
``domain.standing``. On SQLite and PostgreSQL, over assignments with random histories — fulfilled on time,
late, with no on-time verdict, reopened, fulfilled again at the same instant as a reopening (then the order
recorded decides), missed, extended — and at random instants and at the very instants something happened
(``at or before`` is inclusive), every assignment's standing from the database equals the rule's, assignments
made after the instant are not counted, and another edition's or tenant's are never read.

Each assignment keeps its standing after its every fact (``restand``, participation's read model), and reads take
it wherever it is in force: the same holds with the facts written one at a time in a random order, each followed
by ``restand`` as campaign's writers do, or — as the previous release writes them during a rolling update — not
(the triggers clear what was kept); the kept standing equals the rule's after every fact, the counts per part,
unit and standing (``in_force`` + ``decided``) equal the rule's at every instant, and an upgraded database's
assignments are given theirs by the migration."""

from __future__ import annotations

import asyncio
import functools
import random
import uuid
from collections import Counter
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from services.campaign import domain, models
from services.campaign.domain.access import scope_of
from services.campaign.usecases.participation import _tally, counted, decided, in_force, restand, standings
from shared import migrate
from shared.clock import VN
from shared.db import read_off_loop
from shared.directory import Directory
from shared.documents import load_directory
from tests.support.plans import database_url

TENANT, EDITION = "quangtri-stnmt", "2024"
SEED = Path(__file__).resolve().parents[2] / "deploy" / "seed" / "soctrang-stnmt-2023"
START = datetime(2024, 10, 1, tzinfo=UTC)
TABLES = {
    "assignments": models.assignments,
    "changes": models.assignment_changes,
    "misses": models.misses,
    "extensions": models.extensions,
}


def _history(rnd: random.Random, n: int, tenant: str, edition: str) -> dict[str, Any]:
    """``n`` assignments of ``tenant``/``edition`` with random facts: rows to insert, and each one's
    ``domain.AssignmentFacts`` with its creation time."""
    rows: dict[str, list[dict[str, Any]]] = {"assignments": [], "changes": [], "misses": [], "extensions": []}
    facts: list[tuple[datetime, domain.AssignmentFacts]] = []
    recorded = 0
    for i in range(n):
        aid, part, unit = (
            str(uuid.UUID(int=rnd.getrandbits(128))),
            rnd.choice(["p1", "p2", "p3"]),
            f"u{i % 7}",
        )
        created = START + timedelta(hours=rnd.randrange(0, 48))
        deadline = START + timedelta(days=10)
        rows["assignments"].append(
            {
                "id": aid,
                "tenant": tenant,
                "edition": edition,
                "part": part,
                "part_kind": "experience",
                "assignee_kind": "person",
                "assignee_id": f"p-{i:05d}",
                "unit_id": unit,
                "deadline": deadline,
                "status": "open",
                "created_at": created,
            }
        )
        changes: list[domain.StatusChange] = []
        at = created
        for _ in range(rnd.choice([0, 0, 1, 1, 2, 3, 4])):
            if rnd.random() > 0.3:  # another change at the very same instant, now and then
                at = at + timedelta(hours=rnd.randrange(1, 80))
            fulfilled = not (changes and changes[-1].fulfilled) or rnd.random() < 0.3
            on_time = rnd.choice([True, False, None]) if fulfilled else None
            recorded += 1
            changes.append(domain.StatusChange(at, fulfilled, on_time))
            rows["changes"].append(
                {
                    "assignment_id": aid,
                    "cause_id": str(uuid.UUID(int=rnd.getrandbits(128))),
                    "at": at,
                    "status": "fulfilled" if fulfilled else "open",
                    "fulfilled_at": at if fulfilled else None,
                    "on_time": on_time,
                    "tenant": tenant,
                    "recorded": recorded,
                }
            )
        missed = [deadline] if rnd.random() < 0.3 else []
        for d in missed:
            rows["misses"].append(
                {
                    "assignment_id": aid,
                    "deadline": d,
                    "tenant": tenant,
                    "edition": edition,
                    "part": part,
                    "assignee_id": f"p-{i:05d}",
                    "unit_id": unit,
                    "event_id": str(uuid.uuid4()),
                }
            )
        extended = [created + timedelta(days=rnd.randrange(1, 12))] if rnd.random() < 0.25 else []
        for g in extended:
            rows["extensions"].append(
                {
                    "id": str(uuid.uuid4()),
                    "tenant": tenant,
                    "edition": edition,
                    "assignment_id": aid,
                    "previous_deadline": deadline,
                    "new_deadline": deadline + timedelta(days=5),
                    "reason": "Ốm đau",
                    "approved_by": "p-0001",
                    "granted_at": g,
                }
            )
        af = domain.AssignmentFacts(
            aid, part, f"p-{i:05d}", unit, tuple(changes), tuple(missed), tuple(extended)
        )
        facts.append((created, af))
    return {"rows": rows, "facts": facts}


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_the_databases_standings_are_the_rules_at_every_instant(
    dialect: str, test_servers: Any, tmp_path: Path
) -> None:
    url = database_url(dialect, tmp_path, test_servers, "campaign_standings")
    migrate.upgrade("campaign", url)
    rnd = random.Random(20241001)
    ours = _history(rnd, 400, TENANT, EDITION)
    others = [_history(rnd, 60, TENANT, "2023"), _history(rnd, 60, "hue-stnmt", EDITION)]

    async def go() -> None:
        engine = create_async_engine(url, poolclass=NullPool)
        try:
            async with engine.begin() as conn:
                for history in [ours, *others]:
                    for name, table in TABLES.items():
                        if history["rows"][name]:
                            await conn.execute(sa.insert(table), history["rows"][name])
            happened = sorted(
                {c.at for _, f in ours["facts"] for c in f.changes}
                | {m for _, f in ours["facts"] for m in f.missed_at}
                | {created for created, _ in ours["facts"]}
            )
            instants = rnd.sample(happened, 25) + [
                START + timedelta(minutes=rnd.randrange(0, 60 * 24 * 30)) for _ in range(25)
            ]
            async with engine.connect() as conn:
                for at in [START - timedelta(days=1), *instants, START + timedelta(days=365)]:
                    got = sorted(
                        (r.assignee_id, r.part, r.unit_id, r.standing)
                        for r in await conn.execute(
                            standings(), {"tenant": TENANT, "edition": EDITION, "at": at}
                        )
                    )
                    want = sorted(
                        (f.assignee_id, f.part, f.unit_id, domain.standing(f, at))
                        for created, f in ours["facts"]
                        if created <= at
                    )
                    assert got == want, at
            assert {s for *_, s in want} == {"fulfilled", "fulfilled_late", "missed", "extended", "open"}
        finally:
            await engine.dispose()

    asyncio.run(go())


FAR = START + timedelta(days=3650)


async def _expect_the_rule(conn: Any, history: dict[str, Any], instants: list[datetime]) -> None:
    """At each instant: every standing (``standings``) and the counts per part, unit and standing
    (``in_force`` + ``decided``) are the rule's."""
    for at in instants:
        params = {"tenant": TENANT, "edition": EDITION, "at": at}
        want = sorted(
            (f.assignee_id, f.part, f.unit_id, domain.standing(f, at))
            for created, f in history["facts"]
            if created <= at
        )
        got = sorted(
            (r.assignee_id, r.part, r.unit_id, r.standing) for r in await conn.execute(standings(), params)
        )
        assert got == want, at
        counted: Counter[tuple[str, str, str]] = Counter()
        for r in await conn.execute(in_force(), params):
            counted[(r.part, r.unit_id, r.standing)] += r.n
        for r in await conn.execute(decided(), params):
            counted[(r.part, r.unit_id, r.standing)] += 1
        assert counted == Counter((p, u, s) for _, p, u, s in want), at


def _instants(rnd: random.Random, history: dict[str, Any], k: int) -> list[datetime]:
    happened = sorted(
        {c.at for _, f in history["facts"] for c in f.changes}
        | {m for _, f in history["facts"] for m in f.missed_at}
        | {e for _, f in history["facts"] for e in f.extended_at}
        | {created for created, _ in history["facts"]}
    )
    return [START - timedelta(days=1), *rnd.sample(happened, k), FAR]


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_each_assignment_keeps_its_standing_whatever_the_order_and_whoever_writes(
    dialect: str, test_servers: Any, tmp_path: Path
) -> None:
    url = database_url(dialect, tmp_path, test_servers, "campaign_kept_standings")
    migrate.upgrade("campaign", url)
    rnd = random.Random(20241105)
    ours = _history(rnd, 150, TENANT, EDITION)
    a = models.assignments

    async def go() -> None:
        engine = create_async_engine(url, poolclass=NullPool)
        try:
            async with engine.begin() as conn:  # made as campaign makes them: open, from their creation
                await conn.execute(
                    sa.insert(a),
                    [
                        {**r, "standing": "open", "standing_since": r["created_at"]}
                        for r in ours["rows"]["assignments"]
                    ],
                )
            facts = [
                (name, row) for name in ("changes", "misses", "extensions") for row in ours["rows"][name]
            ]
            rnd.shuffle(facts)
            by_id = {f.id: (created, f) for created, f in ours["facts"]}
            written: dict[str, dict[str, list[Any]]] = {
                i: {"changes": [], "misses": [], "extensions": []} for i in by_id
            }
            old_release = set()
            for i, (name, row) in enumerate(facts):
                async with engine.begin() as conn:
                    await conn.execute(sa.insert(TABLES[name]), [row])
                    previous = rnd.random() < 0.15  # written by the previous release: no restand
                    if not previous:
                        await restand(conn, [row["assignment_id"]])
                aid = row["assignment_id"]
                written[aid][name].append(row)
                (old_release.add if previous else old_release.discard)(aid)
                async with engine.connect() as conn:
                    kept = (
                        await conn.execute(sa.select(a.c.standing, a.c.standing_since).where(a.c.id == aid))
                    ).one()
                if aid in old_release:
                    assert kept.standing is None  # cleared: decided from its facts until its next fact here
                else:
                    created, f = by_id[aid]
                    so_far = _written(f, written[aid])
                    assert kept.standing == domain.standing(so_far, FAR), (i, name)
                    times = [created, *(c.at for c in so_far.changes), *so_far.missed_at, *so_far.extended_at]
                    assert kept.standing_since == max(times)
                if i % 97 == 0:
                    async with engine.connect() as conn:
                        await _expect_the_rule(conn, _so_far(ours, written), _instants(rnd, ours, 6))
            assert old_release, "some facts were written as the previous release writes them"
            async with engine.connect() as conn:
                await _expect_the_rule(conn, ours, _instants(rnd, ours, 40))
                held = (
                    await conn.execute(sa.select(a.c.standing).where(a.c.standing.is_not(None)))
                ).scalars()
                assert {*held} == {"fulfilled", "fulfilled_late", "missed", "extended", "open"}
        finally:
            await engine.dispose()

    asyncio.run(go())


def _so_far(history: dict[str, Any], written: dict[str, dict[str, list[Any]]]) -> dict[str, Any]:
    """``history`` with only the facts written so far."""
    return {"facts": [(created, _written(f, written[f.id])) for created, f in history["facts"]]}


def _written(f: domain.AssignmentFacts, w: dict[str, list[Any]]) -> domain.AssignmentFacts:
    """The facts of ``f``'s assignment among the rows written so far (``w``: rows by table)."""
    changes = sorted(w["changes"], key=lambda c: (c["at"], c["recorded"]))
    return domain.AssignmentFacts(
        f.id,
        f.part,
        f.assignee_id,
        f.unit_id,
        tuple(domain.StatusChange(c["at"], c["status"] == "fulfilled", c["on_time"]) for c in changes),
        tuple(m["deadline"] for m in w["misses"]),
        tuple(x["granted_at"] for x in w["extensions"]),
    )


class _Caller:
    def __init__(self, *roles: str) -> None:
        self.roles = roles

    def has_role(self, *roles: str) -> bool:
        return bool(set(roles) & set(self.roles))


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_counted_per_unit_is_counted_per_person(dialect: str, test_servers: Any, tmp_path: Path) -> None:
    """Where the directory has no unions, participation is counted per part, unit and standing by the database;
    where it has, per assignment: the two give the same units (a merged unit's assignments under its successor
    from the merger's day) and parts, to the director and to a unit head, at every instant."""
    url = database_url(dialect, tmp_path, test_servers, "campaign_counted")
    migrate.upgrade("campaign", url)
    seed = load_directory(SEED / "directory.yaml")
    merged = next(
        u for u in seed.units if u.id == "u-vpdkdd-cn2"
    )  # a branch, merged on the_day into a new unit
    the_day = date(2024, 10, 6)
    directory = Directory(
        tenant=seed.tenant,
        units=[
            *(u for u in seed.units if u is not merged),
            merged.model_copy(update={"effective_to": the_day - timedelta(days=1)}),
            merged.model_copy(
                update={
                    "id": "u-sau-sap-nhap",
                    "name": "Chi nhánh sau sáp nhập",
                    "effective_from": the_day,
                    "successor_of": [merged.id],
                }
            ),
        ],
        unions=seed.unions,
        people=seed.people,
    )
    rnd = random.Random(20241107)
    ours = _history(rnd, 300, TENANT, EDITION)
    units = [u.id for u in seed.units]
    for row in ours["rows"]["assignments"]:
        row["unit_id"] = units[int(row["unit_id"][1:]) % len(units)] if rnd.random() > 0.05 else None
    head = next(p for p in seed.people if p.unit == merged.parent)  # sees the branches too

    async def go() -> None:
        engine = create_async_engine(url, poolclass=NullPool)
        try:
            async with engine.begin() as conn:
                for name, table in TABLES.items():
                    if ours["rows"][name]:
                        await conn.execute(sa.insert(table), ours["rows"][name])
                kept = [r["id"] for r in ours["rows"]["assignments"] if rnd.random() < 0.8]
                await restand(conn, kept)  # the others: as the previous release left them
            async with engine.connect() as conn:
                for at in _instants(rnd, ours, 20):
                    params = {"tenant": TENANT, "edition": EDITION, "at": at}
                    grouped = await conn.run_sync(functools.partial(counted, params=params, per_person=False))
                    # as the route reads it: off the loop (on SQLite a thread's own connection to the file)
                    per_person = await read_off_loop(
                        engine, functools.partial(counted, params=params, per_person=True)
                    )
                    assert sum(r[-1] for r in grouped) == len(per_person)
                    for caller, person in ((_Caller("director"), head), (_Caller("unit_head"), head)):
                        scope, visible = scope_of(caller, person, directory)
                        assert visible is not None
                        a = _tally(scope, visible, at, (1, "v"), directory, grouped)
                        b = _tally(scope, visible, at, (1, "v"), directory, per_person)
                        assert (a["units"], a["parts"]) == (b["units"], b["parts"]), (at, scope)
                        shown = {u["unit_id"] for u in a["units"]}
                        if at >= datetime.combine(the_day, time(), VN):
                            assert merged.id not in shown
                        assert shown <= (
                            {*units, "u-sau-sap-nhap"}
                            if scope == "all"
                            else {merged.parent, *units[-2:]} | {"u-sau-sap-nhap"}
                        )
                        assert a["unions"] == []  # per person only
        finally:
            await engine.dispose()

    asyncio.run(go())
