"""Submissions' HTTP API (thin): parse, authorise, check against the edition, record with its event."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
import sqlalchemy as sa
from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import JSONResponse, Response

from services.submissions import domain, models
from services.submissions.usecases import intake, receipts
from shared.auth import Principal, authenticate, require_tenant
from shared.group_commit import Overloaded
from shared.guard import Throttles
from shared.idempotency import request_hash
from shared.logs import correlation_id
from shared.problems import PROBLEM_JSON, Problem, problem_body
from shared.service import CallerDep, RuntimeDep, require_person
from shared.text import LongText


async def current_principal(
    request: Request, tenant: str, rt: RuntimeDep, authorization: Annotated[str | None, Header()] = None
) -> Principal:
    """Who calls, from the token alone: intake reads the caller's directory entry in its batch, not per
    request. The token is verified once — by ``HttpGuard`` before the body is read (it knows this dependency
    by ``hoithi_needs_caller``), its principal reused here — and intake is throttled per person like every
    other write."""
    principal = request.scope.get("state", {}).get("principal") or await authenticate(
        rt.settings, authorization
    )
    require_tenant(principal, tenant)
    throttles: Throttles | None = getattr(request.app.state, "throttles", None)
    if throttles is not None:
        throttles.write(request.method, principal.tenant, principal.person_id)
    return principal


current_principal.hoithi_needs_caller = True  # type: ignore[attr-defined]


PrincipalDep = Annotated[Principal, Depends(current_principal)]

router = APIRouter(prefix="/tenants/{tenant}/editions/{edition}", tags=["submissions"])


_receipt = receipts.receipt_of


def domain_tz() -> Any:
    from shared.clock import VN

    return VN


async def _edition(rt: Any, conn: Any, tenant: str, edition: str) -> Any:
    assert rt.copies is not None
    ed = await rt.copies.edition(conn, tenant, edition)
    if ed is None:
        raise Problem(
            404,
            f"No edition {edition!r} for {tenant!r}.",
            f"Không có kỳ hội thi {edition!r}.",
            code="no_edition",
        )
    return ed


@router.post(
    "/experience-reports",
    status_code=201,
    summary="Submit an experience report on online public services (nộp báo cáo trải nghiệm)",
    responses={
        409: {"description": "one per person, or intake closed"},
        422: {"description": "invalid"},
        503: {"description": "intake queue full: retry after Retry-After seconds"},
    },
)
async def submit_experience_report(
    tenant: str,
    edition: str,
    report: domain.ExperienceReportCreate,
    rt: RuntimeDep,
    principal: PrincipalDep,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> JSONResponse:
    # Group commit (receipts.py): the caller's directory entry, the edition and every check are read by the
    # batch this request joins; the answer comes after that batch committed.
    body = report.model_dump(mode="json")
    request = receipts.ReportRequest(
        tenant=tenant,
        edition=edition,
        person_id=principal.person_id,
        report=report,
        idempotency_key=idempotency_key,
        digest=request_hash(body),
        correlation_id=correlation_id.get() or None,
        body=body,
    )
    try:
        answer = await receipts.intake_of(rt).submit(request)
    except Overloaded as exc:
        return JSONResponse(
            problem_body(
                503,
                "Intake is at capacity right now; your report was not recorded. Please retry shortly.",
                "Hệ thống đang tiếp nhận quá nhiều báo cáo; báo cáo của bạn chưa được ghi nhận. "
                f"Vui lòng gửi lại sau {exc.retry_after} giây.",
                code="intake_busy",
            ),
            status_code=503,
            media_type=PROBLEM_JSON,
            headers={"Retry-After": str(exc.retry_after)},
        )
    return Response(orjson.dumps(answer.body), status_code=answer.status, media_type="application/json")


async def _own_report(conn: Any, tenant: str, edition: str, submission_id: str, person_id: str) -> Any:
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
        raise Problem(404, "No such report.", "Không tìm thấy báo cáo.", code="not_found")
    return row


@router.put(
    "/experience-reports/{submission_id}",
    summary="Revise one's report before the deadline in force (chỉnh sửa báo cáo): same receipt, revision+1",
    responses={404: {"description": "not the caller's"}, 409: {"description": "closed, withdrawn, rejected"}},
)
async def revise_experience_report(
    tenant: str,
    edition: str,
    submission_id: str,
    report: domain.ExperienceReportCreate,
    rt: RuntimeDep,
    caller: CallerDep,
) -> dict[str, Any]:
    person = require_person(caller)
    t = models.submissions
    async with rt.engine.begin() as conn:
        ed = await _edition(rt, conn, tenant, edition)
        await intake.lock_intake(conn, tenant, edition)
        now = rt.now()
        row = await _own_report(conn, tenant, edition, submission_id, person.id)
        part = domain.experience_part(ed, row["part"])
        domain.check_changeable(row["status"], "Báo cáo")
        extended = await intake.extension_of(conn, tenant, edition, part.id, person.id)
        domain.check_intake_open(ed, part, now, extended)
        codes = domain.check_report(report, part, now.astimezone(domain_tz()).date())
        domain.check_catalogue(codes, await intake.known_procedures(conn, tenant))
        if domain.same_content(row["body"], {**report.model_dump(mode="json"), "part": row["part"]}):
            return _receipt(row)  # a retried PUT: no new revision, no event
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
        await rt.outbox.emit(
            conn,
            "submission.revised",
            {
                "submission_id": submission_id,
                "kind": "experience_report",
                "part": row["part"],
                "author_id": row["author_id"],
                "unit_id": row["unit_id"],
                "at": now.astimezone(domain_tz()),
                "revision": revision,
                "procedures": codes,
            },
            tenant=tenant,
            edition=edition,
            subject=submission_id,
            time=now,
        )
    rt.outbox.committed()
    return {
        **_receipt({**row, "body": body, "revision": revision}),
        "revised_at": now.astimezone(domain_tz()).isoformat(),
    }


class Withdrawal(domain.BaseModel):
    model_config = domain.ConfigDict(extra="forbid")
    reason: LongText | None = domain.Field(default=None, max_length=2000)


@router.post(
    "/experience-reports/{submission_id}/withdrawal",
    summary="Withdraw one's report before the deadline in force (rút báo cáo)",
    responses={404: {"description": "not the caller's"}, 409: {"description": "closed or already withdrawn"}},
)
async def withdraw_experience_report(
    tenant: str,
    edition: str,
    submission_id: str,
    rt: RuntimeDep,
    caller: CallerDep,
    withdrawal: Withdrawal | None = None,
) -> dict[str, Any]:
    person = require_person(caller)
    t = models.submissions
    async with rt.engine.begin() as conn:
        ed = await _edition(rt, conn, tenant, edition)
        await intake.lock_intake(conn, tenant, edition)
        now = rt.now()
        row = await _own_report(conn, tenant, edition, submission_id, person.id)
        part = domain.experience_part(ed, row["part"])
        domain.check_changeable(row["status"], "Báo cáo")
        extended = await intake.extension_of(conn, tenant, edition, part.id, person.id)
        domain.check_intake_open(ed, part, now, extended)
        await conn.execute(sa.update(t).where(t.c.id == submission_id).values(status="withdrawn"))
        await rt.outbox.emit(
            conn,
            "submission.withdrawn",
            {
                "submission_id": submission_id,
                "kind": "experience_report",
                "part": row["part"],
                "author_id": row["author_id"],
                "unit_id": row["unit_id"],
                "at": now.astimezone(domain_tz()),
                "reason": withdrawal.reason if withdrawal else None,
            },
            tenant=tenant,
            edition=edition,
            subject=submission_id,
            time=now,
        )
    rt.outbox.committed()
    return {
        **_receipt({**row, "status": "withdrawn"}),
        "withdrawn_at": now.astimezone(domain_tz()).isoformat(),
    }


def _may_see(caller: Any, row: Any) -> bool:
    """Authors see their own; unit heads their unit's (the unit at receipt); secretariat and director all."""
    if caller.has_role("secretariat", "director"):
        return True
    if row["author_id"] == caller.person_id:
        return True
    return bool(caller.has_role("unit_head") and caller.person.unit == row["unit_id"])


@router.get(
    "/experience-reports/{submission_id}",
    summary="One report with its receipt (author, unit head, secretariat)",
)
async def get_experience_report(
    tenant: str, edition: str, submission_id: str, rt: RuntimeDep, caller: CallerDep
) -> dict[str, Any]:
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
        raise Problem(404, "No such report.", "Không tìm thấy báo cáo.", code="not_found")
    return {**_receipt(row), "body": row["body"]}


@router.get(
    "/experience-reports",
    summary="Reports the caller may see: their own; a unit head's unit; everything for the secretariat",
)
async def list_experience_reports(
    tenant: str, edition: str, rt: RuntimeDep, caller: CallerDep
) -> list[dict[str, Any]]:
    t = models.submissions
    q = sa.select(t).where(t.c.tenant == tenant, t.c.edition == edition, t.c.kind == "experience_report")
    if not caller.has_role("secretariat", "director"):
        if caller.has_role("unit_head"):
            q = q.where(sa.or_(t.c.author_id == caller.person_id, t.c.unit_id == caller.person.unit))  # type: ignore[union-attr]
        else:
            q = q.where(t.c.author_id == caller.person_id)
    async with rt.engine.connect() as conn:
        rows = (await conn.execute(q.order_by(t.c.received_at))).mappings().all()
    return [_receipt(r) for r in rows]


@router.get("/intake-closures", summary="Intake closed per part and deadline, with counts (secretariat)")
async def list_intake_closures(
    tenant: str, edition: str, rt: RuntimeDep, caller: CallerDep
) -> list[dict[str, Any]]:
    if not caller.has_role("secretariat", "director"):
        raise Problem(403, "For the secretariat only.", "Chỉ dành cho Thường trực.", code="forbidden")
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
            "deadline": r["deadline"].astimezone(domain_tz()).isoformat(),
            "deadline_display": domain.deadline_label_vi(r["deadline"]),
            "assignee_id": r["assignee_id"] or None,
            "accepted_on_time": r["accepted_on_time"],
            "event_id": r["event_id"],
        }
        for r in rows
    ]


@router.get(
    "/deadlines",
    summary="The caller's deadline in force per intake part (hạn chót), extensions included",
)
async def my_deadlines(tenant: str, edition: str, rt: RuntimeDep, caller: CallerDep) -> list[dict[str, Any]]:
    person = require_person(caller)
    out = []
    async with rt.engine.connect() as conn:
        ed = await _edition(rt, conn, tenant, edition)
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
                    "deadline": deadline.astimezone(domain_tz()).isoformat(),
                    "deadline_display": domain.deadline_label_vi(deadline),
                    "extended": deadline != ed.deadline_of(part.id),
                    "open": ed.opens_at <= rt.now() < deadline + part.grace_delta,
                }
            )
    return out


catalogue_router = APIRouter(prefix="/tenants/{tenant}", tags=["submissions"])


@catalogue_router.get(
    "/procedures", summary="The procedure catalogue reports are checked against (national codes per unit)"
)
async def procedure_catalogue(tenant: str, rt: RuntimeDep, caller: CallerDep) -> list[dict[str, Any]]:
    require_person(caller)
    c = models.procedure_catalogues
    async with rt.engine.connect() as conn:
        rows = (await conn.execute(sa.select(c).where(c.c.tenant == tenant).order_by(c.c.unit_id))).mappings()
        return [
            {"unit_id": r["unit_id"], "codes": r["codes"], "at": r["at"].astimezone(domain_tz()).isoformat()}
            for r in rows
        ]
