"""A person's notification preferences: reading them (a query) and saving them (a use case). The routers are
``api/preferences.py``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from services.notify import models
from shared.db import insert_if_absent
from shared.service import Runtime
from shared.uow import UnitOfWork

Uow = UnitOfWork[Runtime]


async def mine(rt: Runtime, tenant: str, person_id: str) -> Any | None:
    """The person's stored preferences (None: never set, the defaults hold)."""
    t = models.preferences
    async with rt.engine.connect() as conn:
        return (
            await conn.execute(sa.select(t).where(t.c.tenant == tenant, t.c.person_id == person_id))
        ).first()


@dataclass(frozen=True)
class SavePreferences:
    tenant: str
    person_id: str
    mode: str
    quiet_from: str | None
    quiet_to: str | None
    language: str


async def save(uow: Uow, cmd: SavePreferences) -> None:
    """Replace the person's preferences (a first save inserts them)."""
    t = models.preferences
    values = {
        "mode": cmd.mode,
        "quiet_from": cmd.quiet_from,
        "quiet_to": cmd.quiet_to,
        "language": cmd.language,
        "updated_at": uow.now(),
    }
    res = await uow.conn.execute(
        sa.update(t).where(t.c.tenant == cmd.tenant, t.c.person_id == cmd.person_id).values(**values)
    )
    if not res.rowcount:
        await insert_if_absent(uow.conn, t, {"tenant": cmd.tenant, "person_id": cmd.person_id, **values})
