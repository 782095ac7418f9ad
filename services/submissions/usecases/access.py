"""Who may see and do what (issue 4, point 8), and the look-ups the use cases share.

Authors see their own; unit heads their unit's (the unit at receipt); council members what is assigned to
them; the secretariat (and the director) everything. A submission someone may not see is a 404, never a 403:
its existence is not disclosed. Refusals are ``DomainError`` (no HTTP status: ``shared/problems.py`` maps
them)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from services.submissions import domain, models
from shared.documents import Council, Edition, InitiativePart, SelectionPart
from shared.errors import DomainError, Refusal
from shared.service import Caller, Runtime

OVERSEERS = ("secretariat", "director")


async def edition_of(rt: Runtime, conn: AsyncConnection, tenant: str, edition: str) -> Edition:
    assert rt.copies is not None
    ed = await rt.copies.edition(conn, tenant, edition)
    if ed is None:
        raise DomainError(
            Refusal.NOT_FOUND,
            f"No edition {edition!r} for {tenant!r}.",
            f"Không có kỳ hội thi {edition!r}.",
            code="no_edition",
        )
    return ed


def initiative_part(ed: Edition, part_id: str | None) -> InitiativePart:
    parts = [p for p in ed.parts if isinstance(p, InitiativePart) and (part_id is None or p.id == part_id)]
    if not parts:
        raise DomainError(
            Refusal.INVALID,
            f"Edition {ed.edition} has no initiative part {part_id or ''}".strip() + ".",
            f"Kỳ {ed.edition} không có phần thi sáng kiến {part_id or ''}".strip() + ".",
            code="no_such_part",
        )
    return parts[0]


def selection_of(ed: Edition, initiative_part_id: str) -> tuple[SelectionPart, Council]:
    for p in ed.parts:
        if isinstance(p, SelectionPart) and p.of == initiative_part_id and p.assignees.council:
            return p, ed.councils[p.assignees.council]
    raise DomainError(
        Refusal.CONFLICT,
        "This edition has no council review for the initiative part.",
        "Kỳ hội thi này không có phần xét chọn sáng kiến.",
        code="no_selection",
    )


def not_found() -> DomainError:
    return DomainError(Refusal.NOT_FOUND, "No such submission.", "Không tìm thấy hồ sơ.", code="not_found")


def forbidden(
    en: str = "Not allowed.", vi: str = "Bạn không có quyền thực hiện thao tác này."
) -> DomainError:
    return DomainError(Refusal.FORBIDDEN, en, vi, code="forbidden")


def is_overseer(caller: Caller) -> bool:
    return caller.has_role(*OVERSEERS)


def author_ids(row: Any) -> set[str]:
    ids = {row["author_id"]}
    for a in (row["body"] or {}).get("authors", []):
        if a.get("person_id"):
            ids.add(a["person_id"])
    return ids


def author_units(row: Any) -> set[str]:
    """The units of the counted authors as of submission (the snapshot) and the submitting unit: a co-author
    who has not confirmed brings no unit in, so listing someone cannot take a council member off the review."""
    return set(unit_authors(row))


def unit_authors(row: Any) -> dict[str, list[str]]:
    """Each counted unit -> who brings it in (the submitting unit first, then confirmed authors by name)."""
    out: dict[str, list[str]] = {row["unit_id"]: ["đơn vị nộp"]}
    for a in domain.counted_authors((row["body"] or {}).get("authors", [])):
        if a.get("unit_id"):
            out.setdefault(a["unit_id"], []).append(a.get("name") or a.get("person_id") or "")
    return out


async def review_exclusions(
    rt: Runtime, conn: AsyncConnection, tenant: str, row: Any, council: Council
) -> list[domain.Exclusion]:
    """The members left out of an initiative's review, each with the reason (own unit, a unit merged with
    the entry's, conflict, chair)."""
    return (await review_of(rt, conn, tenant, row, council)).excluded


async def load(
    conn: AsyncConnection, tenant: str, edition: str, submission_id: str, *, lock: bool = False
) -> Any:
    t = models.submissions
    q = sa.select(t).where(t.c.tenant == tenant, t.c.edition == edition, t.c.id == submission_id)
    if lock and conn.dialect.name == "postgresql":
        q = q.with_for_update()
    row = (await conn.execute(q)).mappings().first()
    if row is None:
        raise not_found()
    return row


@dataclass(frozen=True)
class Review:
    """Who reviews an initiative now, who does not and why, and every member's unit as of its receipt."""

    chosen: list[str]
    excluded: list[domain.Exclusion]
    units: dict[str, str | None]

    def barred(self, member: str) -> domain.Exclusion | None:
        """Why ``member`` may never review it (own unit, merged unit), whatever the chair reassigns."""
        return next(
            (e for e in self.excluded if e.member_id == member and e.reason in ("own_unit", "merged_unit")),
            None,
        )


async def review_of(rt: Runtime, conn: AsyncConnection, tenant: str, row: Any, council: Council) -> Review:
    """The conflicts of interest of an initiative's review at the time of asking (scoring): a member's unit
    as of receipt and now, the authors' units as of receipt and now, and the units the entry's unit (as
    recorded at receipt) was merged, split or renamed from or into."""
    assert rt.copies is not None
    at, now = row["received_at"], rt.now()
    units: dict[str, str | None] = {}
    units_now: dict[str, str | None] = {}
    for m in council.members:
        p = await rt.copies.person(conn, tenant, m, at)
        units[m] = p.unit if p else None
        q = await rt.copies.person(conn, tenant, m, now)
        units_now[m] = q.unit if q else units[m]
    authors_now: dict[str, list[str]] = {}
    counted = domain.counted_authors((row["body"] or {}).get("authors", []))
    names = {a["person_id"]: a.get("name") or a["person_id"] for a in counted if a.get("person_id")}
    names.setdefault(row["author_id"], row["author_id"])
    for pid, name in names.items():
        p = await rt.copies.person(conn, tenant, pid, now)
        if p is not None:
            authors_now.setdefault(p.unit, []).append(name)
    lineage = await rt.copies.lineage(conn, tenant, row["unit_id"], now)
    unit_names = {}
    for uid, when in ((row["unit_id"], at), *((u, now) for u in lineage)):
        unit = await rt.copies.unit(conn, tenant, uid, when)  # the name it had then (a merger may rename)
        if unit is not None:
            unit_names[uid] = unit.name
    c, r = models.conflicts, models.reassignments
    conflicts = {
        m: why
        for m, why in (
            await conn.execute(sa.select(c.c.member_id, c.c.reason).where(c.c.submission_id == row["id"]))
        ).all()
    }
    added: set[str] = set()
    removed: set[str] = set()
    for member, action in (
        await conn.execute(sa.select(r.c.member_id, r.c.action).where(r.c.submission_id == row["id"]))
    ).all():
        (added if action == "add" else removed).add(member)
    members = list(council.members)
    excluded = domain.exclusions(
        members,
        units,
        unit_authors(row),
        conflicts,
        removed,
        entry_unit=row["unit_id"],
        lineage=lineage,
        units_now=units_now,
        authors_now=authors_now,
        unit_names=unit_names,
    )
    barred = {e.member_id for e in excluded if e.reason in ("own_unit", "merged_unit")}
    chosen = domain.reviewers(members, units, author_units(row), set(conflicts), added, removed, barred)
    return Review(chosen, excluded, units)


async def reviewers_of(
    rt: Runtime, conn: AsyncConnection, tenant: str, row: Any, council: Council
) -> tuple[list[str], dict[str, str | None]]:
    """The members who review an initiative, and every member's unit as of its receipt."""
    review = await review_of(rt, conn, tenant, row, council)
    return review.chosen, review.units


async def may_see(rt: Runtime, conn: AsyncConnection, caller: Caller, row: Any) -> bool:
    if is_overseer(caller):
        return True
    if caller.person_id in author_ids(row):
        return True
    if caller.has_role("unit_head") and caller.person is not None and caller.person.unit == row["unit_id"]:
        return True
    if row["kind"] == "initiative" and row["received_at"] is not None:
        ed = await edition_of(rt, conn, row["tenant"], row["edition"])
        try:
            _, council = selection_of(ed, row["part"])
        except DomainError:
            return False
        if caller.person_id in council.members:
            if caller.person_id == council.chair:
                return True
            chosen, _ = await reviewers_of(rt, conn, row["tenant"], row, council)
            return caller.person_id in chosen
    return False
