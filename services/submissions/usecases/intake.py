"""Intake's database side: the receipt lock, deadlines in force, catalogues, and the closing job.

Why a lock. A receipt read "now" at 23:59:59.9 may still be committing when the deadline passes; the
``intake.closed`` count must include it. Every intake transaction therefore takes the edition's receipt-counter
row lock *first* and reads the clock only then; the closing job takes the same lock before reading the clock.
Whoever holds the lock after the deadline reads a time after it: intake refuses, and the job counts every
receipt that could ever be on time (PostgreSQL: the row lock of the upsert; SQLite: the database write lock).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from services.submissions import models
from shared.clock import VN
from shared.db import insert_if_absent, reading, upsert
from shared.documents import Edition, ExperienceReportPart, InitiativePart, SelectionPart
from shared.events.envelope import deterministic_id
from shared.lease import Lease, fenced_begin, periodic
from shared.service import Runtime
from shared.uow import UnitOfWork

log = logging.getLogger("hoithi.submissions.intake")

INTAKE_KINDS = (InitiativePart, ExperienceReportPart)
# Parts whose deadline campaign's clock decides only after ``intake.closed``: the selection part too, where
# "accepted on time" counts the initiatives the council selected before its deadline (campaign counts the
# ``initiative.selected`` it has applied against it).
CLOSED_KINDS = (InitiativePart, ExperienceReportPart, SelectionPart)
ClosedPart = InitiativePart | ExperienceReportPart | SelectionPart


async def emit_withdrawn(
    uow: UnitOfWork[Runtime],
    tenant: str,
    edition: str,
    submission_id: str,
    row: Mapping[str, Any],
    kind: str,
    now: datetime,
    reason: str | None,
) -> None:
    """Record ``submission.withdrawn`` of a received submission (``row``: its part, author and unit) at ``now``:
    one fact for reports and initiatives alike."""
    await uow.emit(
        "submission.withdrawn",
        {
            "submission_id": submission_id,
            "kind": kind,
            "part": row["part"],
            "author_id": row["author_id"],
            "unit_id": row["unit_id"],
            "at": now.astimezone(VN),
            "reason": reason,
        },
        tenant=tenant,
        edition=edition,
        subject=submission_id,
        time=now,
    )


def receipt_counter(tenant: str, edition: str) -> str:
    return f"receipt/{tenant}/{edition}"


async def lock_intake(conn: AsyncConnection, tenant: str, edition: str) -> None:
    """Take the edition's receipt-counter row lock without numbering anything (held until commit)."""
    t = models.backbone.sequences
    await conn.execute(
        upsert(conn, t, {"subject": receipt_counter(tenant, edition), "last": 0}, set_={"last": t.c.last})
    )


async def extension_of(
    conn: AsyncConnection, tenant: str, edition: str, part: str, assignee_id: str
) -> datetime | None:
    t = models.extensions
    return (  # type: ignore[no-any-return]
        await conn.execute(
            sa.select(t.c.deadline).where(
                t.c.tenant == tenant, t.c.edition == edition, t.c.part == part, t.c.assignee_id == assignee_id
            )
        )
    ).scalar()


async def known_procedures(conn: AsyncConnection, tenant: str) -> set[str] | None:
    """Every national code in the tenant's loaded catalogues; None when none is loaded (no check)."""
    return known_of((await conn.execute(catalogues_of(tenant))).scalars())


def catalogues_of(tenant: str | sa.BindParameter[str]) -> sa.Select[tuple[list[str]]]:
    return sa.select(models.procedure_catalogues.c.codes).where(
        models.procedure_catalogues.c.tenant == tenant
    )


def known_of(catalogues: Iterable[list[str]]) -> set[str] | None:
    """The union of the catalogues' codes; None when there is none (``known_procedures``)."""
    known: set[str] | None = None
    for codes in catalogues:
        known = (known or set()) | set(codes)
    return known


# ---------------------------------------------------------------------------------------------- closing


def closure_event_id(tenant: str, edition: str, part: str, deadline: datetime, assignee: str | None) -> str:
    """UUIDv5 of (tenant, edition, part, deadline in UTC, assignee or ''): one fact whoever emits it."""
    return deterministic_id(
        "intake.closed", tenant, edition, part, deadline.astimezone(UTC).isoformat(), assignee or ""
    )


async def close_due(rt: Runtime, lease: Lease | None = None) -> list[str]:
    """Emit ``intake.closed`` for every (part, deadline[, assignee]) whose intake has closed and that was not
    closed yet. Each closure's transaction is fenced by ``lease`` (the closing job's); beneath it a closure is
    one fact whoever emits it (deterministic id, unique closure row, the receipt lock)."""
    assert rt.copies is not None
    done: list[str] = []
    e = rt.copies.editions
    async with reading(rt.engine).connect() as conn:
        keys = (await conn.execute(sa.select(e.c.tenant, e.c.edition).distinct())).all()
    for tenant, edition_name in keys:
        async with reading(rt.engine).connect() as conn:
            edition = await rt.copies.edition(conn, tenant, edition_name)
        if edition is None:
            continue
        for part in edition.parts:
            if isinstance(part, CLOSED_KINDS):
                done += await _close_part(rt, edition, part, lease)
    return done


async def _close_part(rt: Runtime, edition: Edition, part: ClosedPart, lease: Lease | None) -> list[str]:
    tenant, name = edition.tenant, edition.edition
    x, c = models.extensions, models.intake_closures
    targets: list[tuple[datetime, str]] = [(edition.deadline_of(part.id), "")]
    async with reading(rt.engine).connect() as conn:
        for assignee, deadline in (
            await conn.execute(
                sa.select(x.c.assignee_id, x.c.deadline).where(
                    x.c.tenant == tenant, x.c.edition == name, x.c.part == part.id
                )
            )
        ).all():
            if deadline > targets[0][0]:
                targets.append((deadline, assignee))
        closed = {
            (r.deadline, r.assignee_id)
            for r in (
                await conn.execute(
                    sa.select(c.c.deadline, c.c.assignee_id).where(
                        c.c.tenant == tenant, c.c.edition == name, c.c.part == part.id
                    )
                )
            ).all()
        }
    now = rt.now()
    out = []
    for deadline, assignee in targets:
        if (deadline, assignee) in closed or now < deadline + part.grace_delta:
            continue
        if await _close(rt, edition, part, deadline, assignee, lease):
            out.append(f"{part.id}@{deadline.isoformat()}/{assignee or '*'}")
    return out


async def _close(
    rt: Runtime,
    edition: Edition,
    part: ClosedPart,
    deadline: datetime,
    assignee: str,
    lease: Lease | None,
) -> bool:
    tenant, name = edition.tenant, edition.edition
    t, c, s = models.submissions, models.intake_closures, models.selections
    # The lease's row first, then the receipt lock: intake takes only the latter, so no cycle.
    async with fenced_begin(rt.engine, lease) as conn:
        await lock_intake(conn, tenant, name)
        now = rt.now()  # read under the lock: no receipt before the deadline can still be in flight
        if now < deadline + part.grace_delta:
            return False
        if isinstance(part, SelectionPart):
            # the decision takes the same lock before reading the clock (review.select)
            q = (
                sa.select(sa.func.count())
                .select_from(s)
                .where(
                    s.c.tenant == tenant,
                    s.c.edition == name,
                    s.c.part == part.id,
                    s.c.outcome == "selected",
                    s.c.decided_at < deadline,
                )
            )
        else:
            q = (
                sa.select(sa.func.count())
                .select_from(t)
                .where(
                    t.c.tenant == tenant, t.c.edition == name, t.c.part == part.id, t.c.received_at < deadline
                )
            )
        if assignee and not isinstance(part, SelectionPart):
            who = t.c.unit_id if isinstance(part, InitiativePart) else t.c.author_id
            q = q.where(who == assignee)
        count = int((await conn.execute(q)).scalar_one())
        event_id = closure_event_id(tenant, name, part.id, deadline, assignee)
        res = await insert_if_absent(
            conn,
            c,
            {
                "tenant": tenant,
                "edition": name,
                "part": part.id,
                "deadline": deadline,
                "assignee_id": assignee,
                "accepted_on_time": count,
                "event_id": event_id,
                "closed_at": now,
            },
        )
        if not res:
            return False
        await rt.outbox.emit(
            conn,
            "intake.closed",
            {
                "part": part.id,
                "deadline": deadline,
                "assignee_id": assignee or None,
                "accepted_on_time": count,
            },
            tenant=tenant,
            edition=name,
            subject=part.id,
            time=deadline,
            event_id=event_id,
        )
    rt.outbox.committed()
    log.info(
        "intake closed: %s %s %s deadline %s, %d on time", tenant, name, part.id, deadline, count, extra={}
    )
    return True


CLOSING_LEASE = "submissions-intake-closing"
CLOSING_EVERY = 1.0  # seconds between passes of the closing job


async def closing_job(rt: Runtime) -> None:
    """Background: every second, close whatever intake is due on the shared (possibly simulated) clock — in one
    replica of the deployment, the holder of the closing lease; the others stand by."""
    lease = rt.extra["closing_lease"] = Lease(rt.backbone.leases, CLOSING_LEASE, ttl=rt.settings.lease_ttl)

    async def one_pass() -> float:
        await close_due(rt, lease)
        return CLOSING_EVERY

    def failed(exc: Exception, failures: int) -> float:  # the database may be down: retry next tick
        log.warning("closing intake failed (%d), retrying: %r", failures, exc)
        return min(CLOSING_EVERY * 2 ** min(failures, 5), 30.0)

    await periodic(
        rt.engine, lease, one_pass, standby=max(CLOSING_EVERY, rt.settings.lease_ttl / 5), on_error=failed
    )
