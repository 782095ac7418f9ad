"""The secretariat's eligibility rulings, the council's review (conflicts, reassignments, score sheets,
ranking, progress) and the selection: the HTTP edge. Thin: parse → authorise → one use case
(``usecases/review.py``, in one unit of work: state, events and the idempotent answer together) → the answer."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from services.submissions.usecases import access, review
from shared.service import Caller, CallerDep, RuntimeDep, require_person
from shared.text import LongText
from shared.uow import Done, Idempotent, run

router = APIRouter(prefix="/tenants/{tenant}/editions/{edition}", tags=["review"])

IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key")]


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


def _answer(done: Done[Any]) -> Any:
    """A retry of an answered request (same Idempotency-Key, same body) gets that answer, status included."""
    if done.replayed is not None:
        return JSONResponse(done.replayed.body, status_code=done.replayed.status)
    return done.value


def _json(body: BaseModel | None) -> Any:
    return body.model_dump(mode="json") if body is not None else None


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
    idempotency_key: IdempotencyKey = None,
) -> Any:
    _secretariat(caller)
    # a retry of a ruling already made gets its answer, not "not submitted"
    key = Idempotent(
        f"{tenant}|{caller.person_id}|rejection|{edition}|{submission_id}", idempotency_key, _json(body)
    )
    cmd = review.Reject(tenant, edition, submission_id, body.reason, caller.person_id)
    return _answer(await run(rt, review.reject, cmd, idempotent=key))


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
    idempotency_key: IdempotencyKey = None,
) -> Any:
    _secretariat(caller)
    key = Idempotent(
        f"{tenant}|{caller.person_id}|reinstatement|{edition}|{submission_id}", idempotency_key, _json(body)
    )
    cmd = review.Reinstate(tenant, edition, submission_id, body.reason if body else None, caller.person_id)
    return _answer(await run(rt, review.reinstate, cmd, idempotent=key))


# ---------------------------------------------------------------------------------------------- review


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
    idempotency_key: IdempotencyKey = None,
) -> Any:
    key = Idempotent(
        f"{tenant}|{caller.person_id}|conflicts|{edition}|{submission_id}", idempotency_key, _json(body), 201
    )
    cmd = review.DeclareConflict(
        tenant, edition, submission_id, caller.person_id, body.reason if body else None
    )
    return _answer(await run(rt, review.declare_conflict, cmd, idempotent=key))


@router.put(
    "/initiatives/{submission_id}/reviewers", summary="The chair reassigns reviewers (add / remove members)"
)
async def reassign(
    tenant: str, edition: str, submission_id: str, body: Reassignment, rt: RuntimeDep, caller: CallerDep
) -> dict[str, Any]:
    cmd = review.Reassign(tenant, edition, submission_id, caller, body.add, body.remove)
    return (await run(rt, review.reassign, cmd)).unwrap()


@router.get("/initiatives/{submission_id}/reviewers", summary="Reviewers of an initiative and who has scored")
async def list_reviewers(
    tenant: str, edition: str, submission_id: str, rt: RuntimeDep, caller: CallerDep
) -> dict[str, Any]:
    return await review.reviewers(rt, caller, tenant, edition, submission_id)


@router.put(
    "/initiatives/{submission_id}/score-sheet",
    summary="A council member's score sheet on the edition's rubric (phiếu chấm); a re-score is a new revision",
    responses={403: {"description": "own unit, conflict, or not assigned: nothing written"}},
)
async def score(
    tenant: str, edition: str, submission_id: str, body: ScoreSheetIn, rt: RuntimeDep, caller: CallerDep
) -> dict[str, Any]:
    member = require_person(caller).id
    cmd = review.Score(tenant, edition, submission_id, member, body.scores, body.comment)
    return (await run(rt, review.score, cmd)).unwrap()


@router.get(
    "/ranking", summary="Aggregates and ranking as the edition's rubric states (council, secretariat)"
)
async def ranking(tenant: str, edition: str, rt: RuntimeDep, caller: CallerDep) -> dict[str, Any]:
    return await review.ranking(rt, caller, tenant, edition)


@router.get("/review/progress", summary="Reviewers' progress: done / to do (a member: their own; chair: all)")
async def progress(
    tenant: str, edition: str, rt: RuntimeDep, caller: CallerDep, member: str | None = Query(default=None)
) -> dict[str, Any]:
    return await review.progress(rt, caller, tenant, edition, member)


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
    idempotency_key: IdempotencyKey = None,
) -> Any:
    # A retry of a decision already answered gets that answer (201), never "already decided" (409).
    key = Idempotent(f"{tenant}|{caller.person_id}|selection|{edition}", idempotency_key, _json(body), 201)
    cmd = review.Select(tenant, edition, caller, body.selected, dict(body.notes), body.decision_notes)
    return _answer(await run(rt, review.select, cmd, idempotent=key))


@router.get("/selection", summary="The council's decision: selected / not selected, with notes")
async def get_selection(tenant: str, edition: str, rt: RuntimeDep, caller: CallerDep) -> dict[str, Any]:
    require_person(caller)
    return await review.outcomes(rt, tenant, edition)
