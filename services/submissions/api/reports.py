"""Experience reports' HTTP edge (thin): the receipt by group commit (``usecases/receipts.py``), revision and
withdrawal as use cases (``usecases/reports.py``, one unit of work each), the reads as its queries; the
caller's deadlines, the intake closures and the procedure catalogue."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import JSONResponse, Response

from services.submissions import domain
from services.submissions.usecases import access, receipts, reports
from shared import paging
from shared.auth import Principal, authenticate, require_tenant
from shared.group_commit import Overloaded
from shared.guard import Throttles
from shared.idempotency import request_hash
from shared.logs import correlation_id
from shared.problems import PROBLEM_JSON, problem_body
from shared.service import CallerDep, RuntimeDep, require_person
from shared.text import LongText
from shared.uow import run


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
    # Group commit (usecases/receipts.py): the caller's directory entry, the edition and every check are read
    # by the batch this request joins; the answer comes after that batch committed.
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
    cmd = reports.Revise(tenant, edition, submission_id, person.id, report)
    return (await run(rt, reports.revise, cmd)).unwrap()


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
    reason = withdrawal.reason if withdrawal else None
    cmd = reports.Withdraw(tenant, edition, submission_id, person.id, reason)
    return (await run(rt, reports.withdraw, cmd)).unwrap()


@router.get(
    "/experience-reports/{submission_id}",
    summary="One report with its receipt (author, unit head, secretariat)",
)
async def get_experience_report(
    tenant: str, edition: str, submission_id: str, rt: RuntimeDep, caller: CallerDep
) -> dict[str, Any]:
    return await reports.report(rt, caller, tenant, edition, submission_id)


@router.get(
    "/experience-reports",
    summary="Reports the caller may see: their own; a unit head's unit; everything for the secretariat",
)
async def list_experience_reports(
    tenant: str,
    edition: str,
    rt: RuntimeDep,
    caller: CallerDep,
    request: Request,
    response: Response,
    limit: paging.WholeOrPage = None,
    after: paging.Cursor = None,
) -> list[dict[str, Any]]:
    """Their own; a unit head's unit; everything for the secretariat. In order of receipt; with ``limit``, a page,
    the ``Link`` header naming the next (``rel="next"``)."""
    at = paging.place(after, 1)  # the last receipt number of the page before
    found, following = await reports.reports(
        rt, caller, tenant, edition, limit=limit, after=at[0] if at else None
    )
    paging.link_next(request, response, following)
    return found


@router.get("/intake-closures", summary="Intake closed per part and deadline, with counts (secretariat)")
async def list_intake_closures(
    tenant: str, edition: str, rt: RuntimeDep, caller: CallerDep
) -> list[dict[str, Any]]:
    if not caller.has_role("secretariat", "director"):
        raise access.forbidden("For the secretariat only.", "Chỉ dành cho Thường trực.")
    return await reports.intake_closures(rt, tenant, edition)


@router.get(
    "/deadlines",
    summary="The caller's deadline in force per intake part (hạn chót), extensions included",
)
async def my_deadlines(tenant: str, edition: str, rt: RuntimeDep, caller: CallerDep) -> list[dict[str, Any]]:
    person = require_person(caller)
    return await reports.deadlines(rt, person, tenant, edition)


catalogue_router = APIRouter(prefix="/tenants/{tenant}", tags=["submissions"])


@catalogue_router.get(
    "/procedures", summary="The procedure catalogue reports are checked against (national codes per unit)"
)
async def procedure_catalogue(tenant: str, rt: RuntimeDep, caller: CallerDep) -> list[dict[str, Any]]:
    require_person(caller)
    return await reports.procedure_catalogue(rt, tenant)
