"""notify's directory snapshot is read from the copies' keys and parses only documents it has not parsed
before; it must equal the snapshot parsed whole from the same copies (``rebuild_people``), on every date, after
the directory changes (a person moved from a later date, a new person, a union's new secretary)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import sqlalchemy as sa

from services.campaign import models as campaign_models
from services.campaign.usecases.publishing import import_directory
from services.notify import models
from services.notify.usecases import queue
from shared.clock import Clock
from shared.db import make_engine
from shared.documents import load_directory
from shared.events.envelope import Envelope
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
