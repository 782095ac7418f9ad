"""The ledger journal (sổ ghi nhận) of the live generation, as a caller may read it: a query (it writes nothing)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from services.rewards import models
from services.rewards.usecases import projection
from shared.documents import Person, Unit
from shared.privacy import Viewer
from shared.service import Caller, Runtime


async def journal(
    rt: Runtime, caller: Caller, person: Person, tenant: str, edition: str, participant: str | None
) -> Sequence[Any]:
    """Every credit and reversal of the edition (of ``participant`` alone, if given), in journal order; a
    person's entries only to who may see their participation."""
    j = models.ledger_journal
    async with rt.engine.connect() as conn:
        g = await projection.active_generation(conn)
        q = sa.select(j).where(j.c.generation == g.id, j.c.tenant == tenant, j.c.edition == edition)
        if participant:
            q = q.where(j.c.participant_id == participant)
        rows = (await conn.execute(q.order_by(j.c.position))).all()
        viewer = await _viewer(rt, conn, tenant, caller.person_id, person)
        if not viewer.sees_all_participation:  # a person's entries only to who may see their participation
            assert rt.copies is not None
            people = {p.id: p.unit for p in await rt.copies.people_in(conn, tenant, rt.now())}
            rows = [
                r
                for r in rows
                if r.participant_kind != "person"
                or viewer.sees_participation(r.participant_id, people.get(r.participant_id))
            ]
    return rows


async def _viewer(rt: Runtime, conn: AsyncConnection, tenant: str, person_id: str, person: Person) -> Viewer:
    assert rt.copies is not None
    u = rt.copies.units
    rows = (await conn.execute(sa.select(u.c.doc).where(u.c.tenant == tenant))).scalars()
    return Viewer.of(person_id, person, [Unit.model_validate_json(d) for d in rows])
