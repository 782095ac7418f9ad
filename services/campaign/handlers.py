"""Campaign's event subscribers: submissions fulfil and reopen assignments (thin: fold, decide, record)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from services.campaign import domain, models
from shared.consumer import Handler, Inbox
from shared.events.envelope import Envelope
from shared.service import Runtime

SUBMISSION_FACTS = (
    "submission.received",
    "submission.revised",
    "submission.withdrawn",
    "submission.rejected",
    "submission.reinstated",
)


def build(rt: Runtime) -> dict[str, dict[str, Handler]]:
    inbox = Inbox(rt.backbone)
    a = models.assignments

    async def on_submission_fact(conn: AsyncConnection, env: Envelope) -> None:
        history = await inbox.history(conn, "facts", env.subject)
        received = next((e for e in history if e.type == "submission.received"), None)
        if received is None:
            return  # nothing to fulfil yet; the fold will run again when the receipt arrives
        data = received.data
        state = domain.fold_submission((e.type, e.data) for e in history)
        assignee = data["unit_id"] if data["kind"] == "initiative" else data["author_id"]
        row = (
            await conn.execute(
                sa.select(a).where(
                    a.c.tenant == env.tenant,
                    a.c.edition == (env.edition or ""),
                    a.c.part == data["part"],
                    a.c.assignee_id == assignee,
                )
            )
        ).first()
        if row is None:
            return  # not an assignee of that part (a volunteer): recorded, nothing to fulfil
        if state.active and row.status != "fulfilled":
            await _fulfil(conn, rt, env, row, received)
        elif not state.active and row.status == "fulfilled" and row.submission_id == data["submission_id"]:
            reason = "withdrawn" if state.withdrawn else "rejected"
            await conn.execute(
                sa.update(a)
                .where(a.c.id == row.id)
                .values(status="open", fulfilled_at=None, on_time=None, submission_id=None)
            )
            await rt.outbox.emit(
                conn,
                "assignment.reopened",
                {
                    "assignment_id": row.id,
                    "part": row.part,
                    "part_kind": row.part_kind,
                    "assignee_kind": row.assignee_kind,
                    "assignee_id": row.assignee_id,
                    "reason": reason,
                    "submission_id": data["submission_id"],
                },
                tenant=env.tenant,
                edition=env.edition,
                subject=row.id,
                time=env.time,
                causation_id=env.id,
            )

    async def keep(conn: AsyncConnection, env: Envelope) -> None:
        """Kept in the inbox for later use (selection, intake closing: the deadline clock's issue)."""

    handlers: dict[str, Handler] = {t: on_submission_fact for t in SUBMISSION_FACTS}
    handlers["initiative.selected"] = keep
    handlers["intake.closed"] = keep
    return {"facts": handlers}


async def _fulfil(conn: AsyncConnection, rt: Runtime, env: Envelope, row: Any, received: Envelope) -> None:
    a = models.assignments
    data = received.data
    at = received.time
    on_time = at < row.deadline
    await conn.execute(
        sa.update(a)
        .where(a.c.id == row.id)
        .values(status="fulfilled", fulfilled_at=at, on_time=on_time, submission_id=data["submission_id"])
    )
    await rt.outbox.emit(
        conn,
        "assignment.fulfilled",
        {
            "assignment_id": row.id,
            "part": row.part,
            "part_kind": row.part_kind,
            "assignee_kind": row.assignee_kind,
            "assignee_id": row.assignee_id,
            "unit_id": row.unit_id,
            "submission_id": data["submission_id"],
            "fulfilled_at": at,
            "deadline": row.deadline,
            "on_time": on_time,
        },
        tenant=env.tenant,
        edition=env.edition,
        subject=row.id,
        time=at,
        causation_id=env.id,
    )
