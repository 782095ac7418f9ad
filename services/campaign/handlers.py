"""Campaign's event subscribers: submissions fulfil and reopen assignments (thin: fold, decide, record)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from services.campaign import domain, models
from shared.consumer import Handler, Inbox
from shared.db import insert_ignore
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
        # What the deadline clock counts against intake.closed's accepted_on_time.
        await conn.execute(
            insert_ignore(
                conn,
                models.receipts,
                {
                    "submission_id": data["submission_id"],
                    "tenant": env.tenant,
                    "edition": env.edition or "",
                    "part": data["part"],
                    "assignee_id": assignee,
                    "received_at": received.time,
                },
            )
        )
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
            await record_change(conn, row, env, status="open")
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

    async def on_intake_closed(conn: AsyncConnection, env: Envelope) -> None:
        """Submissions closed a deadline's intake: the deadline clock may decide it once receipts are in."""
        data = env.data
        await conn.execute(
            insert_ignore(
                conn,
                models.intake_closures,
                {
                    "tenant": env.tenant,
                    "edition": env.edition or "",
                    "part": data["part"],
                    "deadline": datetime.fromisoformat(data["deadline"]),
                    "assignee_id": data.get("assignee_id") or "",
                    "accepted_on_time": int(data["accepted_on_time"]),
                    "arrived_at": rt.now(),
                },
            )
        )

    async def on_selected(conn: AsyncConnection, env: Envelope) -> None:
        """The council selected an initiative: the council's selection assignment is fulfilled.

        Each selected initiative is also a receipt of the selection part (assignee: the council), which the
        deadline clock counts against the selection's ``intake.closed`` before deciding a miss."""
        at = datetime.fromisoformat(env.data["at"])
        await conn.execute(
            insert_ignore(
                conn,
                models.receipts,
                {
                    "submission_id": env.data["submission_id"],
                    "tenant": env.tenant,
                    "edition": env.edition or "",
                    "part": env.data["part"],
                    "assignee_id": env.data.get("council_id") or "",
                    "received_at": at,
                },
            )
        )
        row = (
            await conn.execute(
                sa.select(a).where(
                    a.c.tenant == env.tenant,
                    a.c.edition == (env.edition or ""),
                    a.c.part == env.data["part"],
                    a.c.assignee_kind == "council",
                )
            )
        ).first()
        if row is not None and row.status != "fulfilled":
            await _fulfil(conn, rt, env, row, env, at=at)

    handlers: dict[str, Handler] = {t: on_submission_fact for t in SUBMISSION_FACTS}
    handlers["initiative.selected"] = on_selected
    handlers["intake.closed"] = on_intake_closed
    return {"facts": handlers}


async def _fulfil(
    conn: AsyncConnection,
    rt: Runtime,
    env: Envelope,
    row: Any,
    received: Envelope,
    at: datetime | None = None,
) -> None:
    a = models.assignments
    data = received.data
    at = at or received.time
    deadline = row.extended_to or row.deadline  # the deadline in force
    on_time = at < deadline
    await conn.execute(
        sa.update(a)
        .where(a.c.id == row.id)
        .values(status="fulfilled", fulfilled_at=at, on_time=on_time, submission_id=data["submission_id"])
    )
    await record_change(conn, row, env, status="fulfilled", fulfilled_at=at, on_time=on_time)
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
            "deadline": deadline,
            "on_time": on_time,
        },
        tenant=env.tenant,
        edition=env.edition,
        subject=row.id,
        time=at,
        causation_id=env.id,
    )


async def record_change(
    conn: AsyncConnection,
    row: Any,
    cause: Envelope,
    *,
    status: str,
    fulfilled_at: datetime | None = None,
    on_time: bool | None = None,
) -> None:
    """Keep the change in the assignment's history at the business time of the fact that caused it."""
    c = models.assignment_changes
    recorded = (
        await conn.execute(sa.select(sa.func.count()).select_from(c).where(c.c.assignment_id == row.id))
    ).scalar_one()
    await conn.execute(
        insert_ignore(
            conn,
            c,
            {
                "assignment_id": row.id,
                "cause_id": cause.id,
                "at": cause.time,
                "status": status,
                "fulfilled_at": fulfilled_at,
                "on_time": on_time,
                "tenant": row.tenant,
                "recorded": int(recorded) + 1,
            },
        )
    )
