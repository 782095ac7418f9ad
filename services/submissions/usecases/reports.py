"""Experience reports after their receipt (revision, withdrawal), what a person reads of them, their deadlines in
force, the intake closures and the procedure catalogue, as use cases and queries.

A report's receipt is not here: it is recorded by group commit (``usecases/receipts.py``). A revision or a
withdrawal takes the edition's receipt lock first and reads the clock after it (``usecases/intake.py``), in one
unit of work (``shared/uow.py``); the reads are queries of the runtime, on a connection of their own. The
routers are ``services/submissions/api/reports.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from services.submissions import domain, models
from services.submissions.usecases import access, intake
from services.submissions.usecases.receipts import receipt_of
from shared import paging
from shared.clock import VN
from shared.documents import Person
from shared.errors import DomainError, Refusal
from shared.service import Caller, Runtime
from shared.uow import UnitOfWork

Uow = UnitOfWork[Runtime]


def no_report() -> DomainError:
    return DomainError(Refusal.NOT_FOUND, "No such report.", "Không tìm thấy báo cáo.", code="not_found")


async def _own_report(
    conn: AsyncConnection, tenant: str, edition: str, submission_id: str, person_id: str
) -> Any:
    """The caller's own report, locked for update (404 for anyone else's: its existence is not disclosed)."""
    t = models.submissions
    q = sa.select(t).where(
        t.c.tenant == tenant,
        t.c.edition == edition,
        t.c.id == submission_id,
        t.c.kind == "experience_report",
    )
    if conn.dialect.name == "postgresql":
        q = q.with_for_update()
    row = (await conn.execute(q)).mappings().first()
    if row is None or row["author_id"] != person_id:
        raise no_report()
    return row


@dataclass(frozen=True)
class Revise:
    """The author revises their report (same receipt, revision+1) before the deadline in force."""

    tenant: str
    edition: str
    submission_id: str
    person_id: str
    report: domain.ExperienceReportCreate


async def revise(uow: Uow, cmd: Revise) -> dict[str, Any]:
    tenant, edition, submission_id = cmd.tenant, cmd.edition, cmd.submission_id
    conn, report = uow.conn, cmd.report
    t = models.submissions
    ed = await access.edition_of(uow.rt, conn, tenant, edition)
    await intake.lock_intake(conn, tenant, edition)
    now = uow.now()
    row = await _own_report(conn, tenant, edition, submission_id, cmd.person_id)
    part = domain.experience_part(ed, row["part"])
    domain.check_changeable(row["status"], "Báo cáo")
    extended = await intake.extension_of(conn, tenant, edition, part.id, cmd.person_id)
    domain.check_intake_open(ed, part, now, extended)
    codes = domain.check_report(report, part, now.astimezone(VN).date())
    domain.check_catalogue(codes, await intake.known_procedures(conn, tenant))
    if domain.same_content(row["body"], {**report.model_dump(mode="json"), "part": row["part"]}):
        return receipt_of(row)  # a retried PUT: no new revision, no event
    revision = row["revision"] + 1
    # The author's unions and unit stay as they were at receipt: a revision is the same submission.
    body = {
        **report.model_dump(mode="json"),
        "part": row["part"],
        "national_codes": codes,
        "unions": row["body"].get("unions", []),
        "revised_at": now.isoformat(),
    }
    await conn.execute(sa.update(t).where(t.c.id == submission_id).values(body=body, revision=revision))
    await uow.emit(
        "submission.revised",
        {
            "submission_id": submission_id,
            "kind": "experience_report",
            "part": row["part"],
            "author_id": row["author_id"],
            "unit_id": row["unit_id"],
            "at": now.astimezone(VN),
            "revision": revision,
            "procedures": codes,
        },
        tenant=tenant,
        edition=edition,
        subject=submission_id,
        time=now,
    )
    return {
        **receipt_of({**row, "body": body, "revision": revision}),
        "revised_at": now.astimezone(VN).isoformat(),
    }


@dataclass(frozen=True)
class Withdraw:
    """The author withdraws their report before the deadline in force."""

    tenant: str
    edition: str
    submission_id: str
    person_id: str
    reason: str | None


async def withdraw(uow: Uow, cmd: Withdraw) -> dict[str, Any]:
    tenant, edition, submission_id = cmd.tenant, cmd.edition, cmd.submission_id
    conn = uow.conn
    t = models.submissions
    ed = await access.edition_of(uow.rt, conn, tenant, edition)
    await intake.lock_intake(conn, tenant, edition)
    now = uow.now()
    row = await _own_report(conn, tenant, edition, submission_id, cmd.person_id)
    part = domain.experience_part(ed, row["part"])
    domain.check_changeable(row["status"], "Báo cáo")
    extended = await intake.extension_of(conn, tenant, edition, part.id, cmd.person_id)
    domain.check_intake_open(ed, part, now, extended)
    await conn.execute(sa.update(t).where(t.c.id == submission_id).values(status="withdrawn"))
    await intake.emit_withdrawn(
        uow, tenant, edition, submission_id, row, "experience_report", now, cmd.reason
    )
    return {
        **receipt_of({**row, "status": "withdrawn"}),
        "withdrawn_at": now.astimezone(VN).isoformat(),
    }


# ---------------------------------------------------------------------------------------------- queries


def _may_see(caller: Any, row: Any) -> bool:
    """Authors see their own; unit heads their unit's (the unit at receipt); secretariat and director all."""
    if caller.has_role("secretariat", "director"):
        return True
    if row["author_id"] == caller.person_id:
        return True
    return bool(caller.has_role("unit_head") and caller.person.unit == row["unit_id"])


async def report(
    rt: Runtime, caller: Caller, tenant: str, edition: str, submission_id: str
) -> dict[str, Any]:
    """One report with its receipt, if the caller may see it (404 otherwise)."""
    t = models.submissions
    async with rt.engine.connect() as conn:
        row = (
            (
                await conn.execute(
                    sa.select(t).where(t.c.tenant == tenant, t.c.edition == edition, t.c.id == submission_id)
                )
            )
            .mappings()
            .first()
        )
    if row is None or not _may_see(caller, row):
        raise no_report()
    return {**receipt_of(row), "body": row["body"]}


async def reports(
    rt: Runtime,
    caller: Caller,
    tenant: str,
    edition: str,
    *,
    limit: int | None = None,
    after: str | None = None,
) -> tuple[list[dict[str, Any]], str | None]:
    """The receipts of the reports the caller may see, in order of receipt, and the cursor of the next page;
    ``limit`` of them after receipt number ``after`` (else all, and no next page). The order is the receipt
    numbers' (given in order of the time of record, gapless per edition), so a page is a range of
    ``uq_receipt_number``. Their six padded digits (``domain.receipt_number``) keep text order and receipt order
    one up to 999,999 reports an edition; a seventh digit would need the number's length in the order."""
    t = models.submissions
    q = sa.select(t).where(t.c.tenant == tenant, t.c.edition == edition, t.c.kind == "experience_report")
    if not caller.has_role("secretariat", "director"):
        if caller.has_role("unit_head"):
            q = q.where(sa.or_(t.c.author_id == caller.person_id, t.c.unit_id == caller.person.unit))  # type: ignore[union-attr]
        else:
            q = q.where(t.c.author_id == caller.person_id)
    if after is not None:
        q = q.where(t.c.receipt_number > after)
    q = q.order_by(t.c.receipt_number)
    async with rt.engine.connect() as conn:
        rows = (await conn.execute(q if limit is None else q.limit(limit + 1))).mappings().all()
    more = limit is not None and len(rows) > limit
    rows = rows[:limit] if limit is not None else rows
    return [receipt_of(r) for r in rows], paging.encode(rows[-1]["receipt_number"]) if more else None


async def intake_closures(rt: Runtime, tenant: str, edition: str) -> list[dict[str, Any]]:
    """Intake closed per part and deadline, with the count accepted on time."""
    c = models.intake_closures
    async with rt.engine.connect() as conn:
        rows = (
            (
                await conn.execute(
                    sa.select(c).where(c.c.tenant == tenant, c.c.edition == edition).order_by(c.c.deadline)
                )
            )
            .mappings()
            .all()
        )
    return [
        {
            "part": r["part"],
            "deadline": r["deadline"].astimezone(VN).isoformat(),
            "deadline_display": domain.deadline_label_vi(r["deadline"]),
            "assignee_id": r["assignee_id"] or None,
            "accepted_on_time": r["accepted_on_time"],
            "event_id": r["event_id"],
        }
        for r in rows
    ]


async def deadlines(rt: Runtime, person: Person, tenant: str, edition: str) -> list[dict[str, Any]]:
    """The person's deadline in force per intake part (the unit's, for an initiative), extensions included."""
    out = []
    async with rt.engine.connect() as conn:
        ed = await access.edition_of(rt, conn, tenant, edition)
        for part in ed.parts:
            if not isinstance(part, intake.INTAKE_KINDS):
                continue
            assignee = person.unit if part.kind == "initiative" else person.id
            extended = await intake.extension_of(conn, tenant, edition, part.id, assignee)
            deadline = domain.deadline_in_force(ed.deadline_of(part.id), extended)
            out.append(
                {
                    "part": part.id,
                    "kind": part.kind,
                    "title": part.title,
                    "deadline": deadline.astimezone(VN).isoformat(),
                    "deadline_display": domain.deadline_label_vi(deadline),
                    "extended": deadline != ed.deadline_of(part.id),
                    "open": ed.opens_at <= rt.now() < deadline + part.grace_delta,
                }
            )
    return out


async def procedure_catalogue(rt: Runtime, tenant: str) -> list[dict[str, Any]]:
    """The tenant's procedure catalogues in force (national codes per unit)."""
    c = models.procedure_catalogues
    async with rt.engine.connect() as conn:
        rows = (await conn.execute(sa.select(c).where(c.c.tenant == tenant).order_by(c.c.unit_id))).mappings()
        return [
            {"unit_id": r["unit_id"], "codes": r["codes"], "at": r["at"].astimezone(VN).isoformat()}
            for r in rows
        ]
