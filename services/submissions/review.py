"""The secretariat's eligibility rulings, the council's review (conflicts, reassignments, score sheets,
ranking, progress) and the selection. Thin: parse → authorise → domain rules → state + event together."""

from __future__ import annotations

import uuid
from fractions import Fraction
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Header, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncConnection

from services.submissions import access, domain, intake, models
from shared.clock import VN
from shared.documents import Council, Edition, SelectionPart
from shared.events.envelope import deterministic_id
from shared.idempotency import request_hash
from shared.problems import Problem, field_error
from shared.service import Caller, CallerDep, Runtime, RuntimeDep, require_person
from shared.text import LongText

router = APIRouter(prefix="/tenants/{tenant}/editions/{edition}", tags=["review"])


class Rejection(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: LongText = Field(min_length=1, max_length=5000, description="why it is ineligible (Vietnamese)")


class Reinstatement(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: LongText | None = Field(default=None, max_length=5000)


class ConflictDeclaration(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: LongText | None = Field(default=None, max_length=2000)


class Reassignment(BaseModel):
    model_config = ConfigDict(extra="forbid")
    add: list[str] = Field(default_factory=list)
    remove: list[str] = Field(default_factory=list)


class ScoreSheetIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    scores: dict[str, float] = Field(description="criterion id -> points, 0..max")
    comment: LongText | None = Field(default=None, max_length=10_000)


class SelectionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    selected: list[str] = Field(
        min_length=1, description="submission ids selected for the provincial contest"
    )
    notes: dict[str, LongText] = Field(default_factory=dict, description="submission id -> decision note")
    decision_notes: LongText | None = Field(
        default=None, max_length=20_000, description="the council's minutes"
    )


def _num(f: Fraction | None) -> float | None:
    return None if f is None else round(float(f), 2)


def _change_data(row: Any, now: Any) -> dict[str, Any]:
    return {
        "submission_id": row["id"],
        "kind": row["kind"],
        "part": row["part"],
        "author_id": row["author_id"],
        "unit_id": row["unit_id"],
        "at": now.astimezone(VN),
    }


# ---------------------------------------------------------------------------------------------- rulings


def _secretariat(caller: Caller) -> None:
    if not caller.has_role("secretariat"):
        raise access.forbidden("For the secretariat only.", "Chỉ Thường trực (Văn phòng Sở) được thực hiện.")


@router.post(
    "/submissions/{submission_id}/rejection", summary="Rule an accepted submission ineligible (secretariat)"
)
async def reject(
    tenant: str,
    edition: str,
    submission_id: str,
    body: Rejection,
    rt: RuntimeDep,
    caller: CallerDep,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> Any:
    _secretariat(caller)
    scope = f"{tenant}|{caller.person_id}|rejection|{edition}|{submission_id}"
    digest = request_hash(body.model_dump(mode="json"))
    async with rt.engine.begin() as conn:
        stored = await rt.idempotency.lookup(conn, scope, idempotency_key, digest)
        if stored is not None:  # a retry of a ruling already made: its answer, not "not submitted"
            return JSONResponse(stored.body, status_code=stored.status)
        row = await access.load(conn, tenant, edition, submission_id, lock=True)
        if row["status"] != "submitted":
            raise Problem(
                409,
                f"Only an accepted submission can be ruled ineligible (this one is {row['status']}).",
                "Chỉ hồ sơ đã được tiếp nhận mới có thể bị xác định không hợp lệ.",
                code="not_submitted",
            )
        now = rt.now()
        await _rule(conn, row, "rejected", body.reason, caller.person_id, now)
        await rt.outbox.emit(
            conn,
            "submission.rejected",
            {**_change_data(row, now), "reason": body.reason, "rejected_by": caller.person_id},
            tenant=tenant,
            edition=edition,
            subject=submission_id,
            time=now,
        )
        answer = {"submission_id": submission_id, "status": "rejected", "reason": body.reason}
        await rt.idempotency.remember(conn, scope, idempotency_key, digest, 200, answer, now)
    rt.outbox.committed()
    return answer


@router.post(
    "/submissions/{submission_id}/reinstatement", summary="Reverse an ineligibility ruling (secretariat)"
)
async def reinstate(
    tenant: str,
    edition: str,
    submission_id: str,
    rt: RuntimeDep,
    caller: CallerDep,
    body: Reinstatement | None = None,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> Any:
    _secretariat(caller)
    reason = body.reason if body else None
    scope = f"{tenant}|{caller.person_id}|reinstatement|{edition}|{submission_id}"
    digest = request_hash(body.model_dump(mode="json") if body else None)
    async with rt.engine.begin() as conn:
        stored = await rt.idempotency.lookup(conn, scope, idempotency_key, digest)
        if stored is not None:
            return JSONResponse(stored.body, status_code=stored.status)
        row = await access.load(conn, tenant, edition, submission_id, lock=True)
        if row["status"] != "rejected":
            raise Problem(
                409,
                "Only a submission ruled ineligible can be reinstated.",
                "Chỉ hồ sơ đã bị xác định không hợp lệ mới có thể được khôi phục.",
                code="not_rejected",
            )
        now = rt.now()
        await _rule(conn, row, "submitted", reason, caller.person_id, now, ruling="reinstated")
        await rt.outbox.emit(
            conn,
            "submission.reinstated",
            {**_change_data(row, now), "reason": reason, "reinstated_by": caller.person_id},
            tenant=tenant,
            edition=edition,
            subject=submission_id,
            time=now,
        )
        answer = {"submission_id": submission_id, "status": "submitted", "reason": reason}
        await rt.idempotency.remember(conn, scope, idempotency_key, digest, 200, answer, now)
    rt.outbox.committed()
    return answer


async def _rule(
    conn: AsyncConnection,
    row: Any,
    status: str,
    reason: str | None,
    by: str,
    now: Any,
    ruling: str = "rejected",
) -> None:
    t = models.submissions
    await conn.execute(sa.update(t).where(t.c.id == row["id"]).values(status=status))
    await conn.execute(
        models.rulings.insert().values(
            id=str(uuid.uuid4()),
            submission_id=row["id"],
            ruling=ruling,
            reason=reason,
            ruled_by=by,
            ruled_at=now,
        )
    )


# ---------------------------------------------------------------------------------------------- review


async def _initiative(
    rt: Runtime, conn: AsyncConnection, tenant: str, edition: str, sid: str, *, lock: bool = False
) -> tuple[Any, Edition, SelectionPart, Council]:
    row = await access.load(conn, tenant, edition, sid, lock=lock)
    if row["kind"] != "initiative" or row["received_at"] is None:
        raise access.not_found()
    ed = await access.edition_of(rt, conn, tenant, edition)
    part, council = access.selection_of(ed, row["part"])
    return row, ed, part, council


async def _decided(conn: AsyncConnection, tenant: str, edition: str, part: str) -> bool:
    s = models.selections
    q = (
        sa.select(s.c.submission_id)
        .where(s.c.tenant == tenant, s.c.edition == edition, s.c.part == part)
        .limit(1)
    )
    return (await conn.execute(q)).first() is not None


def _chair_or_secretariat(caller: Caller, council: Council) -> None:
    if not (caller.person_id == council.chair or caller.has_role("secretariat")):
        raise access.forbidden(
            "Only the council chair or the secretariat.",
            "Chỉ Chủ tịch Hội đồng hoặc Thường trực được thực hiện.",
        )


@router.post(
    "/initiatives/{submission_id}/conflicts", status_code=201, summary="A council member declares a conflict"
)
async def declare_conflict(
    tenant: str,
    edition: str,
    submission_id: str,
    rt: RuntimeDep,
    caller: CallerDep,
    body: ConflictDeclaration | None = None,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> Any:
    scope = f"{tenant}|{caller.person_id}|conflicts|{edition}|{submission_id}"
    digest = request_hash(body.model_dump(mode="json") if body else None)
    async with rt.engine.begin() as conn:
        stored = await rt.idempotency.lookup(conn, scope, idempotency_key, digest)
        if stored is not None:
            return JSONResponse(stored.body, status_code=stored.status)
        _row, _ed, _part, council = await _initiative(rt, conn, tenant, edition, submission_id)
        if caller.person_id not in council.members:
            raise access.forbidden("Council members only.", "Chỉ thành viên Hội đồng.")
        sheet = (
            await conn.execute(
                sa.select(models.score_sheets.c.member_id).where(
                    models.score_sheets.c.submission_id == submission_id,
                    models.score_sheets.c.member_id == caller.person_id,
                )
            )
        ).first()
        if sheet is not None:
            raise Problem(
                409,
                "You already scored this initiative; ask the chair to reassign it.",
                "Bạn đã chấm sáng kiến này; đề nghị Chủ tịch Hội đồng phân công lại.",
                code="already_scored",
            )
        c = models.conflicts
        await conn.execute(
            sa.delete(c).where(c.c.submission_id == submission_id, c.c.member_id == caller.person_id)
        )
        await conn.execute(
            c.insert().values(
                submission_id=submission_id,
                member_id=caller.person_id,
                reason=body.reason if body else None,
                declared_at=rt.now(),
            )
        )
        answer = {"submission_id": submission_id, "member_id": caller.person_id, "conflict": True}
        await rt.idempotency.remember(conn, scope, idempotency_key, digest, 201, answer, rt.now())
    return answer


@router.put(
    "/initiatives/{submission_id}/reviewers", summary="The chair reassigns reviewers (add / remove members)"
)
async def reassign(
    tenant: str, edition: str, submission_id: str, body: Reassignment, rt: RuntimeDep, caller: CallerDep
) -> dict[str, Any]:
    async with rt.engine.begin() as conn:
        row, _ed, _part, council = await _initiative(rt, conn, tenant, edition, submission_id)
        _chair_or_secretariat(caller, council)
        review = await access.review_of(rt, conn, tenant, row, council)
        errors = []
        for i, m in enumerate(body.add):
            if m not in council.members:
                errors.append(
                    field_error(
                        f"add[{i}]", "Not a council member.", "Không phải thành viên Hội đồng.", "not_member"
                    )
                )
            elif (bar := review.barred(m)) is not None:
                refusal = domain.barred_refusal(bar)
                errors.append(field_error(f"add[{i}]", refusal.detail, refusal.detail_vi, refusal.code))
        for i, m in enumerate(body.remove):
            if m not in council.members:
                errors.append(
                    field_error(
                        f"remove[{i}]",
                        "Not a council member.",
                        "Không phải thành viên Hội đồng.",
                        "not_member",
                    )
                )
        if errors:
            raise Problem(
                422, "Invalid reassignment.", "Phân công lại không hợp lệ.", code="validation", errors=errors
            )
        r = models.reassignments
        now = rt.now()
        for action, members in (("add", body.add), ("remove", body.remove)):
            for m in members:
                await conn.execute(sa.delete(r).where(r.c.submission_id == submission_id, r.c.member_id == m))
                await conn.execute(
                    r.insert().values(
                        submission_id=submission_id, member_id=m, action=action, by=caller.person_id, at=now
                    )
                )
        chosen, _ = await access.reviewers_of(rt, conn, tenant, row, council)
    return {"submission_id": submission_id, "reviewers": chosen}


@router.get("/initiatives/{submission_id}/reviewers", summary="Reviewers of an initiative and who has scored")
async def list_reviewers(
    tenant: str, edition: str, submission_id: str, rt: RuntimeDep, caller: CallerDep
) -> dict[str, Any]:
    async with rt.engine.connect() as conn:
        row, _ed, _part, council = await _initiative(rt, conn, tenant, edition, submission_id)
        _chair_or_secretariat(caller, council)
        chosen, _ = await access.reviewers_of(rt, conn, tenant, row, council)
        s = models.score_sheets
        scored = set(
            (await conn.execute(sa.select(s.c.member_id).where(s.c.submission_id == submission_id))).scalars()
        )
        excluded = await access.review_exclusions(rt, conn, tenant, row, council)
    return {
        "submission_id": submission_id,
        "reviewers": [{"member_id": m, "scored": m in scored} for m in chosen],
        "excluded": [_exclusion(e) for e in excluded],
    }


def _exclusion(e: domain.Exclusion) -> dict[str, Any]:
    return {"member_id": e.member_id, "reason": e.reason, "detail": e.detail, "reason_vi": e.reason_vi}


@router.put(
    "/initiatives/{submission_id}/score-sheet",
    summary="A council member's score sheet on the edition's rubric (phiếu chấm); a re-score is a new revision",
    responses={403: {"description": "own unit, conflict, or not assigned: nothing written"}},
)
async def score(
    tenant: str, edition: str, submission_id: str, body: ScoreSheetIn, rt: RuntimeDep, caller: CallerDep
) -> dict[str, Any]:
    member = require_person(caller).id
    s = models.score_sheets
    async with rt.engine.begin() as conn:
        row, _ed, part, council = await _initiative(rt, conn, tenant, edition, submission_id, lock=True)
        if member not in council.members:
            raise access.forbidden("Council members only.", "Chỉ thành viên Hội đồng được chấm.")
        review = await access.review_of(rt, conn, tenant, row, council)
        if (bar := review.barred(member)) is not None:
            raise domain.barred_refusal(bar)
        if member not in review.chosen:
            raise access.forbidden(
                "This initiative is not assigned to you (conflict declared or reassigned).",
                "Sáng kiến này không được phân công cho bạn (đã khai xung đột lợi ích hoặc được phân công lại).",
            )
        if row["status"] != "submitted":
            raise Problem(
                409,
                "This initiative is not in review.",
                "Sáng kiến này không còn được xét.",
                code="not_in_review",
            )
        if await _decided(conn, tenant, edition, part.id):
            raise Problem(
                409, "The selection is already decided.", "Hội đồng đã quyết định xét chọn.", code="decided"
            )
        scores = domain.check_score_sheet(part.rubric, body.scores, body.comment)
        total = sum(scores.values(), Fraction(0))
        now = rt.now()
        prev = (
            await conn.execute(
                sa.select(s.c.revision).where(s.c.submission_id == submission_id, s.c.member_id == member)
            )
        ).scalar()
        revision = (prev or 0) + 1
        values = {
            "tenant": tenant,
            "edition": edition,
            "scores": {k: str(v) for k, v in scores.items()},
            "total": float(total),
            "comment": body.comment,
            "revision": revision,
            "scored_at": now,
        }
        if prev is None:
            await conn.execute(s.insert().values(submission_id=submission_id, member_id=member, **values))
        else:
            await conn.execute(
                sa.update(s)
                .where(s.c.submission_id == submission_id, s.c.member_id == member)
                .values(**values)
            )
        await rt.outbox.emit(
            conn,
            "initiative.scored",
            {
                "submission_id": submission_id,
                "part": part.id,
                "council_id": part.assignees.council,
                "member_id": member,
                "scores": {k: float(v) for k, v in scores.items()},
                "total": float(total),
                "comment": body.comment,
                "at": now.astimezone(VN),
                "revision": revision,
            },
            tenant=tenant,
            edition=edition,
            subject=submission_id,
            time=now,
        )
    rt.outbox.committed()
    return {"submission_id": submission_id, "member_id": member, "total": float(total), "revision": revision}


async def _in_review(conn: AsyncConnection, tenant: str, edition: str, initiative_part: str) -> list[Any]:
    t = models.submissions
    q = sa.select(t).where(
        t.c.tenant == tenant,
        t.c.edition == edition,
        t.c.part == initiative_part,
        t.c.kind == "initiative",
        t.c.status == "submitted",
    )
    return list((await conn.execute(q.order_by(t.c.received_at))).mappings().all())


async def _sheets(conn: AsyncConnection, ids: list[str]) -> dict[str, list[Any]]:
    s = models.score_sheets
    out: dict[str, list[Any]] = {i: [] for i in ids}
    if ids:
        for r in (
            await conn.execute(sa.select(s).where(s.c.submission_id.in_(ids)).order_by(s.c.member_id))
        ).mappings():
            out[r["submission_id"]].append(r)
    return out


async def ranking_rows(
    rt: Runtime, conn: AsyncConnection, tenant: str, edition: str
) -> tuple[SelectionPart, Council, list[dict[str, Any]]]:
    ed = await access.edition_of(rt, conn, tenant, edition)
    init = access.initiative_part(ed, None)
    part, council = access.selection_of(ed, init.id)
    rows = await _in_review(conn, tenant, edition, init.id)
    sheets = await _sheets(conn, [r["id"] for r in rows])
    entries = [
        domain.Entry(
            r["id"],
            r["received_at"],
            [sum((Fraction(v) for v in sh["scores"].values()), Fraction(0)) for sh in sheets[r["id"]]],
        )
        for r in rows
    ]
    by_id = {r["id"]: r for r in rows}
    out = []
    for rk in domain.rank(entries, part.rubric):
        r = by_id[rk.submission_id]
        out.append(
            {
                "submission_id": rk.submission_id,
                "receipt_number": r["receipt_number"],
                "title": r["body"]["title"],
                "unit_id": r["unit_id"],
                "unit_name": r["body"].get("unit_name"),
                "received_at": r["received_at"].astimezone(VN).isoformat(),
                "rank": rk.rank,
                "score": _num(rk.score),
                "mean": _num(rk.mean),
                "median": _num(rk.median),
                "disagreement": None if rk.disagreement is None else round(rk.disagreement, 2),
                "disputed": rk.disputed,
                "sheets": rk.sheets,
                "_units": access.author_units(r),
                "_row": r,
                "_scores": {sh["member_id"]: sh for sh in sheets[rk.submission_id]},
            }
        )
    return part, council, out


@router.get(
    "/ranking", summary="Aggregates and ranking as the edition's rubric states (council, secretariat)"
)
async def ranking(tenant: str, edition: str, rt: RuntimeDep, caller: CallerDep) -> dict[str, Any]:
    async with rt.engine.connect() as conn:
        part, council, rows = await ranking_rows(rt, conn, tenant, edition)
        decided = await _decided(conn, tenant, edition, part.id)
        full = access.is_overseer(caller) or caller.person_id == council.chair
        if not full and caller.person_id not in council.members:
            raise access.forbidden("Council and secretariat only.", "Chỉ Hội đồng và Thường trực được xem.")
        # who does not review each one, and why (own unit and through whom, declared conflict, chair)
        excluded = {
            r["submission_id"]: [
                _exclusion(e) for e in await access.review_exclusions(rt, conn, tenant, r["_row"], council)
            ]
            for r in (rows if full else [])
        }
        # a member barred from an entry (own unit, or a unit merged with it) never sees its scores before
        # the selection
        barred = {
            r["submission_id"]
            for r in (rows if not full and not decided and caller.person_id in council.members else [])
            if (await access.review_of(rt, conn, tenant, r["_row"], council)).barred(caller.person_id)
        }
    my_unit = caller.person.unit if caller.person else None
    out = []
    for r in rows:
        pub = {k: v for k, v in r.items() if not k.startswith("_")}
        if full:
            pub["excluded"] = excluded[r["submission_id"]]
        if not full and not decided and (my_unit in r["_units"] or r["submission_id"] in barred):
            # Never their own unit's scores before the selection.
            pub.update(
                rank=None, score=None, mean=None, median=None, disagreement=None, disputed=None, hidden=True
            )
        out.append(pub)
    return {
        "part": part.id,
        "aggregate": part.rubric.aggregate,
        "ties": list(part.rubric.ties),
        "decided": decided,
        "initiatives": out,
    }


@router.get("/review/progress", summary="Reviewers' progress: done / to do (a member: their own; chair: all)")
async def progress(
    tenant: str, edition: str, rt: RuntimeDep, caller: CallerDep, member: str | None = Query(default=None)
) -> dict[str, Any]:
    async with rt.engine.connect() as conn:
        ed = await access.edition_of(rt, conn, tenant, edition)
        init = access.initiative_part(ed, None)
        part, council = access.selection_of(ed, init.id)
        full = access.is_overseer(caller) or caller.person_id == council.chair
        if member is None:
            members = list(council.members) if full else [caller.person_id]
        else:
            members = [member]
        if not full and members != [caller.person_id]:
            raise access.forbidden("Your own progress only.", "Chỉ xem được tiến độ của chính mình.")
        if caller.person_id not in council.members and not full:
            raise access.forbidden("Council members only.", "Chỉ thành viên Hội đồng.")
        rows = await _in_review(conn, tenant, edition, init.id)
        sheets = await _sheets(conn, [r["id"] for r in rows])
        report: dict[str, Any] = {m: {"member_id": m, "done": [], "to_do": []} for m in members}
        for r in rows:
            chosen, _ = await access.reviewers_of(rt, conn, tenant, r, council)
            scored = {sh["member_id"] for sh in sheets[r["id"]]}
            for m in members:
                if m in chosen:
                    item = {
                        "submission_id": r["id"],
                        "title": r["body"]["title"],
                        "receipt_number": r["receipt_number"],
                    }
                    report[m]["done" if m in scored else "to_do"].append(item)
    for v in report.values():
        v["done_count"], v["to_do_count"] = len(v["done"]), len(v["to_do"])
    return {"part": part.id, "members": list(report.values())}


# ---------------------------------------------------------------------------------------------- selection


@router.post(
    "/selection",
    status_code=201,
    summary="Select at least the edition's minimum of scored initiatives, with notes (chair or secretariat)",
)
async def select(
    tenant: str,
    edition: str,
    body: SelectionIn,
    rt: RuntimeDep,
    caller: CallerDep,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> Any:
    scope = f"{tenant}|{caller.person_id}|selection|{edition}"
    digest = request_hash(body.model_dump(mode="json"))
    async with rt.engine.begin() as conn:
        # A retry of a decision already answered gets that answer (201), never "already decided" (409).
        stored = await rt.idempotency.lookup(conn, scope, idempotency_key, digest)
        if stored is not None:
            return JSONResponse(stored.body, status_code=stored.status)
        # The receipt lock first, the clock after: the selection's intake.closed counts this decision
        # exactly when it was made before the deadline (see intake.py).
        await intake.lock_intake(conn, tenant, edition)
        ed = await access.edition_of(rt, conn, tenant, edition)
        init = access.initiative_part(ed, None)
        part, council = access.selection_of(ed, init.id)
        _chair_or_secretariat(caller, council)
        now = rt.now()
        # the council's deadline in force: the official one, or a later one the secretariat granted it
        dl = part.deadline_instant(ed.tz)
        extended = await intake.extension_of(conn, tenant, edition, part.id, part.assignees.council or "")
        if extended is not None and extended > dl:
            dl = extended
        if now >= dl + part.grace_delta:
            from services.submissions.domain import deadline_label_en, deadline_label_vi

            raise Problem(
                409,
                f"The selection deadline has passed ({deadline_label_en(dl)}).",
                f"Đã quá hạn xét chọn ({deadline_label_vi(dl)}).",
                code="deadline_passed",
            )
        if await _decided(conn, tenant, edition, part.id):
            raise Problem(
                409, "The selection is already decided.", "Hội đồng đã quyết định xét chọn.", code="decided"
            )
        _, _, rows = await ranking_rows(rt, conn, tenant, edition)
        by_id = {r["submission_id"]: r for r in rows}
        errors = []
        chosen = list(dict.fromkeys(body.selected))
        if len(chosen) < part.minimum_selected:
            errors.append(
                field_error(
                    "selected",
                    f"Select at least {part.minimum_selected} initiative(s).",
                    f"Phải chọn ít nhất {part.minimum_selected} sáng kiến.",
                    "minimum_selected",
                )
            )
        for i, sid in enumerate(chosen):
            if sid not in by_id:
                errors.append(
                    field_error(
                        f"selected[{i}]",
                        "Not an initiative in review.",
                        "Không phải sáng kiến đang được xét.",
                        "not_in_review",
                    )
                )
            elif by_id[sid]["sheets"] == 0:
                errors.append(
                    field_error(
                        f"selected[{i}]", "Not scored yet.", "Sáng kiến chưa được chấm.", "not_scored"
                    )
                )
        if errors:
            raise Problem(
                422,
                "Invalid selection.",
                "Quyết định xét chọn không hợp lệ.",
                code="validation",
                errors=errors,
            )
        s = models.selections
        t = models.submissions
        for r in rows:
            sid = r["submission_id"]
            outcome = "selected" if sid in chosen else "not_selected"
            await conn.execute(
                s.insert().values(
                    tenant=tenant,
                    edition=edition,
                    part=part.id,
                    submission_id=sid,
                    outcome=outcome,
                    score=r["score"],
                    rank=r["rank"],
                    notes=body.notes.get(sid) or (body.decision_notes if outcome == "selected" else None),
                    decided_by=caller.person_id,
                    decided_at=now,
                )
            )
            if outcome != "selected":
                continue
            full = (await conn.execute(sa.select(t.c.body).where(t.c.id == sid))).scalar_one()
            await rt.outbox.emit(
                conn,
                "initiative.selected",
                {
                    "submission_id": sid,
                    "part": part.id,
                    "initiative_part": init.id,
                    "council_id": part.assignees.council,
                    "unit_id": r["unit_id"],
                    "authors": [
                        {"person_id": a.get("person_id"), "name": a["name"], "share": a["share"]}
                        for a in domain.counted_authors(full["authors"])
                    ],
                    "score": r["score"],
                    "rank": r["rank"],
                    "at": now.astimezone(VN),
                    "destination": part.destination,
                },
                tenant=tenant,
                edition=edition,
                subject=sid,
                time=now,
                event_id=deterministic_id("initiative.selected", tenant, edition, part.id, sid),
            )
        answer = await _outcomes_in(conn, tenant, edition)
        await rt.idempotency.remember(conn, scope, idempotency_key, digest, 201, answer, now)
    rt.outbox.committed()
    return answer


async def _outcomes(rt: Runtime, tenant: str, edition: str) -> dict[str, Any]:
    async with rt.engine.connect() as conn:
        return await _outcomes_in(conn, tenant, edition)


async def _outcomes_in(conn: AsyncConnection, tenant: str, edition: str) -> dict[str, Any]:
    s = models.selections
    rows = (
        (
            await conn.execute(
                sa.select(s)
                .where(s.c.tenant == tenant, s.c.edition == edition)
                .order_by(s.c.rank, s.c.submission_id)
            )
        )
        .mappings()
        .all()
    )
    return {
        "decided": bool(rows),
        "outcomes": [
            {
                "submission_id": r["submission_id"],
                "outcome": r["outcome"],
                "score": r["score"],
                "rank": r["rank"],
                "notes": r["notes"],
                "decided_by": r["decided_by"],
                "decided_at": r["decided_at"].astimezone(VN).isoformat(),
            }
            for r in rows
        ],
    }


@router.get("/selection", summary="The council's decision: selected / not selected, with notes")
async def get_selection(tenant: str, edition: str, rt: RuntimeDep, caller: CallerDep) -> dict[str, Any]:
    require_person(caller)
    return await _outcomes(rt, tenant, edition)
