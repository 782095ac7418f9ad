"""Campaign's event subscribers: submissions fulfil and reopen assignments (thin: fold, then settle the
assignments the submission counts for, see ``assignments.py``)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from services.campaign import models
from services.campaign.usecases import assignments
from shared import lifecycle
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
    r = models.receipts

    async def on_submission_fact(conn: AsyncConnection, env: Envelope) -> None:
        """Any fact of a submission re-derives the assignments it counts for from all their facts."""
        history = await inbox.history(conn, assignments.FACTS, env.subject)
        life = lifecycle.fold(history)
        edition = env.edition or ""
        if life.received and life.received_at is not None and life.part and life.assignee_id:
            # What the deadline clock counts against intake.closed's accepted_on_time.
            await conn.execute(
                insert_ignore(
                    conn,
                    r,
                    {
                        "submission_id": env.subject,
                        "tenant": env.tenant,
                        "edition": edition,
                        "part": life.part,
                        "assignee_id": life.assignee_id,
                        "received_at": life.received_at,
                    },
                )
            )
        targets: list[tuple[str, str | None]] = []
        if life.part and life.assignee_id:
            targets.append((life.part, life.assignee_id))
        # a selected initiative withdrawn or ruled ineligible no longer counts for the council
        selections = (
            await conn.execute(
                sa.select(r.c.part).where(
                    r.c.submission_id == env.subject, r.c.tenant == env.tenant, r.c.part != (life.part or "")
                )
            )
        ).scalars()
        targets += [(part, None) for part in sorted(set(selections))]
        for part, assignee in targets:
            row = await assignments.assignment_for(conn, env.tenant, edition, part, assignee)
            if row is not None:  # else not an assignee of that part (a volunteer): nothing to fulfil
                await assignments.settle(rt, conn, row, env)

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
        row = await assignments.assignment_for(conn, env.tenant, env.edition or "", env.data["part"], None)
        if row is not None:
            await assignments.settle(rt, conn, row, env)

    handlers: dict[str, Handler] = {t: on_submission_fact for t in SUBMISSION_FACTS}
    handlers["initiative.selected"] = on_selected
    handlers["intake.closed"] = on_intake_closed
    return {"facts": handlers}
