"""Campaign's HTTP API (thin): the directory and the assignments, read as of the request time."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Header
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncConnection

from services.campaign import models
from services.campaign.usecases import deadlines, extensions
from services.campaign.usecases.extensions import edition_in_force as _edition
from services.campaign.usecases.extensions import vn as _vn
from services.campaign.usecases.publishing import stored_directory
from shared.bounds import AwareInstant, BusinessDate
from shared.clock import VN
from shared.documents import Unit, deadline_label_vi
from shared.guard import AsOfDate
from shared.privacy import Viewer, no_store, person_view
from shared.problems import Problem
from shared.service import CallerDep, RuntimeDep, require_person
from shared.uow import Idempotent, run

router = APIRouter(prefix="/tenants/{tenant}", tags=["campaign"])


@router.get("/units", summary="Units of the directory in force today, or on ``as_of`` (đơn vị)")
async def list_units(
    tenant: str, rt: RuntimeDep, caller: CallerDep, as_of: AsOfDate = None
) -> list[dict[str, Any]]:
    require_person(caller)
    day = as_of or rt.now().astimezone(VN).date()
    async with rt.engine.connect() as conn:
        directory = await stored_directory(conn, tenant)
    return [u.model_dump(mode="json") for u in directory.units_as_of(day)]


@router.get(
    "/people",
    summary="People of the directory in force today (cán bộ), as much of each as the caller may see",
    dependencies=[Depends(no_store)],
)
async def list_people(tenant: str, rt: RuntimeDep, caller: CallerDep) -> list[dict[str, Any]]:
    """Everyone's name, title, unit, roles and unions; e-mail for a unit head's own unit and branches; date of
    birth and qualification for the person themselves and the secretariat (``shared.privacy``)."""
    person = require_person(caller)
    async with rt.engine.connect() as conn:
        people = await models.copies.people_in(conn, tenant, rt.now())
        units = await units_of(conn, tenant)
    viewer = Viewer.of(caller.person_id, person, units)
    return [person_view(viewer, p.model_dump(mode="json")) for p in people]


async def units_of(conn: AsyncConnection, tenant: str) -> list[Unit]:
    """Every unit row of ``tenant`` (all periods): enough to find a unit head's branches."""
    u = models.copies.units
    docs = (await conn.execute(sa.select(u.c.doc).where(u.c.tenant == tenant))).scalars()
    return [Unit.model_validate_json(d) for d in docs]


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


# the deadline clock's agenda (services/campaign/deadlines.py) is its own working state, not the assignment
_NOT_SHOWN = ("tenant", "remind_at", "remind_for")


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
    """Scoped to the caller: everything for the director and the secretariat, a unit head's unit and branches,
    a union secretary's members, an official's own assignments."""
    person = require_person(caller)
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
        directory = await stored_directory(conn, tenant)
    from services.campaign.api.documents import scope_of

    _, visible = scope_of(caller, person, directory)
    rows = [
        r
        for r in rows
        if (
            visible(r["assignee_id"], r["unit_id"])
            if visible
            else r["assignee_id"] in (person.id, person.unit)
        )
    ]
    # every instant in Vietnam time (+07:00), extended_to included; the deadline in force as users read it
    return [
        {
            **{k: _vn(v) if isinstance(v, datetime) else v for k, v in r.items() if k not in _NOT_SHOWN},
            "deadline_display": deadline_label_vi(r["extended_to"] or r["deadline"]),
        }
        for r in rows
    ]


# ------------------------------------------------------------------------------ deadlines and extensions


class ExtensionCreate(BaseModel):
    """A later deadline for one assignee (gia hạn). A bare date means the end of that day in the edition's zone."""

    model_config = ConfigDict(extra="forbid")

    new_deadline: BusinessDate | AwareInstant
    reason: str = Field(min_length=3, max_length=2000)


@router.post(
    "/editions/{edition}/assignments/{assignment_id}/extensions",
    status_code=201,
    summary="Extend one assignee's deadline (secretariat only); the part's official deadline stays",
)
async def grant_extension(
    tenant: str,
    edition: str,
    assignment_id: str,
    body: ExtensionCreate,
    rt: RuntimeDep,
    caller: CallerDep,
    idempotency_key: Annotated[str | None, Header()] = None,
) -> dict[str, Any]:
    person = require_person(caller)
    if not caller.has_role("secretariat"):
        raise Problem(
            403,
            "Only the secretariat (Department Office) may extend a deadline.",
            "Chỉ bộ phận thường trực (Văn phòng Sở) được gia hạn.",
            code="not_secretariat",
        )
    cmd = extensions.GrantExtension(
        tenant, edition, assignment_id, body.new_deadline, body.reason, approved_by=person.id
    )
    key = Idempotent(
        f"extension:{tenant}:{edition}:{assignment_id}", idempotency_key, body.model_dump(mode="json"), 201
    )
    done = await run(rt, extensions.grant_extension, cmd, idempotent=key)
    return done.replayed.body if done.replayed is not None else done.unwrap()


@router.get("/editions/{edition}/deadlines", summary="Where each deadline stands on the deadline clock")
async def list_deadlines(tenant: str, edition: str, rt: RuntimeDep, caller: CallerDep) -> dict[str, Any]:
    """Per part: the official deadline, whether intake is closed, how many on-time receipts campaign has applied
    and whether misses are decided (``open`` | ``waiting_for_intake`` | ``waiting_for_receipts`` | ``ready`` |
    ``decided``); then each extended deadline the same way."""
    require_person(caller)
    now = rt.now()
    st = deadlines.status_of(rt)
    out: list[dict[str, Any]] = []
    a = models.assignments
    d = models.deadline_decisions
    async with rt.engine.connect() as conn:
        doc = await _edition(conn, tenant, edition)
        for part in doc.parts:
            if part.kind not in deadlines.CLOCKED_KINDS:
                continue
            targets: list[tuple[datetime, str]] = [(doc.deadline_of(part.id), "")]
            ext = await conn.execute(
                sa.select(a.c.extended_to, a.c.assignee_id).where(
                    a.c.tenant == tenant,
                    a.c.edition == edition,
                    a.c.part == part.id,
                    a.c.extended_to.is_not(None),
                )
            )
            targets += [(r.extended_to, r.assignee_id) for r in ext]
            for deadline, assignee in targets:
                state, accepted, applied = await deadlines.deadline_state(
                    conn, doc, part.id, deadline, assignee, now
                )
                decision = (
                    await conn.execute(
                        sa.select(d).where(
                            d.c.tenant == tenant,
                            d.c.edition == edition,
                            d.c.part == part.id,
                            d.c.deadline == deadline,
                            d.c.assignee_id == assignee,
                        )
                    )
                ).first()
                out.append(
                    {
                        "part": part.id,
                        "assignee_id": assignee or None,
                        "deadline": _vn(deadline),
                        "deadline_display": deadline_label_vi(deadline),
                        "state": state,
                        "intake_accepted_on_time": accepted,
                        "receipts_applied": applied,
                        "missed": decision.missed if decision else None,
                        "decided_at": _vn(decision.decided_at) if decision else None,
                    }
                )
    return {
        "now": _vn(now),
        "clock_at": _vn(st.at),
        "clock_ticks": st.ticks,
        # Only the replica holding the clock's lease ticks; the others stand by (generation: the fencing token).
        "clock_lease": {
            "held": st.lease is not None and st.lease.held,
            "generation": st.lease.generation if st.lease is not None else None,
        },
        "clock_error": st.last_error,
        "deadlines": out,
    }
