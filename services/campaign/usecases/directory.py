"""The directory (danh bạ) as use cases: importing a document or an HR list (all rows or none), and the
queries that read it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from services.campaign import models
from services.campaign.domain.directory_io import DirectoryImportError
from services.campaign.domain.documents import invalid
from services.campaign.usecases import documents
from services.campaign.usecases.publishing import stored_directory
from shared.documents import Directory, Person, Unit
from shared.service import Runtime
from shared.uow import UnitOfWork


@dataclass(frozen=True)
class ImportDirectory:
    """The secretariat imports a directory document or an HR list (``filename`` says which kind)."""

    tenant: str
    content: bytes
    filename: str


async def import_directory(uow: UnitOfWork[Runtime], cmd: ImportDirectory) -> dict[str, Any]:
    try:
        lines = await documents.import_directory_file(
            uow.conn, uow.rt.outbox, cmd.tenant, cmd.content, cmd.filename, uow.now()
        )
    except DirectoryImportError as exc:
        raise invalid(exc) from None
    return {"result": lines}


async def directory(rt: Runtime, tenant: str) -> Directory:
    """The whole directory campaign holds for ``tenant`` (every effective-dated row)."""
    async with rt.engine.connect() as conn:
        return await stored_directory(conn, tenant)


async def people(rt: Runtime, tenant: str) -> tuple[list[Person], list[Unit]]:
    """The people in force now, and every unit row (enough to find a unit head's branches)."""
    async with rt.engine.connect() as conn:
        found = await models.copies.people_in(conn, tenant, rt.now())
        units = await units_of(conn, tenant)
    return found, units


async def units_of(conn: AsyncConnection, tenant: str) -> list[Unit]:
    """Every unit row of ``tenant`` (all periods): enough to find a unit head's branches."""
    u = models.copies.units
    docs = (await conn.execute(sa.select(u.c.doc).where(u.c.tenant == tenant))).scalars()
    return [Unit.model_validate_json(d) for d in docs]
