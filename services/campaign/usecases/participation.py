"""Participation as of a moment (by business time), as a query: per unit (as it was that day), per part and per
union tree, of the assignments the caller may see (``domain.access.scope_of``)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from services.campaign import domain, models
from services.campaign.domain.access import scope_of
from services.campaign.usecases.publishing import (
    DirectoryDocs,
    directory_version,
    kept_directory,
    parsed_directory,
    stored_directory_docs,
)
from shared import heavy
from shared.clock import VN
from shared.documents import Directory, Person
from shared.errors import DomainError, Refusal
from shared.service import Caller, Runtime


async def participation(
    rt: Runtime, caller: Caller, person: Person, tenant: str, edition: str, at: datetime
) -> dict[str, Any]:
    """Assigned / fulfilled / late / missed / extended as of ``at``; refused (forbidden) to a caller who may see
    nothing beyond their own assignments. A tally of every assignment of the edition: a heavy read
    (``shared/heavy.py``), read on the loop and tallied in a thread, one at a time per process."""
    a, m, x = models.assignments, models.misses, models.extensions
    async with heavy.slot("participation"):
        async with rt.engine.connect() as conn:
            version = await directory_version(conn, tenant)  # before the copy (``parsed_directory``)
            kept = kept_directory(tenant, version)
            docs = kept or await stored_directory_docs(conn, tenant)
            rows = (
                await conn.execute(sa.select(a).where(a.c.tenant == tenant, a.c.edition == edition))
            ).all()
            # the edition's own misses, changes and extensions — not every edition's the tenant ever ran
            missed = (
                await conn.execute(
                    sa.select(m.c.assignment_id, m.c.deadline).where(
                        m.c.tenant == tenant, m.c.edition == edition
                    )
                )
            ).all()
            c = models.assignment_changes
            changed = (
                await conn.execute(
                    sa.select(c.c.assignment_id, c.c.at, c.c.status, c.c.on_time)
                    .join(a, a.c.id == c.c.assignment_id)
                    .where(a.c.tenant == tenant, a.c.edition == edition, c.c.tenant == tenant)
                    .order_by(c.c.assignment_id, c.c.at, c.c.recorded)
                )
            ).all()
            extended = (
                await conn.execute(
                    sa.select(x.c.assignment_id, x.c.granted_at).where(
                        x.c.tenant == tenant, x.c.edition == edition
                    )
                )
            ).all()
        return await asyncio.to_thread(
            _tally, caller, person, at, version, docs, rows, missed, changed, extended
        )


def _tally(
    caller: Caller,
    person: Person,
    at: datetime,
    version: tuple[int, str],
    docs: Directory | DirectoryDocs,
    rows: Sequence[Any],
    missed_rows: Sequence[Any],
    changed_rows: Sequence[Any],
    extended_rows: Sequence[Any],
) -> dict[str, Any]:
    day = at.astimezone(VN).date()
    directory = docs if isinstance(docs, Directory) else parsed_directory(version, docs)
    missed: dict[str, list[datetime]] = {}
    for r in missed_rows:
        missed.setdefault(r.assignment_id, []).append(r.deadline)
    changes: dict[str, list[domain.StatusChange]] = {}
    for r in changed_rows:
        changes.setdefault(r.assignment_id, []).append(
            domain.StatusChange(r.at, r.status == "fulfilled", r.on_time)
        )
    extended: dict[str, list[datetime]] = {}
    for r in extended_rows:
        extended.setdefault(r.assignment_id, []).append(r.granted_at)
    facts = [
        domain.AssignmentFacts(
            r.id,
            r.part,
            r.assignee_id,
            r.unit_id,
            tuple(changes.get(r.id, ())),
            tuple(missed.get(r.id, ())),
            tuple(extended.get(r.id, ())),
        )
        for r in rows
        if r.created_at <= at
    ]
    units_by_id = {u.id: u for u in directory.units}
    scope, visible = scope_of(caller, person, directory)
    if visible is None:
        raise DomainError(
            Refusal.FORBIDDEN,
            "Participation is shown to the secretariat, the director, unit heads and union secretaries.",
            "Chỉ thường trực, Giám đốc Sở, thủ trưởng đơn vị và bí thư/chủ tịch đoàn thể được xem tình hình tham gia.",
            code="forbidden",
        )
    facts = [f for f in facts if visible(f.assignee_id, f.unit_id)]

    in_force = directory.units_as_of(day)
    that_day = {u.id for u in in_force}
    successor: dict[str, str] = {}  # a unit replaced by that day → the first row in force that replaces it
    for u in in_force:
        for s in u.successor_of:
            successor.setdefault(s, u.id)

    def unit_as_of(unit_id: str | None) -> str | None:
        """The unit as it was on ``day``; after a merge or rename, its successor in force that day."""
        if unit_id is None:
            return None
        if unit_id not in units_by_id or unit_id in that_day:
            return unit_id
        return successor.get(unit_id, unit_id)

    union_parent = {u.id: u.parent for u in directory.unions}

    def unions_of(f: domain.AssignmentFacts) -> list[str] | None:
        """The person's unions and every union above them: a Chi đoàn's members count in the Đoàn above it."""
        try:
            direct = directory.person(f.assignee_id, day).unions
        except KeyError:
            return None
        tree: list[str] = []
        for union in direct:
            while union is not None and union not in tree:
                tree.append(union)
                union = union_parent.get(union)
        return tree

    by_unit = domain.tally(facts, at, lambda f: unit_as_of(f.unit_id))
    names = {}
    for uid in by_unit:
        try:  # the name the unit had that day (a unit may have been renamed since)
            names[uid] = directory.unit(uid, day).name
        except KeyError:
            names[uid] = units_by_id[uid].name if uid in units_by_id else uid
    union_names = {u.id: u.name for u in directory.unions}
    return {
        "as_of": at.astimezone(VN).isoformat(),
        "scope": scope,
        "units": [{"unit_id": k, "name": names[k], **v} for k, v in by_unit.items()],
        "parts": [{"part": k, **v} for k, v in domain.tally(facts, at, lambda f: f.part).items()],
        "unions": [
            {"union_id": k, "name": union_names.get(k, k), **v}
            for k, v in domain.tally(facts, at, unions_of).items()
        ],
    }
