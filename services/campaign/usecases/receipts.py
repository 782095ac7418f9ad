"""What campaign does when submissions' facts arrive, as use cases (each called by ``handlers.py`` inside the
consumer's transaction: ``UnitOfWork.joining``): a submission's fact re-derives the assignments it counts for,
an initiative selected is the council's receipt, an ``intake.closed`` lets the deadline clock decide."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from services.campaign import models
from services.campaign.usecases import assignments
from shared import lifecycle
from shared.consumer import Inbox
from shared.db import insert_if_absent
from shared.events.envelope import Envelope
from shared.service import Runtime
from shared.uow import UnitOfWork


@dataclass(frozen=True)
class Fact:
    """A fact another service recorded, as campaign received it."""

    env: Envelope


def other_parts(submission_id: str, part: str) -> sa.Select[Any]:
    """The other parts a submission is a receipt of (a selected initiative: the selection part), with their
    tenant. By the primary key alone — the caller checks the tenant on the rows: with the tenant in the
    condition, a planner without statistics ranged over the tenant's every receipt (``ix_receipts_part_assignee``)."""
    r = models.receipts
    return sa.select(r.c.part, r.c.tenant).where(r.c.submission_id == submission_id, r.c.part != part)


async def apply_submission_fact(uow: UnitOfWork[Runtime], cmd: Fact) -> None:
    """Any fact of a submission re-derives the assignments it counts for from all their facts."""
    conn, env, r = uow.conn, cmd.env, models.receipts
    history = await Inbox(uow.rt.backbone).history(conn, assignments.FACTS, env.subject)
    life = lifecycle.fold(history)
    edition = env.edition or ""
    if life.received and life.received_at is not None and life.part and life.assignee_id:
        # What the deadline clock counts against intake.closed's accepted_on_time.
        await insert_if_absent(
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
    targets: list[tuple[str, str | None]] = []
    if life.part and life.assignee_id:
        targets.append((life.part, life.assignee_id))
    # a selected initiative withdrawn or ruled ineligible no longer counts for the council
    selections = (await conn.execute(other_parts(env.subject, life.part or ""))).all()
    targets += [(part, None) for part in sorted({s.part for s in selections if s.tenant == env.tenant})]
    for part, assignee in targets:
        row = await assignments.assignment_for(conn, env.tenant, edition, part, assignee)
        if row is not None:  # else not an assignee of that part (a volunteer): nothing to fulfil
            await assignments.settle(uow.rt, conn, row, env)


async def record_intake_closed(uow: UnitOfWork[Runtime], cmd: Fact) -> None:
    """Submissions closed a deadline's intake: the deadline clock may decide it once receipts are in."""
    conn, env = uow.conn, cmd.env
    data = env.data
    await insert_if_absent(
        conn,
        models.intake_closures,
        {
            "tenant": env.tenant,
            "edition": env.edition or "",
            "part": data["part"],
            "deadline": datetime.fromisoformat(data["deadline"]),
            "assignee_id": data.get("assignee_id") or "",
            "accepted_on_time": int(data["accepted_on_time"]),
            "arrived_at": uow.now(),
        },
    )


async def apply_selection(uow: UnitOfWork[Runtime], cmd: Fact) -> None:
    """The council selected an initiative: the council's selection assignment is fulfilled.

    Each selected initiative is also a receipt of the selection part (assignee: the council), which the
    deadline clock counts against the selection's ``intake.closed`` before deciding a miss."""
    conn, env = uow.conn, cmd.env
    at = datetime.fromisoformat(env.data["at"])
    await insert_if_absent(
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
    row = await assignments.assignment_for(conn, env.tenant, env.edition or "", env.data["part"], None)
    if row is not None:
        await assignments.settle(uow.rt, conn, row, env)
