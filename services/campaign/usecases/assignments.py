"""Settling an assignment (phân công): its state re-derived from every fact kept for its assignee.

An assignment's state is a function of the *set* of its assignee's submissions (for a selection part, of the
council's selections), never of the last fact applied: facts arrive in any order (relay retries, redelivery,
two replicas taking consecutive batches), so each fact about a submission re-derives the assignment from all
of them. ``assignment.fulfilled`` / ``assignment.reopened`` are emitted only when the derived state really
changes, and the assignment's history by business time (participation "as of") is re-derived with it.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from services.campaign import domain, models
from services.campaign.usecases.participation import restand
from shared import lifecycle
from shared.clock import VN
from shared.consumer import Inbox
from shared.db import delete_rows, insert_if_absent, select_rows, update_rows
from shared.events.envelope import Envelope
from shared.service import Runtime

FACTS = "facts"  # the consumer purpose whose inbox keeps the submissions' facts


async def assignment_for(
    conn: AsyncConnection, tenant: str, edition: str, part: str, assignee_id: str | None
) -> Any:
    """The assignment of ``assignee_id`` for ``part`` (None: the part's council), locked until commit so that
    two replicas settling the same assignment take turns and each reads what the other committed."""
    a = models.assignments
    q = sa.select(a).where(a.c.tenant == tenant, a.c.edition == edition, a.c.part == part)
    q = (
        q.where(a.c.assignee_kind == "council")
        if assignee_id is None
        else q.where(a.c.assignee_id == assignee_id)
    )
    return (await conn.execute(q.with_for_update())).first()


async def extend(
    rt: Runtime,
    conn: AsyncConnection,
    row: Any,
    new_deadline: datetime,
    *,
    reason: str,
    approved_by: str,
    now: datetime,
) -> str:
    """Grant ``row`` (locked by :func:`assignment_for` or the caller) a later deadline (gia hạn): the extension,
    the deadline in force and ``deadline.extended`` in the caller's transaction, then settle the assignment
    (a fulfilment late for the old deadline may be on time for the new one). Returns the extension id."""
    a = models.assignments
    previous = row.extended_to or row.deadline
    ext_id = str(uuid.uuid4())
    await conn.execute(
        models.extensions.insert().values(
            id=ext_id,
            tenant=row.tenant,
            edition=row.edition,
            assignment_id=row.id,
            previous_deadline=previous,
            new_deadline=new_deadline,
            reason=reason,
            approved_by=approved_by,
            granted_at=now,
        )
    )
    await conn.execute(sa.update(a).where(a.c.id == row.id).values(extended_to=new_deadline))
    await restand(conn, [row.id])
    extended = await rt.outbox.emit(
        conn,
        "deadline.extended",
        {
            "assignment_id": row.id,
            "part": row.part,
            "assignee_kind": row.assignee_kind,
            "assignee_id": row.assignee_id,
            # business instants in data carry the edition's offset (+07:00), like every other time
            "previous_deadline": previous.astimezone(VN),
            "new_deadline": new_deadline.astimezone(VN),
            "reason": reason,
            "approved_by": approved_by,
        },
        tenant=row.tenant,
        edition=row.edition,
        subject=row.id,
        time=now,
    )
    assert extended is not None  # an ordinary (UUIDv7) id is never already in the outbox
    await settle(rt, conn, (await conn.execute(sa.select(a).where(a.c.id == row.id))).one(), extended)
    return ext_id


async def emit_fulfilled(
    rt: Runtime,
    conn: AsyncConnection,
    row: Any,
    *,
    at: datetime,
    deadline: datetime,
    on_time: bool,
    cause: Envelope,
    submission_id: str | None = None,
    event_id: str | None = None,
) -> None:
    """Emit ``assignment.fulfilled`` for ``row`` (the fulfilling submission named when there is one): the one
    shape of that fact, whether a submission's facts or the 90-day campaign's result fulfilled it."""
    data: dict[str, Any] = {
        "assignment_id": row.id,
        "part": row.part,
        "part_kind": row.part_kind,
        "assignee_kind": row.assignee_kind,
        "assignee_id": row.assignee_id,
        "unit_id": row.unit_id,
    }
    if submission_id is not None:
        data["submission_id"] = submission_id
    data |= {"fulfilled_at": at, "deadline": deadline, "on_time": on_time}
    await rt.outbox.emit(
        conn,
        "assignment.fulfilled",
        data,
        tenant=row.tenant,
        edition=row.edition,
        subject=row.id,
        time=at,
        causation_id=cause.id,
        event_id=event_id,
    )


def receipts_counting(tenant: str, edition: str, part: str, assignee: str | None) -> sa.Select[Any]:
    """The submissions received for a part by one assignee, or by anyone (a council's selection part): a range
    of ``ix_receipts_part_assignee``."""
    r = models.receipts
    q = sa.select(r.c.submission_id).where(r.c.tenant == tenant, r.c.edition == edition, r.c.part == part)
    return q if assignee is None else q.where(r.c.assignee_id == assignee)


async def settle(rt: Runtime, conn: AsyncConnection, row: Any, cause: Envelope) -> None:
    """Re-derive ``row`` (locked by :func:`assignment_for`) from its assignee's kept facts; record and emit
    what changed. ``cause`` is the fact (or the extension) that made campaign look again."""
    a = models.assignments
    selection = row.assignee_kind == "council"
    q = receipts_counting(row.tenant, row.edition, row.part, None if selection else row.assignee_id)
    submission_ids = sorted(set((await conn.execute(q)).scalars()))
    inbox = Inbox(rt.backbone)
    facts: dict[str, Sequence[lifecycle.SubmissionFact]] = {
        sid: await inbox.history(conn, FACTS, sid) for sid in submission_ids
    }
    deadline = row.extended_to or row.deadline  # the deadline in force
    history = domain.fulfilment_history(facts, deadline, selection=selection)
    await _record_history(conn, row, history)
    now = history[-1].fulfilment if history else None
    was = (
        domain.Fulfilment(row.submission_id, row.fulfilled_at, bool(row.on_time))
        if row.status == "fulfilled" and row.submission_id and row.fulfilled_at is not None
        else None
    )
    if now == was:
        return
    if now is not None:
        await update_rows(
            conn,
            a,
            {"id": row.id},
            {
                "status": "fulfilled",
                "fulfilled_at": now.at,
                "on_time": now.on_time,
                "submission_id": now.submission_id,
            },
        )
        await emit_fulfilled(
            rt,
            conn,
            row,
            at=now.at,
            deadline=deadline,
            on_time=now.on_time,
            cause=cause,
            submission_id=now.submission_id,
        )
        return
    assert was is not None
    undone = lifecycle.fold(facts.get(was.submission_id, ()))
    reopened_at = history[-1].at if history else cause.time
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
            "reason": "rejected" if undone.rejected and not undone.withdrawn else "withdrawn",
            "submission_id": was.submission_id,
            "at": reopened_at,
        },
        tenant=row.tenant,
        edition=row.edition,
        subject=row.id,
        time=reopened_at,
        causation_id=cause.id,
    )


async def _record_history(conn: AsyncConnection, row: Any, history: list[domain.FulfilmentChange]) -> None:
    """Keep ``assignment_changes`` equal to the derived history: appended to when it only grew, rewritten when
    an earlier change differs (a fact that arrived late), untouched when equal."""
    c = models.assignment_changes
    wanted = [
        {
            "assignment_id": row.id,
            "cause_id": h.cause_id,
            "at": h.at,
            "status": "open" if h.fulfilment is None else "fulfilled",
            "fulfilled_at": None if h.fulfilment is None else h.fulfilment.at,
            "on_time": None if h.fulfilment is None else h.fulfilment.on_time,
            "tenant": row.tenant,
            "recorded": i + 1,
        }
        for i, h in enumerate(history)
    ]
    stored = [
        dict(r._mapping) for r in await select_rows(conn, c, order_by=("recorded",), assignment_id=row.id)
    ]
    if stored == wanted:
        return
    if stored != wanted[: len(stored)]:  # not only appended to: rewritten
        await delete_rows(conn, c, assignment_id=row.id)
        stored = []
    if wanted[len(stored) :]:
        await conn.execute(c.insert(), wanted[len(stored) :])
    await restand(conn, [row.id])


async def record_change(
    conn: AsyncConnection,
    row: Any,
    cause: Envelope,
    *,
    status: str,
    fulfilled_at: datetime | None = None,
    on_time: bool | None = None,
) -> None:
    """Append one change to the history of an assignment that no submission fulfils (the 90-day campaign's,
    decided by the clock at the campaign's end), at the business time of the fact that caused it."""
    c = models.assignment_changes
    recorded = (
        await conn.execute(sa.select(sa.func.count()).select_from(c).where(c.c.assignment_id == row.id))
    ).scalar_one()
    recorded_now = await insert_if_absent(
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
    if recorded_now:
        await restand(conn, [row.id])
