"""Participation as of a moment (by business time), as a query: per unit (as it was that day), per part and per
union tree, of the assignments the caller may see (``domain.access.scope_of``).

Each assignment keeps its standing after its every fact, and the business time of its latest fact (``restand``,
in the transaction of each fact: participation's read model). As of a moment, that kept standing is the
assignment's wherever its latest fact is by then — for "now", nearly every assignment; the others are decided
by the database from their facts (``_decided``: the SQL form of ``domain.standing``, over indexed reads of the
assignment's status changes, misses and extensions). Where the directory has no unions the database also counts
(per part, unit and standing, from one index); where it has, one row per assignment comes back, grouped here
through maps made once per directory version and day (a unit as it was that day, a person's union tree).
``domain.tally`` over the same facts gives the same counts, with the facts written in any order and by either
release (tests/integration/test_campaign_participation_sql.py)."""

from __future__ import annotations

import asyncio
import functools
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from services.campaign import domain, models
from services.campaign.domain.access import scope_of
from services.campaign.usecases.publishing import (
    DirectoryDocs,
    directory_of,
    directory_version,
    kept_directory,
    parsed_directory,
    stored_directory_docs,
)
from shared import heavy
from shared.clock import VN
from shared.db import UtcDateTime, greatest, read_off_loop
from shared.documents import Directory, Person
from shared.errors import DomainError, Refusal
from shared.service import Caller, Runtime


async def participation(
    rt: Runtime, caller: Caller, person: Person, tenant: str, edition: str, at: datetime
) -> dict[str, Any]:
    """Assigned / fulfilled / late / missed / extended as of ``at``; refused (forbidden) to a caller who may see
    nothing beyond their own assignments. A heavy read (``shared/heavy.py``), one at a time per process: the
    directory is parsed in a thread, and the standings are read and counted off the event loop
    (``shared.db.read_off_loop``), so that the consumer applying facts meanwhile is not held up by them.

    Where the directory has no unions, the database counts: per part, unit and standing for the assignments
    whose kept standing is in force at ``at`` (``in_force``, a range of one index), and only the others
    one by one (``decided``). Union trees are per person, so where there are unions each assignment's standing
    is read (``standings``), still the kept one wherever it is in force."""
    async with heavy.slot("participation"):
        async with rt.engine.connect() as conn:
            version = await directory_version(conn, tenant)  # before the copy (``parsed_directory``)
            directory = kept_directory(tenant, version) or _UNITS.get((tenant, version))
            if directory is None:
                # The people are parsed only where there are unions (union trees, a union secretary's members):
                # else the units (a unit head's scope, a unit as it was that day) are all a read needs.
                docs = await stored_directory_docs(conn, tenant, people=False)
                if docs.unions:
                    docs = await stored_directory_docs(conn, tenant)
                    directory = await asyncio.to_thread(parsed_directory, version, docs)
                else:
                    directory = _units_only(version, docs)
        scope, visible = scope_of(caller, person, directory)
        if visible is None:
            raise DomainError(
                Refusal.FORBIDDEN,
                "Participation is shown to the secretariat, the director, unit heads and union secretaries.",
                "Chỉ thường trực, Giám đốc Sở, thủ trưởng đơn vị và bí thư/chủ tịch đoàn thể được xem tình hình "
                "tham gia.",
                code="forbidden",
            )
        params = {"tenant": tenant, "edition": edition, "at": at}
        per_person = bool(directory.unions)  # union trees; a union secretary sees members

        def count(conn: sa.Connection) -> dict[str, Any]:
            rows = counted(conn, params, per_person=per_person)
            return _tally(scope, visible, at, version, directory, rows)

        return await read_off_loop(rt.engine, count)


def counted(
    conn: sa.Connection, params: dict[str, Any], *, per_person: bool
) -> list[tuple[str, str | None, str | None, str, int]]:
    """(part, unit_id, assignee_id, standing, how many) of the assignments of ``params``' edition made by its
    ``at``: one row per assignment (``per_person``), or per part, unit and standing (assignee None)."""
    if per_person:
        return [
            (part, unit, who, standing, 1) for part, unit, who, standing in conn.execute(standings(), params)
        ]
    rows: list[tuple[str, str | None, str | None, str, int]] = [
        (part, unit, None, standing, n) for part, unit, standing, n in conn.execute(in_force(), params)
    ]
    return rows + [
        (part, unit, None, standing, 1) for part, unit, standing in conn.execute(decided(), params)
    ]


@functools.cache
def standings() -> sa.Select[Any]:
    """(part, unit_id, assignee_id, standing) of every assignment of an edition made by ``at``, its standing
    as ``domain.standing`` decides it. The standing each assignment keeps (``restand``) answers wherever it is
    in force, at or after its last fact's business time; only the others — the assignments whose facts run past
    ``at``, or whose kept standing was cleared by a write of the previous release — are decided here from their
    facts (``_decided``). Built once (``shared/db.py``: hot statements)."""
    a = models.assignments
    at = sa.bindparam("at", type_=UtcDateTime())
    standing = sa.case((_kept(at), a.c.standing), else_=_decided(at))
    return sa.select(a.c.part, a.c.unit_id, a.c.assignee_id, standing.label("standing")).where(
        *_of_the_edition(at)
    )


def _kept(at: sa.ColumnElement[Any]) -> sa.ColumnElement[bool]:
    """The assignment's kept standing is its standing at ``at`` (``restand``): kept, and its latest fact by then."""
    a = models.assignments
    return sa.and_(a.c.standing.is_not(None), a.c.standing_since <= at)


def _of_the_edition(at: sa.ColumnElement[Any]) -> list[sa.ColumnElement[bool]]:
    a = models.assignments
    return [
        a.c.tenant == sa.bindparam("tenant"),
        a.c.edition == sa.bindparam("edition"),
        a.c.created_at <= at,
    ]


@functools.cache
def in_force() -> sa.Select[Any]:
    """(part, unit_id, standing, n): the assignments made by ``at`` whose kept standing is in force, counted in
    the order of ``ix_assignments_standing`` (no sort, no row read)."""
    a = models.assignments
    at = sa.bindparam("at", type_=UtcDateTime())
    return (
        sa.select(a.c.part, a.c.unit_id, a.c.standing, sa.func.count().label("n"))
        .where(*_of_the_edition(at), _kept(at))
        .group_by(a.c.part, a.c.unit_id, a.c.standing)
    )


@functools.cache
def decided() -> sa.Select[Any]:
    """(part, unit_id, standing) of each assignment made by ``at`` whose kept standing is not in force (its
    facts run past ``at``, or none is kept): decided from its facts. ``in_force``'s complement."""
    a = models.assignments
    at = sa.bindparam("at", type_=UtcDateTime())
    not_kept = sa.or_(a.c.standing.is_(None), a.c.standing_since.is_(None), a.c.standing_since > at)
    return sa.select(a.c.part, a.c.unit_id, _decided(at).label("standing")).where(
        *_of_the_edition(at), not_kept
    )


def _decided(at: sa.ColumnElement[Any] | None) -> sa.ColumnElement[str]:
    """The SQL form of ``domain.standing`` for the assignment of the row, by business time ``at`` (None: after
    every fact): the last status change at or before ``at`` (by business time, then the order recorded) decides
    fulfilment; else a deadline missed by then; else an extension granted by then; else open. Each fact by the
    assignment's id alone (the primary key of assignments): with the tenant in the condition, SQLite without
    statistics ranged over the tenant's every change, for each assignment."""
    a, c, m, x = models.assignments, models.assignment_changes, models.misses, models.extensions

    def by(column: sa.Column[Any]) -> list[sa.ColumnElement[bool]]:
        return [] if at is None else [column <= at]

    last = (
        sa.select(sa.case((c.c.status != "fulfilled", 0), (c.c.on_time == sa.true(), 1), else_=2))
        .where(c.c.assignment_id == a.c.id, *by(c.c.at))
        .order_by(c.c.at.desc(), c.c.recorded.desc())
        .limit(1)
        .scalar_subquery()
    )
    missed = sa.exists().where(m.c.assignment_id == a.c.id, *by(m.c.deadline))
    extended = sa.exists().where(x.c.assignment_id == a.c.id, *by(x.c.granted_at))
    unfulfilled = sa.case((missed, "missed"), (extended, "extended"), else_="open")
    return sa.case({1: "fulfilled", 2: "fulfilled_late"}, value=last, else_=unfulfilled)


async def restand(conn: AsyncConnection, assignment_ids: Sequence[str]) -> None:
    """Keep each assignment's standing after its every fact, and the business time from which it holds (its
    latest fact's), in the transaction that wrote a fact of it: what participation reads wherever that time
    has passed. Called by every writer of the facts (a status change, a miss, an extension); a write of the
    previous release, which does not call it, clears the kept standing (triggers, migration ``d4f6a8c0e2b3``),
    and participation decides that assignment from its facts until its next fact here."""
    if assignment_ids:
        await conn.execute(_restand(), [{"k_id": i} for i in assignment_ids])


@functools.cache
def _restand() -> sa.Update:
    a, c, m, x = models.assignments, models.assignment_changes, models.misses, models.extensions
    latest = [
        sa.select(sa.func.max(col)).where(key == a.c.id).scalar_subquery()
        for col, key in (
            (c.c.at, c.c.assignment_id),
            (m.c.deadline, m.c.assignment_id),
            (x.c.granted_at, x.c.assignment_id),
        )
    ]
    return (
        sa.update(a)
        .where(a.c.id == sa.bindparam("k_id"))
        .values(standing=_decided(None), standing_since=greatest(a.c.created_at, *latest))
    )


# Per (tenant, directory version): the units and unions of a directory without unions (its people unread).
_UNITS: dict[tuple[str, tuple[int, str]], Directory] = {}


def _units_only(version: tuple[int, str], docs: DirectoryDocs) -> Directory:
    """``docs`` without people parsed, and kept for the next read of the same version (version 0, an empty
    copy, is not kept)."""
    directory = directory_of(docs)
    if version[0]:
        if len(_UNITS) >= 8:
            _UNITS.clear()
        _UNITS[(docs.tenant, version)] = directory
    return directory


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
    scope: str,
    visible: Callable[[str, str | None], bool],
    at: datetime,
    version: tuple[int, str],
    directory: Directory,
    rows: Sequence[tuple[str, str | None, str | None, str, int]],
) -> dict[str, Any]:
    """The answer from (part, unit, assignee — None when counted per unit —, standing, how many): what the
    caller may see (a unit head's scope is decided by the unit alone), per unit as it was that day, per part
    and per union tree."""
    day = at.astimezone(VN).date()
    trees, unit_that_day = _maps(directory, version, day)
    # one pass over the rows (one per assignment where there are unions): each counted per part, per unit as it
    # was that day and per union of its assignee's tree
    parts: Counter[tuple[str, str]] = Counter()
    units: Counter[tuple[str, str]] = Counter()
    unions: Counter[tuple[str, str]] = Counter()
    everything = scope == "all"
    for part, unit, assignee, standing, n in rows:
        if not everything and not visible(assignee or "", unit):
            continue
        parts[(part, standing)] += n
        if unit is not None:
            units[(unit_that_day.get(unit, unit), standing)] += n
        if assignee is not None:
            for union in trees.get(assignee, ()):
                unions[(union, standing)] += n
    by_unit = domain.totals(units)
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
    by_union = domain.totals(unions)
    return {
        "as_of": at.astimezone(VN).isoformat(),
        "scope": scope,
        "units": [{"unit_id": k, "name": names[k], **v} for k, v in by_unit.items()],
        "parts": [{"part": k, **v} for k, v in domain.totals(parts).items()],
        "unions": [{"union_id": k, "name": union_names.get(k, k), **v} for k, v in by_union.items()],
    }
