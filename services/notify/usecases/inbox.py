"""A person's in-app messages: reading them (queries) and marking them read (use cases).

Each use case runs in one unit of work (``shared/uow.py``); the queries read on a connection of their own. The
routers are ``api/inbox.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from services.notify import models
from shared.errors import DomainError, Refusal
from shared.service import Runtime
from shared.uow import UnitOfWork

Uow = UnitOfWork[Runtime]


async def messages(rt: Runtime, tenant: str, person_id: str, *, limit: int, unread: bool) -> list[Any]:
    """The person's own in-app messages, newest first (``unread``: only those not yet read)."""
    t = models.inapp
    q = sa.select(t).where(t.c.tenant == tenant, t.c.person_id == person_id)
    if unread:
        q = q.where(t.c.read_at.is_(None))
    async with rt.engine.connect() as conn:
        return list((await conn.execute(q.order_by(t.c.created_at.desc(), t.c.id).limit(limit))).all())


async def unread_count(rt: Runtime, tenant: str, person_id: str) -> int:
    t = models.inapp
    async with rt.engine.connect() as conn:
        n = (
            await conn.execute(
                sa.select(sa.func.count())
                .select_from(t)
                .where(t.c.tenant == tenant, t.c.person_id == person_id, t.c.read_at.is_(None))
            )
        ).scalar_one()
    return int(n)


@dataclass(frozen=True)
class MarkRead:
    tenant: str
    message_id: str
    person_id: str  # the caller: only their own message


async def mark_read(uow: Uow, cmd: MarkRead) -> Any:
    """Mark one of the person's messages read (the first reading time is kept); its row, as it is now."""
    t = models.inapp
    mine = sa.and_(t.c.tenant == cmd.tenant, t.c.id == cmd.message_id, t.c.person_id == cmd.person_id)
    await uow.conn.execute(sa.update(t).where(mine, t.c.read_at.is_(None)).values(read_at=uow.now()))
    r = (await uow.conn.execute(sa.select(t).where(mine))).first()
    if r is None:
        raise DomainError(
            Refusal.NOT_FOUND,
            "No such message in your inbox.",
            "Không có thông báo này trong hộp thư của bạn.",
            code="message_not_found",
        )
    return r


@dataclass(frozen=True)
class MarkAllRead:
    tenant: str
    person_id: str


async def mark_all_read(uow: Uow, cmd: MarkAllRead) -> int:
    """Mark every unread message of the person read; how many were."""
    t = models.inapp
    res = await uow.conn.execute(
        sa.update(t)
        .where(t.c.tenant == cmd.tenant, t.c.person_id == cmd.person_id, t.c.read_at.is_(None))
        .values(read_at=uow.now())
    )
    return int(res.rowcount or 0)
