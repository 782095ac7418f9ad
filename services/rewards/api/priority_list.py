"""rewards' priority list routes (danh sách ưu tiên): the list the reward council receives and its exports
(CSV, XLSX). Thin: each parses, checks the caller is a person, reads the list as the caller may see it
(``usecases/priority.py``) and shapes the answer."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Response
from fastapi.responses import StreamingResponse
from starlette.concurrency import iterate_in_threadpool, run_in_threadpool

from services.rewards.usecases import priority, view
from shared import heavy
from shared.bounds import Generation, Instant
from shared.privacy import NO_STORE, no_store
from shared.service import CallerDep, RuntimeDep, require_person

router = APIRouter(tags=["rewards"])

AsOf = Annotated[
    Instant | None,
    Query(
        description="business time: only facts up to it count (a miss at its deadline); no offset = Vietnam "
        "time. Default: every fact kept."
    ),
]
UnitFilter = Annotated[str | None, Query(description="a unit id: that unit and the units under it")]
UnionFilter = Annotated[str | None, Query(description="a union id: its members (and its sub-unions')")]
RoleFilter = Annotated[str | None, Query(description="a directory role, e.g. official, unit_head")]
GenerationParam = Annotated[
    Generation | None,
    Query(description="audit: the list as another generation's facts give it (default: the live one)"),
]


@router.get(
    "/tenants/{tenant}/editions/{edition}/priority-list",
    response_model=view.PriorityList,
    dependencies=[Depends(no_store)],
    responses=heavy.BUSY,  # one read of the list at a time per process
)
async def priority_list(
    tenant: str,
    edition: str,
    rt: RuntimeDep,
    caller: CallerDep,
    as_of: AsOf = None,
    unit: UnitFilter = None,
    union: UnionFilter = None,
    role: RoleFilter = None,
    ledger: Annotated[
        bool,
        Query(
            description="include every ledger entry of the listed participants; on a page (limit), also each "
            "unit's every reason (else a page names a unit's reasons in brief: reason_totals, per part and rule)"
        ),
    ] = False,
    generation: GenerationParam = None,
    limit: Annotated[
        int | None,
        Query(
            ge=1,
            le=1000,
            description="a page of this many persons and as many units, in list order (``page`` says which; "
            "union roll-ups are left out of a page). Default: the whole list",
        ),
    ] = None,
    offset: Annotated[int, Query(ge=0, description="with ``limit``: where the page starts")] = 0,
) -> view.PriorityList:
    """Persons and units ranked by points, ties broken by the rules' tie-breakers, each with the entries that
    count (its reasons, in Vietnamese and English), its eligibility for titles, and roll-ups by unit tree and
    union. Filters keep the ranks of the whole list."""
    require_person(caller)
    return await priority.read(
        rt,
        caller,
        tenant,
        edition,
        as_of,
        unit,
        union,
        role,
        generation,
        offset=offset,
        limit=limit,
        ledger=ledger,
    )


@router.get(
    "/tenants/{tenant}/editions/{edition}/priority-list.csv",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}}, **heavy.BUSY},
)
async def priority_list_csv(
    tenant: str,
    edition: str,
    rt: RuntimeDep,
    caller: CallerDep,
    sheet: Annotated[Literal["persons", "units", "ledger"], Query()] = "persons",
    as_of: AsOf = None,
    unit: UnitFilter = None,
    union: UnionFilter = None,
    role: RoleFilter = None,
    generation: GenerationParam = None,
) -> Response:
    """One sheet as CSV (UTF-8 with BOM, Vietnamese headers): persons, units or ledger (every entry)."""
    require_person(caller)
    pl = await priority.read(rt, caller, tenant, edition, as_of, unit, union, role, generation)
    name = f"danh-sach-uu-tien-{edition}-{sheet}.csv"
    return StreamingResponse(
        iterate_in_threadpool(view.csv_chunks(pl, sheet)),
        media_type="text/csv; charset=utf-8",
        headers={
            **NO_STORE,
            "Content-Disposition": f'attachment; filename="{name}"',
            "X-Rules-Version": str(pl.rules_version or ""),
        },
    )


@router.get(
    "/tenants/{tenant}/editions/{edition}/priority-list.xlsx",
    response_class=Response,
    responses={
        200: {"content": {"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {}}},
        **heavy.BUSY,
    },
)
async def priority_list_xlsx(
    tenant: str,
    edition: str,
    rt: RuntimeDep,
    caller: CallerDep,
    as_of: AsOf = None,
    unit: UnitFilter = None,
    union: UnionFilter = None,
    role: RoleFilter = None,
) -> Response:
    """The workbook the council uses as it is: sheets Cá nhân, Đơn vị and Sổ ghi nhận (every ledger entry)."""
    require_person(caller)
    pl = await priority.read(rt, caller, tenant, edition, as_of, unit, union, role)
    spool = await run_in_threadpool(view.xlsx_file, pl)  # written row by row (write-only), off the event loop
    return StreamingResponse(
        view.file_chunks(spool),
        media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        headers={
            **NO_STORE,
            "Content-Disposition": f'attachment; filename="danh-sach-uu-tien-{edition}.xlsx"',
            "X-Rules-Version": str(pl.rules_version or ""),
        },
    )
