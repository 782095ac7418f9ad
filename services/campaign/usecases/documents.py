"""The secretariat's two documents in and out — the directory and the edition — on the caller's connection, for
the CLI's commands and the use cases (``directory.py``, ``editions.py``) alike.

Each import validates everything first and then writes state and events in the caller's one transaction, so a
failure writes nothing. Errors are ``DocumentError`` (``domain/documents.py``) with one entry per problem, in
English and Vietnamese.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import anyio
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from services.campaign import models
from services.campaign.domain import directory_io
from services.campaign.domain.directory_io import RowError
from services.campaign.domain.documents import DocumentError
from services.campaign.usecases.publishing import import_directory, publish_edition, stored_directory
from shared.documents import Directory, Edition, check_edition_against_directory
from shared.outbox import Outbox


async def import_directory_file(
    conn: AsyncConnection, outbox: Outbox, tenant: str, content: bytes, filename: str, now: datetime
) -> list[str]:
    current = await stored_directory(conn, tenant)
    # parsing and validating a national directory is seconds of CPU: off the event loop, so health and
    # every other request keep being answered meanwhile
    merged = await anyio.to_thread.run_sync(directory_io.read, content, filename, current)
    return await import_directory(conn, outbox, merged, now)


async def check_edition(conn: AsyncConnection, edition: Edition, tenant: str | None = None) -> Directory:
    """Check the edition against the directory campaign holds (raises ``DocumentError``); writes nothing."""
    if tenant is not None and edition.tenant != tenant:
        raise DocumentError(
            [
                RowError(
                    0,
                    "tenant",
                    f"The edition is for {edition.tenant!r}.",
                    f"Kỳ hội thi thuộc {edition.tenant!r}.",
                )
            ]
        )
    directory = await stored_directory(conn, edition.tenant)
    problems = check_edition_against_directory(edition, directory)
    if problems:
        raise DocumentError(
            [RowError(0, p.split(":")[0], p, f"Không khớp với danh bạ: {p}") for p in problems]
        )
    return directory


async def import_edition(
    conn: AsyncConnection, outbox: Outbox, edition: Edition, now: datetime, tenant: str | None = None
) -> list[str]:
    """Check the edition against the directory campaign holds, then publish it (the next version if it changed)."""
    directory = await check_edition(conn, edition, tenant)
    return await publish_edition(conn, outbox, edition, directory, now)


async def export_edition(
    conn: AsyncConnection, tenant: str, edition: str, version: int | None = None
) -> Edition | None:
    e = models.copies.editions
    q = sa.select(e.c.doc).where(e.c.tenant == tenant, e.c.edition == edition)
    q = q.where(e.c.version == version) if version else q.order_by(e.c.version.desc()).limit(1)
    doc = (await conn.execute(q)).scalar()
    return Edition.model_validate_json(doc) if doc else None


async def edition_versions(conn: AsyncConnection, tenant: str, edition: str) -> list[dict[str, Any]]:
    e = models.copies.editions
    rows = await conn.execute(
        sa.select(e.c.version, e.c.published_at)
        .where(e.c.tenant == tenant, e.c.edition == edition)
        .order_by(e.c.version)
    )
    return [{"version": r.version, "published_at": r.published_at} for r in rows]
