"""notify's directory snapshot is read from the copies' keys and parses only documents it has not parsed
before; it must equal the snapshot parsed whole from the same copies (``rebuild_people``), on every date, after
the directory changes (a person moved from a later date, a new person, a union's new secretary).

The snapshot ``queue.people`` keeps per (tenant, date) is checked against the copy's version
(``models.directory_versions``) on every call: a change committed by another replica, a new person whose fact
has a lower sequence than facts already kept, and a change a rolled-back transaction had read, are each seen at
the next call; a fact older than the row it would replace changes nothing, the kept snapshot included."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from services.campaign import models as campaign_models
from services.campaign.usecases.publishing import import_directory
from services.notify import domain, models
from services.notify.usecases import queue
from shared.clock import Clock
from shared.db import make_engine
from shared.documents import Directory, Person, load_directory
from shared.events.envelope import Envelope, make_event
from shared.outbox import Outbox
from shared.settings import Settings

SEED = Path(__file__).resolve().parents[3] / "deploy" / "seed" / "soctrang-stnmt-2023"
AT = datetime.fromisoformat("2023-10-01T09:00:00+07:00")
DAYS = [datetime.fromisoformat(d + "T09:00:00+07:00") for d in ("2023-01-01", "2023-10-20", "2024-03-01")]


async def _directory_facts(tmp: Path, directory: Any, at: datetime, since: int) -> tuple[list[Envelope], int]:
    """The facts campaign publishes for ``directory`` (its outbox after ``since``)."""
    engine = make_engine(f"sqlite+aiosqlite:///{tmp / 'campaign.db'}")
    async with engine.begin() as conn:
        await conn.run_sync(campaign_models.metadata.create_all)
    outbox = Outbox(campaign_models.backbone, Settings(env="test"), "campaign", Clock())
    async with engine.begin() as conn:
        await import_directory(conn, outbox, directory, at)
    o = campaign_models.backbone.outbox
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                sa.select(o.c.position, o.c.payload).where(o.c.position > since).order_by(o.c.position)
            )
        ).all()
    await engine.dispose()
    return [Envelope.from_json(p) for _, p in rows], max([since] + [n for n, _ in rows])


async def test_the_snapshot_from_the_keys_equals_the_one_parsed_whole(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'notify.db'}")
    async with engine.begin() as conn:
        await conn.run_sync(models.metadata.create_all)
    rt: Any = SimpleNamespace(engine=engine, copies=models.copies, extra={})
    directory = load_directory(SEED / "directory.yaml")
    facts, seen = await _directory_facts(tmp_path, directory, AT, 0)
    async with engine.begin() as conn:
        for env in facts:
            await models.copies.apply(conn, env)

    async def same(tenant: str) -> None:
        async with engine.connect() as conn:
            for day in DAYS:
                incremental = await queue._people(conn, rt, tenant, day)
                assert incremental == await queue.rebuild_people(conn, rt, tenant, day), day
                assert await queue.people(conn, rt, tenant, day) == incremental, day  # kept per version

    tenant = directory.tenant
    await same(tenant)
    parsed = len(rt.extra[queue.PARSED][tenant])
    assert parsed > 0

    # The directory changes: one person moves to another unit from 01/01/2024, one person joins, one union
    # gets a new secretary. Only the changed rows are parsed again.
    people = list(directory.people)
    mover = people[1]
    other_unit = next(u.id for u in directory.units if u.id != mover.unit)
    moved = mover.model_copy(update={"unit": other_unit, "effective_from": datetime(2024, 1, 1).date()})
    newcomer = people[2].model_copy(
        update={"id": "p-new-9999", "email": "moi@example.vn", "name": "Lê Văn Mới"}
    )
    unions = list(directory.unions)
    changed_union = unions[0].model_copy(update={"secretary": people[3].id}) if unions else None
    changed = directory.model_copy(
        update={
            "people": [*people, moved, newcomer],
            "unions": [changed_union, *unions[1:]] if changed_union else unions,
        }
    )
    facts, _ = await _directory_facts(tmp_path, changed, AT, seen)
    assert facts  # the import published what changed
    async with engine.begin() as conn:
        for env in facts:
            await models.copies.apply(conn, env)
    await same(tenant)
    async with engine.connect() as conn:
        later = await queue._people(conn, rt, tenant, DAYS[-1])
    assert later.person(mover.id) is not None and later.person(mover.id).unit == other_unit  # type: ignore[union-attr]
    assert later.person("p-new-9999") is not None
    assert len(rt.extra[queue.PARSED][tenant]) <= parsed + len(facts)  # only the new documents were parsed
    await engine.dispose()


@dataclass
class Replicas:
    """One notify database (SQLite file) and two replicas' engines on it; ``rt`` is the first replica's."""

    mine: AsyncEngine
    other: AsyncEngine
    rt: Any
    directory: Directory
    sequences: dict[str, int]  # the last sequence campaign gave each subject (person, unit, union id)

    @property
    def tenant(self) -> str:
        return self.directory.tenant

    async def people(self, at: datetime = AT) -> domain.People:
        async with self.mine.connect() as conn:
            return await queue.people(conn, self.rt, self.tenant, at)

    async def rebuilt(self, at: datetime) -> domain.People:
        async with self.mine.connect() as conn:
            return await queue.rebuild_people(conn, self.rt, self.tenant, at)

    async def version(self) -> tuple[int, str]:
        async with self.mine.connect() as conn:
            return await queue._version(conn, self.tenant)

    async def apply(self, engine: AsyncEngine, *facts: Envelope) -> None:
        """What notify's handler of a directory fact writes (``facts.keep_copy``), committed through ``engine``."""
        async with engine.begin() as conn:
            for env in facts:
                await models.copies.apply(conn, env)

    def fact(self, record: Any, sequence: int | None = None) -> Envelope:
        """campaign's fact about ``record`` (a Person, Unit or Union), numbered as campaign numbers its subject
        unless ``sequence`` says otherwise."""
        if isinstance(record, Person):
            type_, key = "directory.person.changed", "person"
        else:
            type_, key = "directory.unit.changed", "union" if hasattr(record, "secretary") else "unit"
        if sequence is None:
            sequence = self.sequences[record.id] = self.sequences.get(record.id, 0) + 1
        return make_event(
            type_,
            {key: record},
            source="campaign",
            tenant=self.tenant,
            subject=record.id,
            sequence=sequence,
            time=AT,
        )


@pytest.fixture
async def replicas(tmp_path: Path) -> AsyncIterator[Replicas]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'notify.db'}"
    mine, other = make_engine(url), make_engine(url)
    async with mine.begin() as conn:
        await conn.run_sync(models.metadata.create_all)
    directory = load_directory(SEED / "directory.yaml")
    facts, _ = await _directory_facts(tmp_path, directory, AT, 0)
    r = Replicas(mine, other, SimpleNamespace(engine=mine, copies=models.copies, extra={}), directory, {})
    for env in facts:
        r.sequences[env.subject] = max(r.sequences.get(env.subject, 0), env.sequence)
    await r.apply(mine, *facts)
    try:
        yield r
    finally:
        await mine.dispose()
        await other.dispose()


def _newcomer(directory: Directory, n: int) -> Person:
    return directory.people[2].model_copy(
        update={"id": f"p-new-{n:04d}", "email": f"moi{n}@example.vn", "name": f"Lê Văn Mới {n}"}
    )


async def test_a_change_another_replica_commits_is_seen_at_the_next_call(replicas: Replicas) -> None:
    r = replicas
    kept = await r.people()
    assert await r.people() is kept  # nothing changed: the kept snapshot, not parsed again
    newcomer = _newcomer(r.directory, 1)
    await r.apply(r.other, r.fact(newcomer))
    seen = await r.people()
    assert seen.person(newcomer.id) is not None and kept.person(newcomer.id) is None
    assert r.rt.extra[queue.SNAPSHOTS][(r.tenant, AT.date())][1] is seen  # the kept snapshot replaced


async def test_a_new_person_with_a_lower_sequence_than_any_kept_is_seen(replicas: Replicas) -> None:
    """Sequences are campaign's per subject: a person's first fact is numbered 1 whatever other people's facts
    are numbered, so ``max(sequence)`` of the copy would not move for them; the version does."""
    r = replicas
    async with r.mine.connect() as conn:
        highest = (await conn.execute(sa.select(sa.func.max(models.copies.people.c.sequence)))).scalar_one()
    newcomer = _newcomer(r.directory, 2)
    assert r.fact(newcomer).sequence < highest
    before = await r.people()
    await r.apply(r.other, r.fact(newcomer, sequence=1))
    assert (await r.people()).person(newcomer.id) is not None
    assert before.person(newcomer.id) is None


async def test_an_older_fact_the_copy_refuses_changes_no_version(replicas: Replicas) -> None:
    r = replicas
    person = r.directory.people[1]
    newer = r.fact(person.model_copy(update={"email": "moi@example.vn"}))
    await r.apply(r.other, newer)
    before, kept = await r.version(), await r.people()
    assert kept.person(person.id).email == "moi@example.vn"  # type: ignore[union-attr]
    stale = r.fact(person.model_copy(update={"email": "cu@example.vn"}), sequence=newer.sequence - 1)
    await r.apply(r.other, stale)  # older than the row kept: upsert_newer refuses it
    assert await r.version() == before
    assert await r.people() is kept


async def test_a_change_read_and_rolled_back_is_not_taken_for_another_replicas_change(
    replicas: Replicas,
) -> None:
    """A batch applies a person's fact and reads the directory (a receipt for them) in one transaction, and
    rolls back; another replica then commits another change — the same number of changes as the rolled-back
    one made. What the rolled-back transaction read must not be served for it."""
    r = replicas
    first, second = _newcomer(r.directory, 3), _newcomer(r.directory, 4)
    async with r.mine.connect() as conn, conn.begin() as tx:
        await models.copies.apply(conn, r.fact(first))
        assert (await queue.people(conn, r.rt, r.tenant, AT)).person(first.id) is not None
        await tx.rollback()
    await r.apply(r.other, r.fact(second))
    seen = await r.people()
    assert seen.person(second.id) is not None and seen.person(first.id) is None


async def test_a_database_without_a_version_row_counts_from_nothing(replicas: Replicas) -> None:
    """An upgraded database holds copies and no version row yet: version 0, until the first change."""
    r = replicas
    async with r.mine.begin() as conn:
        await conn.execute(sa.delete(models.directory_versions))
    assert await r.version() == (0, "")
    kept = await r.people()
    newcomer = _newcomer(r.directory, 5)
    await r.apply(r.other, r.fact(newcomer))
    assert (await r.version())[0] == 1
    assert (await r.people()).person(newcomer.id) is not None and kept.person(newcomer.id) is None


async def test_the_kept_snapshot_equals_the_rebuilt_one_after_random_changes(replicas: Replicas) -> None:
    """Rounds of random changes — moves from a date, newcomers numbered below the facts kept, unit renames,
    unions' new secretaries, facts older than the rows they would replace — committed by either replica, the
    directory read on several dates between rounds: ``queue.people`` equals ``rebuild_people`` every time."""
    r, rng = replicas, random.Random(16)
    people, units, unions = list(r.directory.people), list(r.directory.units), list(r.directory.unions)
    dates = [date(2023, 1, 1), date(2023, 10, 20), date(2024, 1, 1), date(2024, 3, 1)]
    days = [*DAYS, datetime.fromisoformat("2024-01-01T09:00:00+07:00")]
    for n in range(12):
        facts = []
        for _ in range(rng.randint(1, 4)):
            kind = rng.choice(["move", "newcomer", "unit", "union", "stale"])
            if kind == "move":
                p = rng.choice(people)
                since = {"effective_from": rng.choice(dates), "effective_to": None}
                facts.append(r.fact(p.model_copy(update={"unit": rng.choice(units).id, **since})))
            elif kind == "newcomer":
                p = _newcomer(r.directory, 100 + n).model_copy(
                    update={"unit": rng.choice(units).id, "effective_to": None}
                )
                people.append(p)
                facts.append(r.fact(p, sequence=rng.randint(1, 3)))
            elif kind == "unit":
                u = rng.choice(units)
                since = {"effective_from": rng.choice(dates), "effective_to": None}
                facts.append(r.fact(u.model_copy(update={"name": f"{u.name} ({n})", **since})))
            elif kind == "union" and unions:
                facts.append(
                    r.fact(rng.choice(unions).model_copy(update={"secretary": rng.choice(people).id}))
                )
            else:
                p = rng.choice(people)
                older = rng.randint(1, r.sequences.get(p.id, 1))  # refused, unless its row is older still
                facts.append(r.fact(p.model_copy(update={"email": f"cu{n}@example.vn"}), sequence=older))
        await r.apply(rng.choice([r.mine, r.other]), *facts)
        for day in rng.sample(days, 2):
            assert await r.people(day) == await r.rebuilt(day), (n, day)
