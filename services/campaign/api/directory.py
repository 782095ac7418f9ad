"""The directory over HTTP (thin): units and people in force, as much of each as the caller may see."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response

from services.campaign.usecases import directory as directory_uc
from shared import paging
from shared.clock import VN
from shared.directory import Id
from shared.guard import AsOfDate
from shared.privacy import Viewer, no_store, person_view
from shared.service import CallerDep, RuntimeDep, require_person

router = APIRouter(prefix="/tenants/{tenant}", tags=["campaign"])


@router.get("/units", summary="Units of the directory in force today, or on ``as_of`` (đơn vị)")
async def list_units(
    tenant: str, rt: RuntimeDep, caller: CallerDep, as_of: AsOfDate = None
) -> list[dict[str, Any]]:
    require_person(caller)
    day = as_of or rt.now().astimezone(VN).date()
    directory = await directory_uc.directory(rt, tenant)
    return [u.model_dump(mode="json") for u in directory.units_as_of(day)]


@router.get(
    "/people",
    summary="People of the directory in force today (cán bộ), a page at a time in Vietnamese name order, "
    "as much of each as the caller may see",
    dependencies=[Depends(no_store)],
)
async def list_people(
    tenant: str,
    rt: RuntimeDep,
    caller: CallerDep,
    request: Request,
    response: Response,
    q: Annotated[
        str | None,
        Query(
            max_length=100,
            description="search: a name having a word that begins with each word of q, accents, vowel marks and "
            "case aside (``nguyen an`` finds Nguyễn Văn An), or exactly a person id",
        ),
    ] = None,
    unit: Annotated[Id | None, Query(description="only the people of this unit")] = None,
    id: Annotated[
        list[Id] | None, Query(max_length=200, description="only these people (repeat: id=a&id=b, up to 200)")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500, description="people per page")] = 100,
    after: paging.Cursor = None,
) -> list[dict[str, Any]]:
    """Name, title, unit, roles and unions; e-mail for a unit head's own unit and branches; date of birth and
    qualification for the person themselves and the secretariat (``shared.privacy``). Ordered by given name, then
    family and middle names, in the Vietnamese alphabet and tones (``shared.collation``), then id. When more
    follow, the ``Link`` header names the next page (``rel="next"``); without it, this page is the last."""
    person = require_person(caller)
    at = paging.place(after, 2)  # (key, id) of the page before's last person
    place = directory_uc.parse_cursor(at) if at else None
    if at and place is None:
        raise paging.not_a_cursor()
    page = await directory_uc.people(
        rt,
        directory_uc.PeopleQuery(
            tenant,
            search=q,
            unit=unit,
            ids=id or (),
            limit=limit,
            after=place,
            units=person.has_role("unit_head"),  # whose contact data a head sees: their unit and its branches
        ),
    )
    paging.link_next(request, response, page.next)
    viewer = Viewer.of(caller.person_id, person, page.units)
    return [person_view(viewer, p.model_dump(mode="json")) for p in page.people]
