"""Participation as of a moment (by business time), as a query: per unit (as it was that day), per part and per
union tree, of the assignments the caller may see (``domain.access.scope_of``).

Each assignment's standing as of the moment is decided by the database, in one statement (``standings``: the
SQL form of ``domain.standing``, over indexed reads of its status changes, misses and extensions); what
comes back is four short strings per assignment, grouped here through maps made once per directory version
and day (a unit as it was that day, a person's union tree). ``domain.tally`` over the same facts gives the same
counts (tests/integration/test_campaign_participation_sql.py)."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Sequence
from datetime import date, datetime
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
from shared.db import UtcDateTime
from shared.documents import Directory, Person
from shared.errors import DomainError, Refusal
from shared.service import Caller, Runtime


async def participation(
    rt: Runtime, caller: Caller, person: Person, tenant: str, edition: str, at: datetime
) -> dict[str, Any]:
    """Assigned / fulfilled / late / missed / extended as of ``at``; refused (forbidden) to a caller who may see
    nothing beyond their own assignments. A heavy read (``shared/heavy.py``), one at a time per process: the
    standings are read on the loop, grouped in a thread."""
    async with heavy.slot("participation"):
        async with rt.engine.connect() as conn:
            version = await directory_version(conn, tenant)  # before the copy (``parsed_directory``)
            kept = kept_directory(tenant, version)
            docs = kept or await stored_directory_docs(conn, tenant)
            rows = (await conn.execute(standings(), {"tenant": tenant, "edition": edition, "at": at})).all()
        return await asyncio.to_thread(_tally, caller, person, at, version, docs, rows)


@functools.cache
def standings() -> sa.Select[Any]:
    """(part, unit_id, assignee_id, standing) of every assignment of an edition made by ``at``, its standing
    as ``domain.standing`` decides it: the last status change at or before ``at`` (by business time, then the
    order recorded) decides fulfilment; else a deadline missed by then; else an extension granted by then;
    else open. Each by the assignment's id alone (the primary key of assignments): with the tenant in the
    condition, SQLite without statistics ranged over the tenant's every change, for each assignment. Built once
    (``shared/db.py``: hot statements)."""
    a, c, m, x = models.assignments, models.assignment_changes, models.misses, models.extensions
    at = sa.bindparam("at", type_=UtcDateTime())
    last = (
        sa.select(sa.case((c.c.status != "fulfilled", 0), (c.c.on_time == sa.true(), 1), else_=2))
        .where(c.c.assignment_id == a.c.id, c.c.at <= at)
        .order_by(c.c.at.desc(), c.c.recorded.desc())
        .limit(1)
        .scalar_subquery()
    )
    missed = sa.exists().where(m.c.assignment_id == a.c.id, m.c.deadline <= at)
    extended = sa.exists().where(x.c.assignment_id == a.c.id, x.c.granted_at <= at)
    unfulfilled = sa.case((missed, "missed"), (extended, "extended"), else_="open")
    standing = sa.case({1: "fulfilled", 2: "fulfilled_late"}, value=last, else_=unfulfilled)
    return sa.select(a.c.part, a.c.unit_id, a.c.assignee_id, standing.label("standing")).where(
        a.c.tenant == sa.bindparam("tenant"),
        a.c.edition == sa.bindparam("edition"),
        a.c.created_at <= at,
    )


# Per (tenant, directory version, day): each person's union tree, each unit's row of that day (read-only).
_MAPS: dict[tuple[str, tuple[int, str], date], tuple[dict[str, tuple[str, ...]], dict[str, str]]] = {}


def _maps(
    directory: Directory, version: tuple[int, str], day: date
) -> tuple[dict[str, tuple[str, ...]], dict[str, str]]:
    """(person → their unions and every union above them, unit → the unit as it was on ``day``) — made once
    per directory version and day; version 0 (an empty copy) is not kept."""
    key = (directory.tenant, version, day)
    found = _MAPS.get(key)
    if found is not None:
        return found
    union_parent = {u.id: u.parent for u in directory.unions}
    trees: dict[str, tuple[str, ...]] = {}
    for p in directory.people_as_of(day):
        # the person's unions and every union above them: a Chi đoàn's members count in the Đoàn above it
        tree: list[str] = []
        for union in p.unions:
            up: str | None = union
            while up is not None and up not in tree:
                tree.append(up)
                up = union_parent.get(up)
        trees[p.id] = tuple(tree)
    in_force = directory.units_as_of(day)
    that_day = {u.id for u in in_force}
    successor: dict[str, str] = {}  # a unit replaced by that day → the first row in force that replaces it
    for u in in_force:
        for s in u.successor_of:
            successor.setdefault(s, u.id)
    units = {
        u.id: u.id
        if u.id in that_day
        else successor.get(u.id, u.id)  # after a merge or rename: its successor
        for u in directory.units
    }
    found = (trees, units)
    if version[0]:
        if len(_MAPS) >= 16:
            _MAPS.clear()
        _MAPS[key] = found
    return found


def _tally(
    caller: Caller,
    person: Person,
    at: datetime,
    version: tuple[int, str],
    docs: Directory | DirectoryDocs,
    rows: Sequence[Any],
) -> dict[str, Any]:
    day = at.astimezone(VN).date()
    directory = docs if isinstance(docs, Directory) else parsed_directory(version, docs)
    scope, visible = scope_of(caller, person, directory)
    if visible is None:
        raise DomainError(
            Refusal.FORBIDDEN,
            "Participation is shown to the secretariat, the director, unit heads and union secretaries.",
            "Chỉ thường trực, Giám đốc Sở, thủ trưởng đơn vị và bí thư/chủ tịch đoàn thể được xem tình hình tham gia.",
            code="forbidden",
        )
    if scope != "all":
        rows = [r for r in rows if visible(r.assignee_id, r.unit_id)]
    trees, unit_that_day = _maps(directory, version, day)
    by_unit = domain.counts(((unit_that_day.get(u, u), s) for _, u, _, s in rows if u is not None))
    names = {}
    for uid in by_unit:
        try:  # the name the unit had that day (a unit may have been renamed since)
            names[uid] = directory.unit(uid, day).name
        except KeyError:
            try:
                names[uid] = directory.unit(uid).name
            except KeyError:
                names[uid] = uid
    union_names = {u.id: u.name for u in directory.unions}
    by_union = domain.counts((g, s) for _, _, a, s in rows for g in trees.get(a, ()))
    return {
        "as_of": at.astimezone(VN).isoformat(),
        "scope": scope,
        "units": [{"unit_id": k, "name": names[k], **v} for k, v in by_unit.items()],
        "parts": [{"part": k, **v} for k, v in domain.counts((p, s) for p, _, _, s in rows).items()],
        "unions": [{"union_id": k, "name": union_names.get(k, k), **v} for k, v in by_union.items()],
    }
