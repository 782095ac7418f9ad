"""The directory over HTTP (thin): units and people in force, as much of each as the caller may see."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from services.campaign.usecases import directory as directory_uc
from shared.clock import VN
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
    summary="People of the directory in force today (cán bộ), as much of each as the caller may see",
    dependencies=[Depends(no_store)],
)
async def list_people(tenant: str, rt: RuntimeDep, caller: CallerDep) -> list[dict[str, Any]]:
    """Everyone's name, title, unit, roles and unions; e-mail for a unit head's own unit and branches; date of
    birth and qualification for the person themselves and the secretariat (``shared.privacy``)."""
    person = require_person(caller)
    people, units = await directory_uc.people(rt, tenant)
    viewer = Viewer.of(caller.person_id, person, units)
    return [person_view(viewer, p.model_dump(mode="json")) for p in people]
