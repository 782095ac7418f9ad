"""The secretariat's two documents in and out — the directory and the edition — for the CLI and the API alike.

Each import validates everything first and then writes state and events in the caller's one transaction, so a
failure writes nothing. Errors are ``DocumentError`` with one entry per problem, in English and Vietnamese.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import anyio
import sqlalchemy as sa
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncConnection

from services.campaign import models
from services.campaign.domain import directory_io
from services.campaign.domain.directory_io import DirectoryImportError, RowError
from services.campaign.usecases.publishing import (
    import_directory,
    publish_edition,
    refuse_what_any_service_would,
    stored_directory,
)
from shared.documents import Directory, Edition, check_edition_against_directory, dump_yaml
from shared.outbox import Outbox

DocumentError = DirectoryImportError


def edition_errors(exc: ValidationError) -> list[RowError]:
    out = []
    for e in exc.errors():
        field = ".".join(str(p) for p in e["loc"]) or "edition"
        for part in str(e["msg"]).removeprefix("Value error, ").split("; "):
            vi = "Thiếu thông tin bắt buộc" if e["type"] == "missing" else f"Kỳ hội thi không hợp lệ: {part}"
            if "not after the edition opens" in part:
                vi = "Hạn chót của phần thi phải sau ngày mở kỳ hội thi"
            elif "must be assigned to someone" in part:
                vi = "Phần thi phải có đối tượng được giao (đơn vị, cá nhân hoặc hội đồng)"
            out.append(RowError(0, field, part, vi))
    return out


def parse_edition(content: bytes | str, filename: str = "edition.yaml") -> Edition:
    """An edition document from YAML or JSON (the YAML bounded: no alias bombs); raises ``DocumentError`` (or
    ``DirectoryImportError`` for an unreadable file) listing every problem, the reward rules any service would
    refuse included."""
    data = directory_io.parse_data(content, filename)
    try:
        edition = Edition.model_validate(data)
    except ValidationError as exc:
        raise DocumentError(edition_errors(exc)) from None
    refuse_what_any_service_would(edition)
    return edition


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


def to_yaml(model: Any) -> str:
    return dump_yaml(model)
