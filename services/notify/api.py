"""notify's HTTP routes: a person's in-app messages, and the delivery log for the secretariat."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal, overload

import sqlalchemy as sa
from fastapi import APIRouter, Query
from pydantic import BaseModel

from services.notify import models
from shared.clock import VN
from shared.documents import Role
from shared.problems import Problem
from shared.service import CallerDep, RuntimeDep

router = APIRouter(tags=["notify"])


class InAppMessage(BaseModel):
    id: str
    title: str
    body: str
    template: str
    cause_event_id: str
    created_at: datetime
    read_at: datetime | None


class Delivery(BaseModel):
    id: str
    channel: str
    template: str
    recipient: str
    to: str
    subject: str
    status: str
    attempts: int
    last_error: str | None
    cause_event_id: str
    created_at: datetime
    sent_at: datetime | None
    next_attempt_at: datetime | None


@router.get("/tenants/{tenant}/inbox", response_model=list[InAppMessage])
async def inbox(
    tenant: str,
    rt: RuntimeDep,
    caller: CallerDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[InAppMessage]:
    """The caller's own in-app messages, newest first."""
    t = models.inapp
    async with rt.engine.connect() as conn:
        rows = (
            await conn.execute(
                sa.select(t)
                .where(t.c.tenant == tenant, t.c.person_id == caller.person_id)
                .order_by(t.c.created_at.desc(), t.c.id)
                .limit(limit)
            )
        ).all()
    return [
        InAppMessage(
            id=r.id,
            title=r.title,
            body=r.body,
            template=r.template,
            cause_event_id=r.cause_event_id,
            created_at=_vn(r.created_at),
            read_at=_vn(r.read_at),
        )
        for r in rows
    ]


@router.get("/tenants/{tenant}/deliveries", response_model=list[Delivery])
async def deliveries(
    tenant: str,
    rt: RuntimeDep,
    caller: CallerDep,
    status: Literal["pending", "sent", "failed"] | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[Delivery]:
    """The delivery log (secretariat only), newest first."""
    if not caller.has_role(Role.secretariat):
        raise Problem(
            403,
            "Only the secretariat may read the delivery log.",
            "Chỉ Thường trực Hội thi (Văn phòng Sở) được xem nhật ký gửi thông báo.",
            code="secretariat_only",
        )
    t = models.deliveries
    q = sa.select(t).where(t.c.tenant == tenant)
    if status is not None:
        q = q.where(t.c.status == status)
    async with rt.engine.connect() as conn:
        rows = (await conn.execute(q.order_by(t.c.created_at.desc(), t.c.id).limit(limit))).all()
    return [
        Delivery(
            id=r.id,
            channel=r.channel,
            template=r.template,
            recipient=r.recipient,
            to=r.to_address,
            subject=r.subject,
            status=r.status,
            attempts=r.attempts,
            last_error=r.last_error,
            cause_event_id=r.cause_event_id,
            created_at=_vn(r.created_at),
            sent_at=_vn(r.sent_at),
            next_attempt_at=_vn(r.next_attempt_at) if r.status == "pending" else None,
        )
        for r in rows
    ]


@overload
def _vn(dt: datetime) -> datetime: ...
@overload
def _vn(dt: None) -> None: ...
def _vn(dt: datetime | None) -> datetime | None:
    """Instants are shown in Vietnam time (+07:00)."""
    return dt.astimezone(VN) if dt is not None else None
