"""The delivery log (a query: no unit of work). Who may read which part of it is the router's check
(``api/deliveries.py``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from services.notify import models
from shared.service import Runtime


@dataclass(frozen=True)
class DeliveryLog:
    """Which deliveries: per state, per person (recipient), per event (cause id), per channel."""

    tenant: str
    status: str | None = None
    person: str | None = None
    event: str | None = None
    channel: str | None = None
    limit: int = 200


async def log(rt: Runtime, query: DeliveryLog) -> list[Any]:
    """The delivery rows asked for, newest first."""
    t = models.deliveries
    q = sa.select(t).where(t.c.tenant == query.tenant)
    if query.status is not None:
        q = q.where(t.c.status == query.status)
    if query.person is not None:
        q = q.where(t.c.recipient == query.person)
    if query.event is not None:
        q = q.where(t.c.cause_event_id == query.event)
    if query.channel is not None:
        q = q.where(t.c.channel == query.channel)
    async with rt.engine.connect() as conn:
        return list((await conn.execute(q.order_by(t.c.created_at.desc(), t.c.id).limit(query.limit))).all())
