"""rewards' HTTP routes: the priority list (danh sách ưu tiên) the reward council receives."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import sqlalchemy as sa
from fastapi import APIRouter, Query
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncConnection

from services.rewards import domain, models
from shared.clock import VN
from shared.copies import Copies
from shared.documents import Person
from shared.problems import Problem
from shared.service import CallerDep, RuntimeDep, require_person

router = APIRouter(tags=["rewards"])


class Reason(BaseModel):
    vi: str
    en: str
    event_id: str
    rule: str
    points: int


class PersonPriority(BaseModel):
    rank: int
    person_id: str
    name: str | None
    unit_id: str | None
    points: int
    reasons: list[Reason]


class UnitPriority(BaseModel):
    rank: int
    unit_id: str
    name: str | None
    points: int
    reasons: list[Reason]


class PriorityList(BaseModel):
    edition: str
    as_of: datetime
    persons: list[PersonPriority]
    units: list[UnitPriority]


@router.get("/tenants/{tenant}/editions/{edition}/priority-list", response_model=PriorityList)
async def priority_list(
    tenant: str,
    edition: str,
    rt: RuntimeDep,
    caller: CallerDep,
    as_of: Annotated[
        datetime | None,
        Query(description="business time; only entries earned up to it count (no offset: Vietnam time)"),
    ] = None,
) -> PriorityList:
    """Participants ranked by points, ties to the earliest fulfilment, each with the reasons that count."""
    require_person(caller)
    at = rt.now() if as_of is None else (as_of if as_of.tzinfo else as_of.replace(tzinfo=VN))
    copies = rt.copies
    assert copies is not None
    t = models.ledger
    async with rt.engine.connect() as conn:
        doc = await copies.edition(conn, tenant, edition)
        query = sa.select(t).where(t.c.tenant == tenant, t.c.edition == edition, t.c.time <= at)
        rows = (await conn.execute(query)).all()
        if doc is None and not rows:
            raise Problem(
                404,
                f"No edition {edition!r} is known for tenant {tenant!r}.",
                f"Không có kỳ Hội thi {edition!r} của đơn vị {tenant!r}.",
                code="edition_not_found",
            )
        entries = [_entry(r) for r in rows]
        cap = doc.rewards.caps.get(domain.PER_PERSON_PER_PART) if doc is not None and doc.rewards else None
        persons = domain.rank([e for e in entries if e.participant_kind == "person"], per_part_cap=cap)
        units = domain.rank([e for e in entries if e.participant_kind == "unit"])
        people = {p.id: p for p in await copies.people_in(conn, tenant, at)}
        unit_names = await _unit_names(conn, copies, tenant, [u.participant_id for u in units], at)
    unit_at_receipt = {e.submission_id: e.participant_id for e in entries if e.participant_kind == "unit"}
    return PriorityList(
        edition=edition,
        as_of=at.astimezone(VN),
        persons=[
            PersonPriority(
                rank=r.rank,
                person_id=r.participant_id,
                name=_name(people.get(r.participant_id)),
                unit_id=_unit_of(people.get(r.participant_id), r, unit_at_receipt),
                points=r.points,
                reasons=_reasons(r),
            )
            for r in persons
        ],
        units=[
            UnitPriority(
                rank=r.rank,
                unit_id=r.participant_id,
                name=unit_names.get(r.participant_id),
                points=r.points,
                reasons=_reasons(r),
            )
            for r in units
        ],
    )


def _entry(r: sa.Row) -> domain.LedgerEntry:  # type: ignore[type-arg]
    return domain.LedgerEntry(
        submission_id=r.submission_id,
        participant_kind=r.participant_kind,
        participant_id=r.participant_id,
        event_id=r.event_id,
        rule=r.rule,
        points=r.points,
        time=r.time,
        edition=r.edition,
        part=r.part,
        kind=r.kind,
        reason_vi=r.reason_vi,
        reason_en=r.reason_en,
    )


def _reasons(r: domain.Ranked) -> list[Reason]:
    return [
        Reason(vi=e.reason_vi, en=e.reason_en, event_id=e.event_id, rule=e.rule, points=e.points)
        for e in r.entries
    ]


def _name(p: Person | None) -> str | None:
    return p.name if p is not None else None


def _unit_of(p: Person | None, r: domain.Ranked, unit_at_receipt: dict[str, str]) -> str | None:
    """The person's unit in the directory as of the list; else their unit at their latest receipt."""
    if p is not None:
        return p.unit
    return unit_at_receipt.get(r.entries[-1].submission_id) if r.entries else None


async def _unit_names(
    conn: AsyncConnection, copies: Copies, tenant: str, unit_ids: list[str], at: datetime
) -> dict[str, str]:
    out = {}
    for uid in unit_ids:
        u = await copies.unit(conn, tenant, uid, at)
        if u is not None:
            out[uid] = u.name
    return out
