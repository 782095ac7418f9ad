"""The delivery log for the secretariat (and each person's own part of it). Thin: parse → authorise (no
database) → one query (``usecases/deliveries.py``) → the answer."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from services.notify.domain import vn_time
from services.notify.usecases import deliveries as log
from shared.privacy import Sight, Viewer, no_store
from shared.problems import Problem
from shared.service import CallerDep, RuntimeDep

router = APIRouter(tags=["notify"])


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
    due_at: datetime | None = None
    digest_on: str | None = None


@router.get("/tenants/{tenant}/deliveries", response_model=list[Delivery], dependencies=[Depends(no_store)])
async def deliveries(
    tenant: str,
    rt: RuntimeDep,
    caller: CallerDep,
    status: Literal["pending", "sent", "failed", "held", "digested", "paused"] | None = None,
    person: str | None = None,
    event: str | None = None,
    channel: Literal["email", "webhook"] | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[Delivery]:
    """The delivery log, newest first, per person (recipient), per event (cause id), per state, per channel.

    The secretariat reads all of it; anyone may read their own (``person`` = themselves).
    """
    # one policy (shared.privacy): the whole log to the secretariat (and the administrator), one's own to anyone
    if Viewer.of(caller.person_id, caller.person).sight(person or "", None) < Sight.full:
        raise Problem(
            403,
            "Only the secretariat may read the delivery log (others: their own, with person=<your id>).",
            "Chỉ Thường trực Hội thi (Văn phòng Sở) được xem nhật ký gửi thông báo "
            "(người khác chỉ xem của mình, với person=<mã của mình>).",
            code="secretariat_only",
        )
    rows = await log.log(rt, log.DeliveryLog(tenant, status, person, event, channel, limit))
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
            created_at=vn_time(r.created_at),
            sent_at=vn_time(r.sent_at),
            next_attempt_at=vn_time(r.next_attempt_at) if r.status == "pending" else None,
            due_at=vn_time(r.due_at) if r.due_at is not None else None,
            digest_on=r.digest_on.isoformat() if r.digest_on is not None else None,
        )
        for r in rows
    ]
