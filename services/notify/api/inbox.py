"""A person's in-app messages: read them, count the unread, mark them read. Thin: parse → one query or use
case (``usecases/inbox.py``) → the answer."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from services.notify.domain import vn_time
from services.notify.usecases import inbox as messages
from shared.privacy import no_store
from shared.service import CallerDep, RuntimeDep
from shared.uow import run

router = APIRouter(tags=["notify"])


class InAppMessage(BaseModel):
    id: str
    title: str
    body: str
    template: str
    cause_event_id: str
    created_at: datetime
    read_at: datetime | None


def _message(r: Any) -> InAppMessage:
    return InAppMessage(
        id=r.id,
        title=r.title,
        body=r.body,
        template=r.template,
        cause_event_id=r.cause_event_id,
        created_at=vn_time(r.created_at),
        read_at=vn_time(r.read_at),
    )


@router.get("/tenants/{tenant}/inbox", response_model=list[InAppMessage], dependencies=[Depends(no_store)])
async def inbox(
    tenant: str,
    rt: RuntimeDep,
    caller: CallerDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    unread: bool = False,
) -> list[InAppMessage]:
    """The caller's own in-app messages, newest first (``unread=true``: only those not yet read)."""
    rows = await messages.messages(rt, tenant, caller.person_id, limit=limit, unread=unread)
    return [_message(r) for r in rows]


@router.get("/tenants/{tenant}/inbox/unread-count")
async def unread_count(tenant: str, rt: RuntimeDep, caller: CallerDep) -> dict[str, int]:
    return {"unread": await messages.unread_count(rt, tenant, caller.person_id)}


@router.post("/tenants/{tenant}/inbox/{message_id}/read", response_model=InAppMessage)
async def mark_read(tenant: str, message_id: str, rt: RuntimeDep, caller: CallerDep) -> InAppMessage:
    """Mark one of the caller's messages read (idempotent: the first reading time is kept)."""
    done = await run(rt, messages.mark_read, messages.MarkRead(tenant, message_id, caller.person_id))
    return _message(done.unwrap())


@router.post("/tenants/{tenant}/inbox/read-all")
async def mark_all_read(tenant: str, rt: RuntimeDep, caller: CallerDep) -> dict[str, int]:
    done = await run(rt, messages.mark_all_read, messages.MarkAllRead(tenant, caller.person_id))
    return {"marked": done.unwrap()}
