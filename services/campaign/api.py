"""Campaign's HTTP API (thin): the directory and the assignments, read as of the request time."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter

from services.campaign import models
from shared.clock import VN
from shared.problems import Problem
from shared.service import CallerDep, RuntimeDep, require_person

router = APIRouter(prefix="/tenants/{tenant}", tags=["campaign"])


@router.get("/units", summary="Units of the directory in force today (đơn vị)")
async def list_units(tenant: str, rt: RuntimeDep, caller: CallerDep) -> list[dict[str, Any]]:
    require_person(caller)
    t = models.copies.units
    async with rt.engine.connect() as conn:
        ids = (
            (await conn.execute(sa.select(t.c.unit_id).where(t.c.tenant == tenant).distinct()))
            .scalars()
            .all()
        )
        units = [await models.copies.unit(conn, tenant, uid, rt.now()) for uid in ids]
    return [u.model_dump(mode="json") for u in units if u is not None]


@router.get("/people", summary="People of the directory in force today (cán bộ)")
async def list_people(tenant: str, rt: RuntimeDep, caller: CallerDep) -> list[dict[str, Any]]:
    require_person(caller)
    async with rt.engine.connect() as conn:
        people = await models.copies.people_in(conn, tenant, rt.now())
    return [p.model_dump(mode="json") for p in people]


@router.get("/editions/{edition}", summary="The edition document in force (latest version)")
async def get_edition(tenant: str, edition: str, rt: RuntimeDep, caller: CallerDep) -> dict[str, Any]:
    require_person(caller)
    e = models.copies.editions
    async with rt.engine.connect() as conn:
        doc = (
            await conn.execute(
                sa.select(e.c.doc)
                .where(e.c.tenant == tenant, e.c.edition == edition)
                .order_by(e.c.version.desc())
            )
        ).scalar()
    if doc is None:
        raise Problem(404, f"No edition {edition!r}.", f"Không có kỳ hội thi {edition!r}.", code="no_edition")
    import json

    return json.loads(doc)  # type: ignore[no-any-return]


@router.get("/editions/{edition}/assignments", summary="Assignments: who must deliver what by when")
async def list_assignments(
    tenant: str,
    edition: str,
    rt: RuntimeDep,
    caller: CallerDep,
    part: str | None = None,
    assignee: str | None = None,
    status: str | None = None,
) -> list[dict[str, Any]]:
    require_person(caller)
    a = models.assignments
    q = sa.select(a).where(a.c.tenant == tenant, a.c.edition == edition)
    if part:
        q = q.where(a.c.part == part)
    if assignee:
        q = q.where(a.c.assignee_id == assignee)
    if status:
        q = q.where(a.c.status == status)
    async with rt.engine.connect() as conn:
        rows = (await conn.execute(q.order_by(a.c.part, a.c.assignee_id))).mappings().all()
    return [
        {
            **{k: v for k, v in r.items() if k not in ("tenant",)},
            "deadline": r["deadline"].astimezone(VN).isoformat(),
            "fulfilled_at": r["fulfilled_at"].astimezone(VN).isoformat() if r["fulfilled_at"] else None,
            "created_at": r["created_at"].astimezone(VN).isoformat(),
        }
        for r in rows
    ]
