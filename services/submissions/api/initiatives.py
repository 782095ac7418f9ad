"""Initiatives' HTTP edge (thin): parse → authorise what needs no database → one use case
(``usecases/initiatives.py``, in one unit of work: state, events and the idempotent answer together) or one of
its queries → the answer. An upload reads its body here, within the part's limit, between the use case's steps."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from services.submissions import domain
from services.submissions.usecases import access, initiatives
from shared.errors import DomainError, Refusal
from shared.guard import body_limit
from shared.privacy import no_store
from shared.service import CallerDep, RuntimeDep, require_person
from shared.text import LongText
from shared.uow import Done, Idempotent, run

router = APIRouter(prefix="/tenants/{tenant}/editions/{edition}", tags=["initiatives"])


class InitiativeCreate(domain.InitiativeContent):
    submit: bool = Field(default=False, description="submit at once (otherwise a draft)")


class Withdrawal(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: LongText | None = Field(default=None, max_length=2000)


def _created(done: Done[Any]) -> JSONResponse:
    """201 with the answer; a retry of an answered request (same Idempotency-Key, same body): that answer."""
    if done.replayed is not None:
        return JSONResponse(done.replayed.body, status_code=done.replayed.status)
    return JSONResponse(done.value, status_code=201)


@router.post(
    "/initiatives",
    status_code=201,
    summary="Create the unit's initiative (sáng kiến) as a draft, or submit it at once (submit=true)",
    responses={
        409: {"description": "the unit already has one (revise it), or intake closed"},
        422: {"description": "invalid (e.g. contribution shares not summing to 100)"},
    },
)
async def create_initiative(
    tenant: str,
    edition: str,
    body: InitiativeCreate,
    rt: RuntimeDep,
    caller: CallerDep,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> JSONResponse:
    person = require_person(caller)
    key = Idempotent(
        f"{tenant}|{person.id}|initiatives|{edition}", idempotency_key, body.model_dump(mode="json"), 201
    )
    cmd = initiatives.Create(tenant, edition, caller, person, body, body.submit)
    return _created(await run(rt, initiatives.create, cmd, idempotent=key))


@router.put(
    "/initiatives/{submission_id}",
    summary="Revise an initiative before the deadline in force (a submitted one: revision+1, same receipt)",
)
async def revise_initiative(
    tenant: str,
    edition: str,
    submission_id: str,
    content: domain.InitiativeContent,
    rt: RuntimeDep,
    caller: CallerDep,
) -> dict[str, Any]:
    cmd = initiatives.Revise(tenant, edition, submission_id, caller, content)
    return (await run(rt, initiatives.revise, cmd)).unwrap()


@router.post("/initiatives/{submission_id}/submission", summary="Submit a draft: receipt number and time")
async def submit_initiative(
    tenant: str, edition: str, submission_id: str, rt: RuntimeDep, caller: CallerDep
) -> dict[str, Any]:
    cmd = initiatives.Submit(tenant, edition, submission_id, caller)
    return (await run(rt, initiatives.submit, cmd)).unwrap()


@router.post(
    "/initiatives/{submission_id}/withdrawal", summary="Withdraw an initiative before the deadline in force"
)
async def withdraw_initiative(
    tenant: str,
    edition: str,
    submission_id: str,
    rt: RuntimeDep,
    caller: CallerDep,
    withdrawal: Withdrawal | None = None,
) -> dict[str, Any]:
    reason = withdrawal.reason if withdrawal else None
    cmd = initiatives.Withdraw(tenant, edition, submission_id, caller, reason)
    return (await run(rt, initiatives.withdraw, cmd)).unwrap()


@router.post(
    "/initiatives/{submission_id}/authors/{person_id}/confirmation",
    summary="An invited co-author confirms being an author (only that person; before the deadline in force)",
    responses={
        403: {"description": "the caller is not this invited co-author"},
        404: {"description": "no such initiative, or the person is not listed on it"},
        409: {"description": "withdrawn or ruled ineligible, or intake closed"},
    },
)
async def confirm_authorship(
    tenant: str, edition: str, submission_id: str, person_id: str, rt: RuntimeDep, caller: CallerDep
) -> dict[str, Any]:
    """Until a listed co-author confirms, the initiative does not count them: not in its events (no reward),
    and their unit does not take council members off its review. A confirmation of a submitted initiative
    is a revision (``submission.revised`` with the authors now counted). A repeat changes nothing."""
    if caller.person_id != person_id:
        raise access.forbidden(
            "Only the invited co-author confirms their own authorship.",
            "Chỉ chính đồng tác giả được mời mới xác nhận được tư cách tác giả của mình.",
        )
    cmd = initiatives.ConfirmAuthorship(tenant, edition, submission_id, person_id)
    return (await run(rt, initiatives.confirm_authorship, cmd)).unwrap()


@router.get(
    "/initiatives/{submission_id}",
    summary="One initiative, if the caller may see it",
    dependencies=[Depends(no_store)],
)
async def get_initiative(
    tenant: str, edition: str, submission_id: str, rt: RuntimeDep, caller: CallerDep
) -> dict[str, Any]:
    return await initiatives.initiative(rt, caller, tenant, edition, submission_id)


@router.get("/initiatives", summary="Initiatives the caller may see", dependencies=[Depends(no_store)])
async def list_initiatives(
    tenant: str, edition: str, rt: RuntimeDep, caller: CallerDep
) -> list[dict[str, Any]]:
    return await initiatives.initiatives(rt, caller, tenant, edition)


# ---------------------------------------------------------------------------------------------- attachments


async def _read_limited(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it exceeds ``limit`` (never held in full beyond it)."""
    buf = bytearray()
    async for chunk in request.stream():
        buf += chunk
        if len(buf) > limit:
            raise DomainError(
                Refusal.TOO_LARGE,
                f"The file is over the limit of {limit} bytes.",
                f"Tệp vượt giới hạn dung lượng {limit} byte.",
                code="too_large",
            )
    return bytes(buf)


@router.post(
    "/initiatives/{submission_id}/attachments",
    status_code=201,
    summary="Attach a file (raw body; the type is decided from the bytes; a mismatching extension is corrected)",
    responses={
        413: {"description": "over the edition's limit per file, files per submission or total size"},
        415: {"description": "type not accepted, or not a well-formed file of its type"},
        422: {"description": "empty file, or a file name with a control character or a path separator"},
    },
    openapi_extra={
        "requestBody": {"required": True, "content": {"application/octet-stream": {"schema": {}}}}
    },
)
@body_limit("upload")  # the ceiling; the edition's own limit is enforced while reading, below
async def upload_attachment(
    tenant: str,
    edition: str,
    submission_id: str,
    request: Request,
    rt: RuntimeDep,
    caller: CallerDep,
    filename: Annotated[
        str, Query(min_length=1, max_length=255, json_schema_extra={"pattern": domain.FILENAME_PATTERN})
    ],
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> JSONResponse:
    domain.check_filename(filename)  # 422 before a byte of the body is read
    scope = f"{tenant}|{caller.person_id}|attachments|{edition}|{submission_id}"
    quota = await initiatives.upload_quota(rt, caller, tenant, edition, submission_id)
    data = await _read_limited(request, quota.rule.max_bytes)
    upload = initiatives.Upload(tenant, edition, submission_id, caller, filename, data)
    key = Idempotent(scope, idempotency_key, initiatives.upload_request(filename, data), 201)
    staged = await initiatives.stage_upload(rt, upload, quota, key)
    if staged.replayed is not None:  # a retry: the same attachment, not a second copy
        return _created(staged)
    # a concurrent retry that won the race is answered by run's look-up
    return _created(await run(rt, initiatives.attach, staged.unwrap(), idempotent=key))


@router.get("/initiatives/{submission_id}/attachments/{attachment_id}", summary="Download an attachment")
async def download_attachment(
    tenant: str, edition: str, submission_id: str, attachment_id: str, rt: RuntimeDep, caller: CallerDep
) -> Response:
    att, data = await initiatives.attachment_file(rt, caller, tenant, edition, submission_id, attachment_id)
    return Response(
        data,
        media_type=domain.MEDIA_TYPES[att["file_type"]],
        headers={
            "Content-Disposition": f"attachment; filename*=UTF-8''{quote(att['filename'])}",
            "X-Content-SHA256": att["sha256"],
        },
    )


@router.delete("/initiatives/{submission_id}/attachments/{attachment_id}", summary="Remove an attachment")
async def delete_attachment(
    tenant: str, edition: str, submission_id: str, attachment_id: str, rt: RuntimeDep, caller: CallerDep
) -> Response:
    cmd = initiatives.RemoveAttachment(tenant, edition, submission_id, attachment_id, caller)
    await run(rt, initiatives.remove_attachment, cmd)
    return Response(status_code=204)
