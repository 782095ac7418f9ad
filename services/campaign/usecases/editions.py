"""Editions (kỳ hội thi) as use cases: importing an edition document (the next version if it changed, with its
assignments), and the queries that read editions and their assignments."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from services.campaign import models
from services.campaign.domain.access import scope_of
from services.campaign.domain.directory_io import DirectoryImportError
from services.campaign.domain.documents import invalid
from services.campaign.usecases import documents
from services.campaign.usecases.extensions import latest_edition_document, vn
from services.campaign.usecases.publishing import stored_directory
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
) -> list[dict[str, Any]]:
    """The edition's assignments the caller may see (``domain.access.scope_of``), every instant in Vietnam time
    (+07:00), with the deadline in force as users read it."""
    a = models.assignments
    q = sa.select(a).where(a.c.tenant == tenant, a.c.edition == edition)
    if part:
        q = q.where(a.c.part == part)
    if assignee:
        q = q.where(a.c.assignee_id == assignee)
    if status:
        q = q.where(a.c.status == status)
    async with rt.engine.connect() as conn:
        rows = (await conn.execute(q.order_by(a.c.part, a.c.assignee_id))).mappings().all()
        directory = await stored_directory(conn, tenant)
    _, visible = scope_of(caller, person, directory)
    rows = [
        r
        for r in rows
        if (
            visible(r["assignee_id"], r["unit_id"])
            if visible
            else r["assignee_id"] in (person.id, person.unit)
        )
    ]
    # every instant in Vietnam time (+07:00), extended_to included; the deadline in force as users read it
    return [
        {
            **{k: vn(v) if isinstance(v, datetime) else v for k, v in r.items() if k not in _NOT_SHOWN},
            "deadline_display": deadline_label_vi(r["extended_to"] or r["deadline"]),
        }
        for r in rows
    ]
