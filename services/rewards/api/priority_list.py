"""rewards' HTTP routes: the priority list (danh sách ưu tiên) the reward council receives, its exports, the
ledger journal, and the rules check."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, Literal

import sqlalchemy as sa
from fastapi import APIRouter, Body, Depends, Query, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.concurrency import iterate_in_threadpool, run_in_threadpool

from services.rewards import models
from services.rewards.usecases import projection, view
from shared.bounds import Generation, Instant
from shared.clock import VN
from shared.documents import Person, Unit
from shared.privacy import NO_STORE, Viewer, no_store
from shared.problems import Problem, field_error
from shared.reward_rules import parts_of
from shared.service import Caller, CallerDep, Runtime, RuntimeDep, require_person

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


async def _list(
    rt: Runtime,
    tenant: str,
    edition: str,
    as_of: datetime | None,
    unit: str | None = None,
    union: str | None = None,
    role: str | None = None,
    generation: int | None = None,
    offset: int = 0,
    limit: int | None = None,
) -> view.PriorityList:
    at = None if as_of is None else (as_of if as_of.tzinfo else as_of.replace(tzinfo=VN))
    assert rt.copies is not None
    async with rt.engine.connect() as conn:
        if generation is not None and await projection.generation_by_id(conn, generation) is None:
            raise Problem(
                404,
                f"No generation {generation} whose facts are kept.",
                f"Không có thế hệ dữ liệu {generation} còn lưu các sự kiện.",
                code="generation_not_found",
            )
        pl = await projection.load_list(
            conn, rt.backbone, rt.copies, tenant, edition, as_of=at, now=rt.now(),
            unit=unit, union=union, role=role, generation=generation, offset=offset, limit=limit,
        )  # fmt: skip
    if pl is None:
        raise Problem(
            404,
            f"No edition {edition!r} is known for tenant {tenant!r}.",
            f"Không có kỳ Hội thi {edition!r} của đơn vị {tenant!r}.",
            code="edition_not_found",
        )
    return pl


def _seen_by(caller: Caller, pl: view.PriorityList) -> view.PriorityList:
    """The list as the caller may read it (``shared.privacy``); unit heads see their unit and its branches."""
    parents = {u.unit_id: u.parent for u in pl.units}
    return view.seen_by(pl, Viewer.with_parents(caller.person_id, caller.person, parents))


async def _viewer(rt: Runtime, conn: AsyncConnection, tenant: str, person_id: str, person: Person) -> Viewer:
    assert rt.copies is not None
    u = rt.copies.units
    rows = (await conn.execute(sa.select(u.c.doc).where(u.c.tenant == tenant))).scalars()
    return Viewer.of(person_id, person, [Unit.model_validate_json(d) for d in rows])


@router.get(
    "/tenants/{tenant}/editions/{edition}/priority-list",
    response_model=view.PriorityList,
    dependencies=[Depends(no_store)],
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
        bool, Query(description="include every ledger entry of the listed participants")
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
    pl = _seen_by(
        caller,
        await _list(rt, tenant, edition, as_of, unit, union, role, generation, offset=offset, limit=limit),
    )
    return pl if ledger else pl.model_copy(update={"ledger": []})


@router.get(
    "/tenants/{tenant}/editions/{edition}/priority-list.csv",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}}},
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
    pl = _seen_by(caller, await _list(rt, tenant, edition, as_of, unit, union, role, generation))
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
    responses={200: {"content": {"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {}}}},
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
    pl = _seen_by(caller, await _list(rt, tenant, edition, as_of, unit, union, role))
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


class JournalEntry(BaseModel):
    position: int
    participant_kind: str
    participant_id: str
    subject: str
    rule: str
    event_id: str
    cause_event_id: str | None
    action: str
    points: float
    time: datetime
    reason_vi: str
    reason_en: str
    recorded_at: datetime


@router.get(
    "/tenants/{tenant}/editions/{edition}/ledger",
    response_model=list[JournalEntry],
    dependencies=[Depends(no_store)],
)
async def ledger_journal(
    tenant: str,
    edition: str,
    rt: RuntimeDep,
    caller: CallerDep,
    participant: Annotated[str | None, Query(description="a person or unit id")] = None,
) -> list[JournalEntry]:
    """The append-only ledger journal of the live generation: every credit and reversal, with the fact that
    earned the entry and the fact that changed it."""
    person = require_person(caller)
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
    return [
        JournalEntry(
            **{k: getattr(r, k) for k in JournalEntry.model_fields if k not in ("time", "recorded_at")},
            time=r.time.astimezone(VN),
            recorded_at=r.recorded_at.astimezone(VN),
        )
        for r in rows
    ]


class RulesCheck(BaseModel):
    valid: bool
    rules_version: int | None = None
    errors: list[dict[str, str]] = []


@router.post("/tenants/{tenant}/editions/{edition}/rules/validate", response_model=RulesCheck)
async def validate_rules(
    tenant: str,
    edition: str,
    rt: RuntimeDep,
    caller: CallerDep,
    body: Annotated[
        dict[str, Any],
        Body(
            description="a `rewards` section, or an object holding one (an edition document: with its `parts`)"
        ),
    ],
) -> RulesCheck:
    """Check a rewards rules document before publishing it: 200 when valid; 422 with one error per field
    (English and Vietnamese) otherwise. Nothing is stored."""
    require_person(caller)
    rewards = body.get("rewards", body) if isinstance(body, dict) else body
    if not isinstance(rewards, dict):
        raise Problem(
            422, "The rules must be an object.", "Quy tắc phải là một đối tượng.", code="validation"
        )
    if isinstance(body.get("parts"), list):
        parts: dict[str, str] | None = parts_of(body)
    else:  # the parts of the edition as rewards holds it, so its own part ids may be named
        assert rt.copies is not None
        async with rt.engine.connect() as conn:
            held = await rt.copies.edition(conn, tenant, edition)
        parts = parts_of(held) if held is not None else None
    errors = projection.check_rules(rewards, parts)
    if errors:
        raise Problem(
            422,
            "The reward rules are invalid: " + ", ".join(e.field for e in errors),
            "Quy tắc khen thưởng không hợp lệ: " + ", ".join(e.field for e in errors),
            code="invalid_rules",
            errors=[field_error(e.field, e.en, e.vi) for e in errors],
        )
    return RulesCheck(valid=True, rules_version=int(rewards.get("rules_version", 1)))


class RulesVersion(BaseModel):
    version: int
    rules_version: int
    valid: bool
    in_force: bool
    errors: list[dict[str, str]]
    rules: dict[str, Any]
    published_at: datetime


@router.get("/tenants/{tenant}/editions/{edition}/rules", response_model=list[RulesVersion])
async def rules_versions(tenant: str, edition: str, rt: RuntimeDep, caller: CallerDep) -> list[RulesVersion]:
    """Every rules version received with the edition, the refused ones with their errors; which is in force."""
    require_person(caller)
    r = models.rules
    async with rt.engine.connect() as conn:
        rows = (
            await conn.execute(
                sa.select(r).where(r.c.tenant == tenant, r.c.edition == edition).order_by(r.c.version)
            )
        ).all()
    in_force = max((x.version for x in rows if x.valid), default=None)
    return [
        RulesVersion(
            version=x.version,
            rules_version=x.rules_version,
            valid=x.valid,
            in_force=x.version == in_force,
            errors=[
                {"field": e["field"], "message": e["en"], "message_vi": e["vi"]} for e in json.loads(x.errors)
            ],
            rules=json.loads(x.doc),
            published_at=x.published_at.astimezone(VN),
        )
        for x in rows
    ]
