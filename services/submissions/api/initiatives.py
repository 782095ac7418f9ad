"""Initiatives (sáng kiến): draft → submitted, revisions and withdrawal until the deadline in force,
attachments in the object store. Thin: parse → authorise → domain rules → state + event in one transaction."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncConnection

from services.submissions import domain, models
from services.submissions.usecases import access, intake, objects
from shared.clock import VN
from shared.documents import Edition, InitiativePart, format_datetime_vn
from shared.events.envelope import new_event_id
from shared.guard import body_limit
from shared.idempotency import request_hash
from shared.privacy import Viewer, no_store, person_view
from shared.problems import Problem, field_error
from shared.service import Caller, CallerDep, Runtime, RuntimeDep, require_person
from shared.text import LongText

router = APIRouter(prefix="/tenants/{tenant}/editions/{edition}", tags=["initiatives"])


class InitiativeCreate(domain.InitiativeContent):
    submit: bool = Field(default=False, description="submit at once (otherwise a draft)")


class Withdrawal(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: LongText | None = Field(default=None, max_length=2000)


def public(row: Any, attachments: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    received = row["received_at"]
    out = {
        "submission_id": row["id"],
        "tenant": row["tenant"],
        "edition": row["edition"],
        "part": row["part"],
        "kind": row["kind"],
        "unit_id": row["unit_id"],
        "created_by": row["author_id"],
        "status": row["status"],
        "revision": row["revision"],
        "receipt_number": row["receipt_number"],
        "received_at": received.astimezone(VN).isoformat() if received else None,
        "received_at_display": format_datetime_vn(received) if received else None,
        **{k: v for k, v in row["body"].items() if k not in ("part",)},
    }
    if attachments is not None:
        out["attachments"] = attachments
    return out


def seen_by(caller: Caller, answer: dict[str, Any]) -> dict[str, Any]:
    """``answer`` (``public``) as the caller may read it (``shared.privacy``): an author's date of birth and
    qualification only to that author and the secretariat — and an outside co-author's to the submitter who
    typed them."""
    viewer = Viewer.of(caller.person_id, caller.person)
    typed_them = caller.person_id == answer["created_by"]
    authors = [
        a if a.get("person_id") is None and typed_them else person_view(viewer, a)
        for a in answer.get("authors", [])
    ]
    return {**answer, "authors": authors} if "authors" in answer else answer


async def _attachments(conn: AsyncConnection, submission_id: str) -> list[dict[str, Any]]:
    a = models.attachments
    rows = (
        await conn.execute(sa.select(a).where(a.c.submission_id == submission_id).order_by(a.c.uploaded_at))
    ).mappings()
    return [
        {
            "attachment_id": r["id"],
            "filename": r["filename"],
            "file_type": r["file_type"],
            "size": r["size"],
            "sha256": r["sha256"],
            "uploaded_at": r["uploaded_at"].astimezone(VN).isoformat(),
        }
        for r in rows
    ]


async def _snapshot_authors(
    rt: Runtime, conn: AsyncConnection, tenant: str, content: domain.InitiativeContent, now: Any
) -> list[dict[str, Any]]:
    """Directory authors as they are now (name, date of birth, unit, title, qualification); outside ones as given."""
    assert rt.copies is not None
    domain.check_authors(content.authors)
    out, errors = [], []
    for i, a in enumerate(content.authors):
        if a.person_id is None:
            out.append({**a.model_dump(mode="json"), "outside": True, "unit_id": None})
            continue
        p = await rt.copies.person(conn, tenant, a.person_id, now)
        if p is None:
            errors.append(
                field_error(
                    f"authors[{i}].person_id",
                    f"{a.person_id} is not in the directory.",
                    f"{a.person_id} không có trong danh bạ.",
                    "unknown_person",
                )
            )
            continue
        unit = await rt.copies.unit(conn, tenant, p.unit, now)
        born = a.date_of_birth or p.date_of_birth  # given in the form: no directory copy keeps it (v2 facts)
        out.append(
            {
                "person_id": p.id,
                "name": p.name,
                "date_of_birth": born.isoformat() if born else None,
                "unit_id": p.unit,
                "unit_name": unit.name if unit else None,
                "workplace": unit.name if unit else None,
                "title": p.title,
                "qualification": a.qualification or p.qualification,
                "share": a.share,
                "outside": False,
            }
        )
    if errors:
        raise Problem(
            422, "The initiative is invalid.", "Sáng kiến không hợp lệ.", code="validation", errors=errors
        )
    return out


async def _unit_for(
    rt: Runtime,
    conn: AsyncConnection,
    caller: Caller,
    tenant: str,
    part: InitiativePart,
    unit_id: str | None,
    now: Any,
) -> str:
    """The unit an initiative is for: the caller's (a unit head), or any assigned unit (the secretariat)."""
    assert rt.copies is not None
    person = require_person(caller)
    if unit_id is None or unit_id == person.unit:
        if not (person.has_role("unit_head") or access.is_overseer(caller)):
            raise access.forbidden(
                "Only the unit head (or the secretariat) submits the unit's initiative.",
                "Chỉ Thủ trưởng đơn vị (hoặc Thường trực) nộp sáng kiến của đơn vị.",
            )
        unit_id = person.unit
    elif not caller.has_role("secretariat"):
        raise access.forbidden(
            "Only the secretariat submits for another unit.", "Chỉ Thường trực được nộp thay đơn vị khác."
        )
    unit = await rt.copies.unit(conn, tenant, unit_id, now)
    selector = part.assignees.units
    if unit is None or (selector is not None and not selector.matches(unit)):
        raise Problem(
            422,
            "This unit is not assigned the initiative part (a branch submits through its parent unit).",
            "Đơn vị này không được giao phần thi sáng kiến (chi nhánh gửi sáng kiến qua đơn vị cấp trên).",
            code="unit_not_assigned",
            errors=[
                field_error(
                    "unit_id", "Not an assigned unit.", "Không phải đơn vị được giao.", "unit_not_assigned"
                )
            ],
        )
    return unit_id


def _may_edit(caller: Caller, row: Any) -> bool:
    if caller.has_role("secretariat") or caller.person_id == row["author_id"]:
        return True
    return caller.has_role("unit_head") and caller.person is not None and caller.person.unit == row["unit_id"]


async def _open_for(
    rt: Runtime, conn: AsyncConnection, ed: Edition, part: InitiativePart, unit_id: str
) -> Any:
    """Lock intake, read the time of record, refuse after the unit's deadline in force; return now."""
    await intake.lock_intake(conn, ed.tenant, ed.edition)
    now = rt.now()
    extended = await intake.extension_of(conn, ed.tenant, ed.edition, part.id, unit_id)
    domain.check_intake_open(ed, part, now, extended)
    return now


def _event_authors(body: dict[str, Any]) -> list[dict[str, Any]]:
    """Only the counted authors travel: a co-author who has not confirmed earns nothing anywhere."""
    return [
        {"person_id": a.get("person_id"), "name": a["name"], "share": a["share"]}
        for a in domain.counted_authors(body["authors"])
    ]


async def _emit_received(
    rt: Runtime, conn: AsyncConnection, row: dict[str, Any], person: Any, now: Any
) -> None:
    await rt.outbox.emit(
        conn,
        "submission.received",
        {
            "submission_id": row["id"],
            "kind": "initiative",
            "part": row["part"],
            "receipt_number": row["receipt_number"],
            "received_at": now.astimezone(VN),
            "author_id": row["author_id"],
            "unit_id": row["unit_id"],
            "union_ids": person.unions if person else [],
            "authors": _event_authors(row["body"]),
            "title": row["body"]["title"],
            "revision": row["revision"],
        },
        tenant=row["tenant"],
        edition=row["edition"],
        subject=row["id"],
        time=now,
    )


async def _store_body(
    rt: Runtime, conn: AsyncConnection, row: Any, body: dict[str, Any], now: Any
) -> dict[str, Any]:
    """Store an initiative's new ``body``: a submitted one gets a new revision and ``submission.revised``, a
    draft only the body. Returns the public view."""
    t = models.submissions
    revision = row["revision"] + (1 if row["status"] == "submitted" else 0)
    await conn.execute(sa.update(t).where(t.c.id == row["id"]).values(body=body, revision=revision))
    if row["status"] == "submitted":
        await _emit_revised(rt, conn, row, body, revision, now)
    return public({**row, "body": body, "revision": revision}, await _attachments(conn, row["id"]))


async def _emit_revised(
    rt: Runtime, conn: AsyncConnection, row: Any, body: dict[str, Any], revision: int, now: Any
) -> None:
    await rt.outbox.emit(
        conn,
        "submission.revised",
        {
            "submission_id": row["id"],
            "kind": "initiative",
            "part": row["part"],
            "author_id": row["author_id"],
            "unit_id": row["unit_id"],
            "at": now.astimezone(VN),
            "revision": revision,
            "authors": _event_authors(body),
            "title": body["title"],
        },
        tenant=row["tenant"],
        edition=row["edition"],
        subject=row["id"],
        time=now,
    )


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
    scope = f"{tenant}|{person.id}|initiatives|{edition}"
    digest = request_hash(body.model_dump(mode="json"))
    t = models.submissions
    async with rt.engine.begin() as conn:
        stored = await rt.idempotency.lookup(conn, scope, idempotency_key, digest)
        if stored is not None:
            return JSONResponse(stored.body, status_code=stored.status)
        ed = await access.edition_of(rt, conn, tenant, edition)
        part = access.initiative_part(ed, body.part)
        unit_id = await _unit_for(rt, conn, caller, tenant, part, body.unit_id, rt.now())
        n = await rt.outbox.next_sequence(conn, intake.receipt_counter(tenant, edition))  # the intake lock
        now = rt.now()
        extended = await intake.extension_of(conn, tenant, edition, part.id, unit_id)
        domain.check_intake_open(ed, part, now, extended)
        authors = domain.invite_authors(await _snapshot_authors(rt, conn, tenant, body, now), person.id)
        existing = (
            await conn.execute(
                sa.select(t.c.id, t.c.receipt_number, t.c.status).where(
                    t.c.tenant == tenant,
                    t.c.edition == edition,
                    t.c.part == part.id,
                    t.c.kind == "initiative",
                    t.c.unit_id == unit_id,
                    t.c.status != "withdrawn",  # a withdrawn initiative leaves room for a new one
                )
            )
        ).first()
        if existing is not None:
            ref = existing.receipt_number or existing.id
            raise Problem(
                409,
                f"This unit already has an initiative in this edition ({ref}); revise it instead of adding another.",
                f"Đơn vị đã có sáng kiến trong kỳ này ({ref}); mỗi đơn vị một sáng kiến — hãy chỉnh sửa sáng kiến đã có.",
                code="one_per_unit",
                extra={"existing_submission_id": existing.id},
            )
        content = body.model_dump(mode="json", exclude={"submit", "part", "unit_id", "authors"})
        unit = await rt.copies.unit(conn, tenant, unit_id, now) if rt.copies else None
        row = {
            "id": new_event_id(),
            "tenant": tenant,
            "edition": edition,
            "part": part.id,
            "kind": "initiative",
            "author_id": person.id,
            "unit_id": unit_id,
            "receipt_number": domain.initiative_receipt_number(edition, n) if body.submit else None,
            "received_at": now if body.submit else None,
            "status": "submitted" if body.submit else "draft",
            "revision": 1,
            "body": {**content, "authors": authors, "unit_name": unit.name if unit else None},
        }
        await conn.execute(t.insert().values(**row))
        if body.submit:
            await _emit_received(rt, conn, row, person, now)
        answer = public(row, [])
        await rt.idempotency.remember(conn, scope, idempotency_key, digest, 201, answer, now)
    rt.outbox.committed()
    return JSONResponse(answer, status_code=201)


async def _editable(
    rt: Runtime, conn: AsyncConnection, caller: Caller, tenant: str, edition: str, sid: str
) -> tuple[Any, Edition, InitiativePart]:
    row = await access.load(conn, tenant, edition, sid, lock=True)
    if row["kind"] != "initiative" or not await access.may_see(rt, conn, caller, row):
        raise access.not_found()
    if not _may_edit(caller, row):
        raise access.forbidden(
            "Only the unit head, the submitter or the secretariat changes an initiative.",
            "Chỉ Thủ trưởng đơn vị, người nộp hoặc Thường trực được thay đổi sáng kiến.",
        )
    domain.check_changeable(row["status"], "Sáng kiến")
    ed = await access.edition_of(rt, conn, tenant, edition)
    return row, ed, access.initiative_part(ed, row["part"])


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
    async with rt.engine.begin() as conn:
        row, ed, part = await _editable(rt, conn, caller, tenant, edition, submission_id)
        now = await _open_for(rt, conn, ed, part, row["unit_id"])
        authors = domain.invite_authors(
            await _snapshot_authors(rt, conn, tenant, content, now),
            row["author_id"],
            row["body"].get("authors"),
        )
        body = {
            **content.model_dump(mode="json", exclude={"part", "unit_id", "authors"}),
            "authors": authors,
            "unit_name": row["body"].get("unit_name"),
        }
        if domain.same_content(row["body"], body):  # a retried PUT: no new revision, no event
            return public(row, await _attachments(conn, submission_id))
        out = await _store_body(rt, conn, row, body, now)
    rt.outbox.committed()
    return out


@router.post("/initiatives/{submission_id}/submission", summary="Submit a draft: receipt number and time")
async def submit_initiative(
    tenant: str, edition: str, submission_id: str, rt: RuntimeDep, caller: CallerDep
) -> dict[str, Any]:
    t = models.submissions
    async with rt.engine.begin() as conn:
        row, ed, part = await _editable(rt, conn, caller, tenant, edition, submission_id)
        if row["status"] == "submitted":  # a retry: the same receipt
            return public(row, await _attachments(conn, submission_id))
        n = await rt.outbox.next_sequence(conn, intake.receipt_counter(tenant, edition))
        now = rt.now()
        extended = await intake.extension_of(conn, tenant, edition, part.id, row["unit_id"])
        domain.check_intake_open(ed, part, now, extended)
        values = {
            "status": "submitted",
            "receipt_number": domain.initiative_receipt_number(edition, n),
            "received_at": now,
        }
        await conn.execute(sa.update(t).where(t.c.id == submission_id).values(**values))
        new = {**row, **values}
        assert rt.copies is not None
        await _emit_received(rt, conn, new, await rt.copies.person(conn, tenant, row["author_id"], now), now)
        out = public(new, await _attachments(conn, submission_id))
    rt.outbox.committed()
    return out


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
    t = models.submissions
    async with rt.engine.begin() as conn:
        row, ed, part = await _editable(rt, conn, caller, tenant, edition, submission_id)
        now = await _open_for(rt, conn, ed, part, row["unit_id"])
        if row["status"] == "draft":  # never received: nothing to tell anyone
            await conn.execute(
                sa.delete(models.attachments).where(models.attachments.c.submission_id == submission_id)
            )
            await conn.execute(sa.delete(t).where(t.c.id == submission_id))
            return {**public(row), "status": "deleted"}
        await conn.execute(sa.update(t).where(t.c.id == submission_id).values(status="withdrawn"))
        await rt.outbox.emit(
            conn,
            "submission.withdrawn",
            {
                "submission_id": submission_id,
                "kind": "initiative",
                "part": row["part"],
                "author_id": row["author_id"],
                "unit_id": row["unit_id"],
                "at": now.astimezone(VN),
                "reason": withdrawal.reason if withdrawal else None,
            },
            tenant=tenant,
            edition=edition,
            subject=submission_id,
            time=now,
        )
        out = public({**row, "status": "withdrawn"})
    rt.outbox.committed()
    return out


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
    async with rt.engine.begin() as conn:
        row = await access.load(conn, tenant, edition, submission_id, lock=True)
        authors = list(row["body"].get("authors", []))
        at = next((i for i, a in enumerate(authors) if a.get("person_id") == person_id), None)
        if row["kind"] != "initiative" or at is None:
            raise access.not_found()
        if authors[at].get("confirmed", True):
            return public(row, await _attachments(conn, submission_id))
        domain.check_changeable(row["status"], "Sáng kiến")
        ed = await access.edition_of(rt, conn, tenant, edition)
        part = access.initiative_part(ed, row["part"])
        now = await _open_for(rt, conn, ed, part, row["unit_id"])
        authors[at] = {**authors[at], "confirmed": True, "confirmed_at": now.astimezone(VN).isoformat()}
        body = {**row["body"], "authors": authors}
        out = await _store_body(rt, conn, row, body, now)
    rt.outbox.committed()
    return out


@router.get(
    "/initiatives/{submission_id}",
    summary="One initiative, if the caller may see it",
    dependencies=[Depends(no_store)],
)
async def get_initiative(
    tenant: str, edition: str, submission_id: str, rt: RuntimeDep, caller: CallerDep
) -> dict[str, Any]:
    async with rt.engine.connect() as conn:
        row = await access.load(conn, tenant, edition, submission_id)
        if row["kind"] != "initiative" or not await access.may_see(rt, conn, caller, row):
            raise access.not_found()
        return seen_by(caller, public(row, await _attachments(conn, submission_id)))


@router.get("/initiatives", summary="Initiatives the caller may see", dependencies=[Depends(no_store)])
async def list_initiatives(
    tenant: str, edition: str, rt: RuntimeDep, caller: CallerDep
) -> list[dict[str, Any]]:
    t = models.submissions
    async with rt.engine.connect() as conn:
        rows = (
            (
                await conn.execute(
                    sa.select(t)
                    .where(t.c.tenant == tenant, t.c.edition == edition, t.c.kind == "initiative")
                    .order_by(t.c.received_at, t.c.id)
                )
            )
            .mappings()
            .all()
        )
        return [seen_by(caller, public(r)) for r in rows if await access.may_see(rt, conn, caller, r)]


# ---------------------------------------------------------------------------------------------- attachments


async def _attached(conn: AsyncConnection, submission_id: str) -> tuple[int, int]:
    """(files, bytes) already attached to a submission."""
    a = models.attachments
    n, size = (
        await conn.execute(
            sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(a.c.size), 0)).where(
                a.c.submission_id == submission_id
            )
        )
    ).one()
    return int(n), int(size)


async def _read_limited(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it exceeds ``limit`` (never held in full beyond it)."""
    buf = bytearray()
    async for chunk in request.stream():
        buf += chunk
        if len(buf) > limit:
            raise Problem(
                413,
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
    async with rt.engine.connect() as conn:
        row, ed, part = await _editable(rt, conn, caller, tenant, edition, submission_id)
        count, total = await _attached(conn, submission_id)
    rule = part.attachments
    if rule is None:
        raise Problem(
            409,
            "This part takes no attachments.",
            "Phần thi này không nhận tệp đính kèm.",
            code="no_attachments",
        )
    domain.check_attachment_quota(count, total, 0, rule.max_files, rule.total_limit)
    data = await _read_limited(request, rule.max_bytes)
    domain.check_attachment_quota(count, total, len(data), rule.max_files, rule.total_limit)
    request_digest = request_hash({"filename": filename, "sha256": objects.sha256(data)})
    if idempotency_key:
        async with rt.engine.connect() as conn:
            stored = await rt.idempotency.lookup(conn, scope, idempotency_key, request_digest)
        if stored is not None:  # a retry: the same attachment, not a second copy
            return JSONResponse(stored.body, status_code=stored.status)
    kind, name = domain.check_attachment(data, filename, rule.types, rule.max_bytes)
    store = await objects.store_of(rt)
    digest = await objects.begin_upload(rt.engine, store, data)  # the bytes are stored before the row commits
    t, a = models.submissions, models.attachments
    async with rt.engine.begin() as conn:
        stored = await rt.idempotency.lookup(conn, scope, idempotency_key, request_digest)
        if stored is not None:  # a concurrent retry won the race
            return JSONResponse(stored.body, status_code=stored.status)
        row, ed, part = await _editable(rt, conn, caller, tenant, edition, submission_id)
        now = await _open_for(rt, conn, ed, part, row["unit_id"])
        # again under the row lock: two uploads at once cannot both take the last place
        count, total = await _attached(conn, submission_id)
        domain.check_attachment_quota(count, total, len(data), rule.max_files, rule.total_limit)
        att = {
            "id": str(uuid.uuid4()),
            "tenant": tenant,
            "submission_id": submission_id,
            "sha256": digest,
            "filename": name,
            "file_type": kind,
            "size": len(data),
            "uploaded_by": caller.person_id,
            "uploaded_at": now,
        }
        await conn.execute(a.insert().values(**att))
        await objects.finish_upload(conn, digest)
        if row["status"] == "submitted":
            revision = row["revision"] + 1
            await conn.execute(sa.update(t).where(t.c.id == submission_id).values(revision=revision))
            await _emit_revised(rt, conn, row, row["body"], revision, now)
        answer = {
            "attachment_id": att["id"],
            "filename": name,
            "file_type": kind,
            "media_type": domain.MEDIA_TYPES[kind],
            "size": len(data),
            "sha256": digest,
            "renamed": name != filename,
        }
        await rt.idempotency.remember(conn, scope, idempotency_key, request_digest, 201, answer, now)
    rt.outbox.committed()
    return JSONResponse(answer, status_code=201)


@router.get("/initiatives/{submission_id}/attachments/{attachment_id}", summary="Download an attachment")
async def download_attachment(
    tenant: str, edition: str, submission_id: str, attachment_id: str, rt: RuntimeDep, caller: CallerDep
) -> Response:
    a = models.attachments
    async with rt.engine.connect() as conn:
        row = await access.load(conn, tenant, edition, submission_id)
        if not await access.may_see(rt, conn, caller, row):
            raise access.not_found()
        att = (
            (
                await conn.execute(
                    sa.select(a).where(a.c.id == attachment_id, a.c.submission_id == submission_id)
                )
            )
            .mappings()
            .first()
        )
    if att is None:
        raise Problem(404, "No such attachment.", "Không tìm thấy tệp đính kèm.", code="not_found")
    store = await objects.store_of(rt)
    data = await objects.read(store, att["sha256"])
    from urllib.parse import quote

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
    t, a = models.submissions, models.attachments
    async with rt.engine.begin() as conn:
        row, ed, part = await _editable(rt, conn, caller, tenant, edition, submission_id)
        now = await _open_for(rt, conn, ed, part, row["unit_id"])
        res = await conn.execute(
            sa.delete(a).where(a.c.id == attachment_id, a.c.submission_id == submission_id)
        )
        if not res.rowcount:
            raise Problem(404, "No such attachment.", "Không tìm thấy tệp đính kèm.", code="not_found")
        if row["status"] == "submitted":
            revision = row["revision"] + 1
            await conn.execute(sa.update(t).where(t.c.id == submission_id).values(revision=revision))
            await _emit_revised(rt, conn, row, row["body"], revision, now)
    rt.outbox.committed()
    return Response(status_code=204)
