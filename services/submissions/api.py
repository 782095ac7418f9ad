"""Submissions' HTTP API (thin): parse, authorise, check against the edition, record with its event."""

from __future__ import annotations

from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Header
from fastapi.responses import JSONResponse

from services.submissions import domain, models
from shared.documents import format_datetime_vn
from shared.events.envelope import new_event_id
from shared.idempotency import request_hash
from shared.problems import Problem
from shared.service import CallerDep, RuntimeDep, require_person

router = APIRouter(prefix="/tenants/{tenant}/editions/{edition}", tags=["submissions"])


def _receipt(row: Any) -> dict[str, Any]:
    body = row["body"]
    return {
        "submission_id": row["id"],
        "receipt_number": row["receipt_number"],
        "received_at": row["received_at"].astimezone(domain_tz()).isoformat(),
        "received_at_display": format_datetime_vn(row["received_at"]),
        "tenant": row["tenant"],
        "edition": row["edition"],
        "part": row["part"],
        "kind": row["kind"],
        "author_id": row["author_id"],
        "unit_id": row["unit_id"],
        "status": row["status"],
        "revision": row["revision"],
        "procedures": body.get("national_codes", []),
    }


def domain_tz() -> Any:
    from shared.clock import VN

    return VN


@router.post(
    "/experience-reports",
    status_code=201,
    summary="Submit an experience report on online public services (nộp báo cáo trải nghiệm)",
    responses={409: {"description": "one per person, or intake closed"}, 422: {"description": "invalid"}},
)
async def submit_experience_report(
    tenant: str,
    edition: str,
    report: domain.ExperienceReportCreate,
    rt: RuntimeDep,
    caller: CallerDep,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> JSONResponse:
    person = require_person(caller)
    now = rt.now()
    scope = f"{tenant}|{person.id}|experience-reports|{edition}"
    digest = request_hash(report.model_dump(mode="json"))
    t = models.submissions
    async with rt.engine.begin() as conn:
        stored = await rt.idempotency.lookup(conn, scope, idempotency_key, digest)
        if stored is not None:
            return JSONResponse(stored.body, status_code=stored.status)
        assert rt.copies is not None
        ed = await rt.copies.edition(conn, tenant, edition)
        if ed is None:
            raise Problem(
                404,
                f"No edition {edition!r} for {tenant!r}.",
                f"Không có kỳ hội thi {edition!r}.",
                code="no_edition",
            )
        part = domain.experience_part(ed, report.part)
        domain.check_intake_open(ed, part, now)
        codes = domain.check_report(report, part, now.astimezone(domain_tz()).date())
        existing = (
            await conn.execute(
                sa.select(t.c.receipt_number).where(
                    t.c.tenant == tenant,
                    t.c.edition == edition,
                    t.c.part == part.id,
                    t.c.author_id == person.id,
                )
            )
        ).scalar()
        if existing is not None:
            raise Problem(
                409,
                f"You already submitted a report for this part (receipt {existing}); revise it instead.",
                f"Bạn đã nộp báo cáo cho phần thi này (biên nhận {existing}); hãy chỉnh sửa báo cáo đã nộp.",
                code="already_submitted",
            )
        n = await rt.outbox.next_sequence(conn, f"receipt/{tenant}/{edition}")
        sid = new_event_id()
        row = {
            "id": sid,
            "tenant": tenant,
            "edition": edition,
            "part": part.id,
            "kind": "experience_report",
            "author_id": person.id,
            "unit_id": person.unit,
            "receipt_number": domain.receipt_number(edition, n),
            "received_at": now,
            "status": "submitted",
            "revision": 1,
            "body": {**report.model_dump(mode="json"), "national_codes": codes, "unions": person.unions},
        }
        await conn.execute(t.insert().values(**row))
        await rt.outbox.emit(
            conn,
            "submission.received",
            {
                "submission_id": sid,
                "kind": "experience_report",
                "part": part.id,
                "receipt_number": row["receipt_number"],
                "received_at": now.astimezone(domain_tz()),
                "author_id": person.id,
                "unit_id": person.unit,
                "union_ids": person.unions,
                "authors": [{"person_id": person.id, "name": person.name, "share": 100}],
                "title": part.title,
                "procedures": codes,
                "revision": 1,
            },
            tenant=tenant,
            edition=edition,
            subject=sid,
            time=now,
        )
        receipt = _receipt(row)
        await rt.idempotency.remember(conn, scope, idempotency_key, digest, 201, receipt, now)
    rt.outbox.committed()
    return JSONResponse(receipt, status_code=201)


@router.get(
    "/experience-reports/{submission_id}", summary="One report with its receipt (author or secretariat)"
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
    if row is None or (
        row["author_id"] != caller.person_id and not caller.has_role("secretariat", "director")
    ):
        raise Problem(404, "No such report.", "Không tìm thấy báo cáo.", code="not_found")
    return {**_receipt(row), "body": row["body"]}


@router.get("/experience-reports", summary="Reports: the caller's own, or all for the secretariat")
async def list_experience_reports(
    tenant: str, edition: str, rt: RuntimeDep, caller: CallerDep
) -> list[dict[str, Any]]:
    t = models.submissions
    q = sa.select(t).where(t.c.tenant == tenant, t.c.edition == edition, t.c.kind == "experience_report")
    if not caller.has_role("secretariat", "director"):
        q = q.where(t.c.author_id == caller.person_id)
    async with rt.engine.connect() as conn:
        rows = (await conn.execute(q.order_by(t.c.received_at))).mappings().all()
    return [_receipt(r) for r in rows]
