"""Granting an assignee a later deadline (gia hạn), as a use case: the extension, ``deadline.extended`` and the
assignment settled against it, in one unit of work."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from services.campaign import models
from services.campaign.usecases import assignments
from shared.clock import VN
from shared.documents import Edition, deadline_instant, deadline_label_en, deadline_label_vi
from shared.errors import DomainError, Refusal, field_error
from shared.service import Runtime
from shared.uow import UnitOfWork


async def latest_edition_document(conn: AsyncConnection, tenant: str, edition: str) -> str:
    """The latest version of the edition document, as stored (404 ``no_edition`` if there is none)."""
    e = models.copies.editions
    doc = (
        await conn.execute(
            sa.select(e.c.doc)
            .where(e.c.tenant == tenant, e.c.edition == edition)
            .order_by(e.c.version.desc())
            .limit(1)
        )
    ).scalar()
    if doc is None:
        raise DomainError(
            Refusal.NOT_FOUND,
            f"No edition {edition!r}.",
            f"Không có kỳ hội thi {edition!r}.",
            code="no_edition",
        )
    return str(doc)


async def edition_in_force(conn: AsyncConnection, tenant: str, edition: str) -> Edition:
    """The latest version of the edition document (404 ``no_edition`` if there is none)."""
    return Edition.model_validate_json(await latest_edition_document(conn, tenant, edition))


def vn(dt: datetime | None) -> str | None:
    return dt.astimezone(VN).isoformat() if dt else None


@dataclass(frozen=True)
class GrantExtension:
    """The secretariat extends one assignment's deadline; a bare date is the end of that day in the edition's zone."""

    tenant: str
    edition: str
    assignment_id: str
    new_deadline: date | datetime
    reason: str
    approved_by: str


async def grant_extension(uow: UnitOfWork[Runtime], cmd: GrantExtension) -> dict[str, Any]:
    conn, a = uow.conn, models.assignments
    doc = await edition_in_force(conn, cmd.tenant, cmd.edition)
    row = (
        await conn.execute(
            sa.select(a)
            .where(a.c.id == cmd.assignment_id, a.c.tenant == cmd.tenant, a.c.edition == cmd.edition)
            .with_for_update()  # the consumer settles this assignment under the same lock
        )
    ).first()
    if row is None:
        raise DomainError(
            Refusal.NOT_FOUND,
            f"No assignment {cmd.assignment_id!r}.",
            f"Không có phân công {cmd.assignment_id!r}.",
            code="no_assignment",
        )
    new = (
        cmd.new_deadline.astimezone(UTC)
        if isinstance(cmd.new_deadline, datetime)
        else deadline_instant(cmd.new_deadline, doc.tz)
    )
    previous = row.extended_to or row.deadline
    if new <= previous:
        raise DomainError(
            Refusal.INVALID,
            "The new deadline must be later than the deadline in force.",
            "Hạn mới phải sau hạn đang áp dụng.",
            code="invalid",
            errors=[
                field_error(
                    "new_deadline",
                    f"Must be after the deadline in force ({deadline_label_en(previous)}).",
                    f"Phải sau hạn đang áp dụng ({deadline_label_vi(previous)}).",
                )
            ],
        )
    now = uow.now()
    ext_id = await assignments.extend(
        uow.rt, conn, row, new, reason=cmd.reason, approved_by=cmd.approved_by, now=now
    )
    return {
        "extension_id": ext_id,
        "assignment_id": row.id,
        "assignee_id": row.assignee_id,
        "part": row.part,
        "official_deadline": vn(row.deadline),
        "previous_deadline": vn(previous),
        "new_deadline": vn(new),
        "new_deadline_display": deadline_label_vi(new),
        "reason": cmd.reason,
        "approved_by": cmd.approved_by,
        "granted_at": vn(now),
    }
