"""Participation over HTTP (thin): per unit, per part and per union tree, as of any moment (by business time).

The secretariat and the director see everything; a unit head their unit and its branches; a union secretary the
members of their union and of the unions below it.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query

from services.campaign.usecases import participation as participation_uc
from shared import heavy
from shared.bounds import BusinessDate, Instant, end_of_day
from shared.clock import VN
from shared.service import CallerDep, RuntimeDep, require_person

router = APIRouter(prefix="/tenants/{tenant}", tags=["campaign: documents"])


def _as_of(value: date | None, now: datetime) -> datetime:
    """A date (the end of that day, Vietnam time) or an instant (no offset = Vietnam time); default now."""
    if value is None:
        return now
    if not isinstance(value, datetime):
        return end_of_day(value)
    return value if value.tzinfo else value.replace(tzinfo=VN)


@router.get(
    "/editions/{edition}/participation",
    summary="Participation per unit, per part and per union: assigned / fulfilled / late / missed / extended",
    responses=heavy.BUSY,
)
async def participation(
    tenant: str,
    edition: str,
    rt: RuntimeDep,
    caller: CallerDep,
    as_of: Annotated[
        BusinessDate | Instant | None, Query(description="YYYY-MM-DD (end of day, +07:00) or an instant")
    ] = None,
) -> dict[str, Any]:
    person = require_person(caller)
    at = _as_of(as_of, rt.now())
    return await participation_uc.participation(rt, caller, person, tenant, edition, at)
