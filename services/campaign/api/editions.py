"""Editions over HTTP (thin): the edition in force, its assignments, extensions of a deadline (gia hạn) and
where each deadline stands on the clock."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from services.campaign.usecases import deadlines, editions, extensions
from shared import paging
from shared.bounds import AwareInstant, BusinessDate
from shared.problems import Problem
from shared.service import CallerDep, RuntimeDep, require_person
from shared.uow import Idempotent, run

router = APIRouter(prefix="/tenants/{tenant}", tags=["campaign"])


@router.get("/editions/{edition}", summary="The edition document in force (latest version)")
async def get_edition(tenant: str, edition: str, rt: RuntimeDep, caller: CallerDep) -> dict[str, Any]:
    require_person(caller)
    return await editions.document(rt, tenant, edition)  # type: ignore[no-any-return]


@router.get("/editions/{edition}/assignments", summary="Assignments: who must deliver what by when")
async def list_assignments(
    tenant: str,
    edition: str,
    rt: RuntimeDep,
    caller: CallerDep,
    request: Request,
    response: Response,
    part: str | None = None,
    assignee: str | None = None,
    status: str | None = None,
    assignee_kind: Annotated[
        Literal["person", "unit", "council"] | None,
        Query(description="only assignments of this kind of assignee"),
    ] = None,
    limit: paging.WholeOrPage = None,
    after: paging.Cursor = None,
) -> list[dict[str, Any]]:
    """Scoped to the caller: everything for the director and the secretariat, a unit head's unit and branches,
    a union secretary's members, an official's own assignments. In the order of part and assignee; with
    ``limit``, a page, the ``Link`` header naming the next (``rel="next"``) when more follow."""
    person = require_person(caller)
    at = paging.place(after, 2)  # (part, assignee) of the page before's last row
    page = await editions.assignments(
        rt,
        caller,
        person,
        tenant,
        edition,
        part=part,
        assignee=assignee,
        status=status,
        assignee_kind=assignee_kind,
        limit=limit,
        after=(at[0], at[1]) if at else None,
    )
    paging.link_next(request, response, page.next)
    return page.rows


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
    return await deadlines.board(rt, tenant, edition)
