"""Editions (kỳ hội thi) as use cases: importing an edition document (the next version if it changed, with its
assignments), and the queries that read editions and their assignments."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from services.campaign import models
from services.campaign.domain.access import own, scope_of
from services.campaign.domain.directory_io import DirectoryImportError
from services.campaign.domain.documents import invalid
from services.campaign.usecases import documents
from services.campaign.usecases.extensions import latest_edition_document, vn
from services.campaign.usecases.publishing import current_directory
from shared import paging
from shared.documents import Edition, Person, deadline_label_vi
from shared.service import Caller, Runtime
from shared.uow import UnitOfWork


@dataclass(frozen=True)
class ImportEdition:
    """The secretariat imports an edition document (already parsed) for ``tenant``."""

    tenant: str
    edition: Edition


async def import_edition(uow: UnitOfWork[Runtime], cmd: ImportEdition) -> dict[str, Any]:
    """Check the edition against the directory, publish it (the next version if it changed) and create its
    assignments; the answer names the version in force."""
    try:
        lines = await documents.import_edition(
            uow.conn, uow.rt.outbox, cmd.edition, uow.now(), tenant=cmd.tenant
        )
    except DirectoryImportError as exc:
        raise invalid(exc) from None
    versions = await documents.edition_versions(uow.conn, cmd.tenant, cmd.edition.edition)
    return {"edition": cmd.edition.edition, "version": versions[-1]["version"], "result": lines}


async def dry_run(rt: Runtime, tenant: str, edition: Edition) -> dict[str, Any]:
    """The same checks as a publication, on a read-only connection: nothing published, nothing remembered."""
    try:
        async with rt.engine.connect() as conn:
            await documents.check_edition(conn, edition, tenant)
            versions = await documents.edition_versions(conn, tenant, edition.edition)
    except DirectoryImportError as exc:
        raise invalid(exc) from None
    latest = versions[-1]["version"] if versions else None
    return {"edition": edition.edition, "valid": True, "latest_version": latest}


async def document(rt: Runtime, tenant: str, edition: str) -> Any:
    """The edition document in force (latest version), as JSON data (404 ``no_edition`` if there is none)."""
    async with rt.engine.connect() as conn:
        return json.loads(await latest_edition_document(conn, tenant, edition))


async def versions(rt: Runtime, tenant: str, edition: str) -> list[dict[str, Any]]:
    """Every published version of an edition: ``version`` and ``published_at``."""
    async with rt.engine.connect() as conn:
        return await documents.edition_versions(conn, tenant, edition)


async def version(rt: Runtime, tenant: str, edition: str, number: int) -> Edition | None:
    """One version of an edition document (None: no such version)."""
    async with rt.engine.connect() as conn:
        return await documents.export_edition(conn, tenant, edition, number)


# the deadline clock's agenda (usecases/deadlines.py) is its own working state, not the assignment
_NOT_SHOWN = ("tenant", "remind_at", "remind_for")


@dataclass(frozen=True)
class AssignmentsPage:
    rows: list[dict[str, Any]]
    next: str | None  # the cursor of the next page; None: this is the last (or the whole list was asked)


IN_SQL = 1000  # the most ids a scope's ``IN (…)`` names; a larger scope is filtered here, a chunk at a time


async def assignments(
    rt: Runtime,
    caller: Caller,
    person: Person,
    tenant: str,
    edition: str,
    *,
    part: str | None = None,
    assignee: str | None = None,
    status: str | None = None,
    assignee_kind: str | None = None,
    limit: int | None = None,
    after: tuple[str, str] | None = None,
) -> AssignmentsPage:
    """The edition's assignments the caller may see (``domain.access.scope_of``; anyone else: their own and their
    unit's), in the order of part and assignee, every instant in Vietnam time (+07:00), with the deadline in
    force as users read it; ``limit`` of them after ``after`` (else all). The scope is said in SQL, so a page
    reads its own rows (the unique index on tenant, edition, part and assignee, in its order); a union
    secretary's members past ``IN_SQL`` are checked here, ``limit`` rows' worth at a time."""
    a = models.assignments
    q = sa.select(a).where(a.c.tenant == tenant, a.c.edition == edition)
    if part:
        q = q.where(a.c.part == part)
    if assignee:
        q = q.where(a.c.assignee_id == assignee)
    if status:
        q = q.where(a.c.status == status)
    if assignee_kind:
        q = q.where(a.c.assignee_kind == assignee_kind)
    async with rt.engine.connect() as conn:
        directory = await current_directory(conn, tenant)
        visible = scope_of(caller, person, directory)[1] or own(person)
        if visible.units is not None:
            q = q.where(a.c.unit_id.in_(sorted(visible.units)))
        if visible.people is not None and len(visible.people) <= IN_SQL:
            q = q.where(a.c.assignee_id.in_(sorted(visible.people)))
        q = q.order_by(a.c.part, a.c.assignee_id)
        rows: list[Any] = []
        place = after
        while True:
            chunk = q
            if place is not None:
                chunk = chunk.where(
                    sa.or_(a.c.part > place[0], sa.and_(a.c.part == place[0], a.c.assignee_id > place[1]))
                )
            size = None if limit is None else max(limit + 1, 200)
            found = (await conn.execute(chunk if size is None else chunk.limit(size))).mappings().all()
            rows += [r for r in found if visible(r["assignee_id"], r["unit_id"])]
            if size is None or len(rows) > limit or len(found) < size:  # type: ignore[operator]
                break
            place = (found[-1]["part"], found[-1]["assignee_id"])
    more = limit is not None and len(rows) > limit
    rows = rows[:limit] if limit is not None else rows
    # every instant in Vietnam time (+07:00), extended_to included; the deadline in force as users read it
    return AssignmentsPage(
        [
            {
                **{k: vn(v) if isinstance(v, datetime) else v for k, v in r.items() if k not in _NOT_SHOWN},
                "deadline_display": deadline_label_vi(r["extended_to"] or r["deadline"]),
            }
            for r in rows
        ],
        paging.encode(rows[-1]["part"], rows[-1]["assignee_id"]) if more else None,
    )
