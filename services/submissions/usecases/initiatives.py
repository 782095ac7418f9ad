"""Initiatives (sáng kiến): draft → submitted, revisions and withdrawal until the deadline in force, co-authors'
consent, attachments in the object store — as use cases and queries.

Each command is a small frozen dataclass (what is asked, and by whom); each use case runs inside one unit of
work (``shared/uow.py``: state, events and the idempotent answer commit together), takes the edition's receipt
lock before it reads the clock (``usecases/intake.py``) and refuses with a ``DomainError``. An upload is three
steps, as reliability rule 5 wants (``usecases/objects.py``): ``upload_quota`` (a query, before a byte of the
body is read), ``stage_upload`` (the bytes stored before any row points to them) and the use case ``attach``.
The routers are ``services/submissions/api/initiatives.py``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from services.submissions import domain, models
from services.submissions.usecases import access, intake, objects
from shared.clock import VN
from shared.documents import Attachments, Edition, InitiativePart, Person, format_datetime_vn
from shared.errors import DomainError, Refusal, field_error
from shared.events.envelope import new_event_id
from shared.privacy import Viewer, person_view
from shared.service import Caller, Runtime
from shared.uow import Done, Idempotent, UnitOfWork

Uow = UnitOfWork[Runtime]


def no_attachment() -> DomainError:
    return DomainError(
        Refusal.NOT_FOUND, "No such attachment.", "Không tìm thấy tệp đính kèm.", code="not_found"
    )


# ---------------------------------------------------------------------------------------------- answers


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


# ---------------------------------------------------------------------------------------------- rules on the database


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
        raise DomainError(
            Refusal.INVALID,
            "The initiative is invalid.",
            "Sáng kiến không hợp lệ.",
            code="validation",
            errors=errors,
        )
    return out


async def _unit_for(
    rt: Runtime,
    conn: AsyncConnection,
    caller: Caller,
    person: Person,
    tenant: str,
    part: InitiativePart,
    unit_id: str | None,
    now: Any,
) -> str:
    """The unit an initiative is for: the caller's (a unit head), or any assigned unit (the secretariat)."""
    assert rt.copies is not None
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
        raise DomainError(
            Refusal.INVALID,
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


async def _open_for(uow: Uow, ed: Edition, part: InitiativePart, unit_id: str) -> Any:
    """Lock intake, read the time of record, refuse after the unit's deadline in force; return now."""
    await intake.lock_intake(uow.conn, ed.tenant, ed.edition)
    now = uow.now()
    extended = await intake.extension_of(uow.conn, ed.tenant, ed.edition, part.id, unit_id)
    domain.check_intake_open(ed, part, now, extended)
    return now


def _event_authors(body: dict[str, Any]) -> list[dict[str, Any]]:
    """Only the counted authors travel: a co-author who has not confirmed earns nothing anywhere."""
    return [
        {"person_id": a.get("person_id"), "name": a["name"], "share": a["share"]}
        for a in domain.counted_authors(body["authors"])
    ]


async def _emit_received(uow: Uow, row: dict[str, Any], person: Any, now: Any) -> None:
    await uow.emit(
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


async def _store_body(uow: Uow, row: Any, body: dict[str, Any], now: Any) -> dict[str, Any]:
    """Store an initiative's new ``body``: a submitted one gets a new revision and ``submission.revised``, a
    draft only the body. Returns the public view."""
    t = models.submissions
    revision = row["revision"] + (1 if row["status"] == "submitted" else 0)
    await uow.conn.execute(sa.update(t).where(t.c.id == row["id"]).values(body=body, revision=revision))
    if row["status"] == "submitted":
        await _emit_revised(uow, row, body, revision, now)
    return public({**row, "body": body, "revision": revision}, await _attachments(uow.conn, row["id"]))


async def _emit_revised(uow: Uow, row: Any, body: dict[str, Any], revision: int, now: Any) -> None:
    await uow.emit(
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


# ---------------------------------------------------------------------------------------------- use cases


@dataclass(frozen=True)
class Create:
    """The unit's initiative, as a draft or submitted at once (``submit``); one per unit and part."""

    tenant: str
    edition: str
    caller: Caller
    person: Person
    content: domain.InitiativeContent  # the request's, with its part and unit
    submit: bool


async def create(uow: Uow, cmd: Create) -> dict[str, Any]:
    rt, conn = uow.rt, uow.conn
    tenant, edition, person, body = cmd.tenant, cmd.edition, cmd.person, cmd.content
    t = models.submissions
    ed = await access.edition_of(rt, conn, tenant, edition)
    part = access.initiative_part(ed, body.part)
    unit_id = await _unit_for(rt, conn, cmd.caller, person, tenant, part, body.unit_id, uow.now())
    n = await rt.outbox.next_sequence(conn, intake.receipt_counter(tenant, edition))  # the intake lock
    now = uow.now()
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
        raise DomainError(
            Refusal.CONFLICT,
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
        "receipt_number": domain.initiative_receipt_number(edition, n) if cmd.submit else None,
        "received_at": now if cmd.submit else None,
        "status": "submitted" if cmd.submit else "draft",
        "revision": 1,
        "body": {**content, "authors": authors, "unit_name": unit.name if unit else None},
    }
    await conn.execute(t.insert().values(**row))
    if cmd.submit:
        await _emit_received(uow, row, person, now)
    return public(row, [])


@dataclass(frozen=True)
class Revise:
    """A new content before the deadline in force (a submitted initiative: revision+1, same receipt)."""

    tenant: str
    edition: str
    submission_id: str
    caller: Caller
    content: domain.InitiativeContent


async def revise(uow: Uow, cmd: Revise) -> dict[str, Any]:
    row, ed, part = await _editable(uow.rt, uow.conn, cmd.caller, cmd.tenant, cmd.edition, cmd.submission_id)
    now = await _open_for(uow, ed, part, row["unit_id"])
    authors = domain.invite_authors(
        await _snapshot_authors(uow.rt, uow.conn, cmd.tenant, cmd.content, now),
        row["author_id"],
        row["body"].get("authors"),
    )
    body = {
        **cmd.content.model_dump(mode="json", exclude={"part", "unit_id", "authors"}),
        "authors": authors,
        "unit_name": row["body"].get("unit_name"),
    }
    if domain.same_content(row["body"], body):  # a retried PUT: no new revision, no event
        return public(row, await _attachments(uow.conn, cmd.submission_id))
    return await _store_body(uow, row, body, now)


@dataclass(frozen=True)
class Submit:
    """Submit a draft: its receipt number and time of record."""

    tenant: str
    edition: str
    submission_id: str
    caller: Caller


async def submit(uow: Uow, cmd: Submit) -> dict[str, Any]:
    rt, conn = uow.rt, uow.conn
    tenant, edition, submission_id = cmd.tenant, cmd.edition, cmd.submission_id
    t = models.submissions
    row, ed, part = await _editable(rt, conn, cmd.caller, tenant, edition, submission_id)
    if row["status"] == "submitted":  # a retry: the same receipt
        return public(row, await _attachments(conn, submission_id))
    n = await rt.outbox.next_sequence(conn, intake.receipt_counter(tenant, edition))
    now = uow.now()
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
    await _emit_received(uow, new, await rt.copies.person(conn, tenant, row["author_id"], now), now)
    return public(new, await _attachments(conn, submission_id))


@dataclass(frozen=True)
class Withdraw:
    """Withdraw an initiative before the deadline in force (a draft, never received, is deleted)."""

    tenant: str
    edition: str
    submission_id: str
    caller: Caller
    reason: str | None


async def withdraw(uow: Uow, cmd: Withdraw) -> dict[str, Any]:
    conn = uow.conn
    tenant, edition, submission_id = cmd.tenant, cmd.edition, cmd.submission_id
    t = models.submissions
    row, ed, part = await _editable(uow.rt, conn, cmd.caller, tenant, edition, submission_id)
    now = await _open_for(uow, ed, part, row["unit_id"])
    if row["status"] == "draft":  # never received: nothing to tell anyone
        await conn.execute(
            sa.delete(models.attachments).where(models.attachments.c.submission_id == submission_id)
        )
        await conn.execute(sa.delete(t).where(t.c.id == submission_id))
        return {**public(row), "status": "deleted"}
    await conn.execute(sa.update(t).where(t.c.id == submission_id).values(status="withdrawn"))
    await intake.emit_withdrawn(uow, tenant, edition, submission_id, row, "initiative", now, cmd.reason)
    return public({**row, "status": "withdrawn"})


@dataclass(frozen=True)
class ConfirmAuthorship:
    """An invited co-author (``person_id``, the caller: the router checks it) confirms being an author."""

    tenant: str
    edition: str
    submission_id: str
    person_id: str


async def confirm_authorship(uow: Uow, cmd: ConfirmAuthorship) -> dict[str, Any]:
    """Until a listed co-author confirms, the initiative does not count them: not in its events (no reward),
    and their unit does not take council members off its review. A confirmation of a submitted initiative
    is a revision (``submission.revised`` with the authors now counted). A repeat changes nothing."""
    rt, conn = uow.rt, uow.conn
    row = await access.load(conn, cmd.tenant, cmd.edition, cmd.submission_id, lock=True)
    authors = list(row["body"].get("authors", []))
    at = next((i for i, a in enumerate(authors) if a.get("person_id") == cmd.person_id), None)
    if row["kind"] != "initiative" or at is None:
        raise access.not_found()
    if authors[at].get("confirmed", True):
        return public(row, await _attachments(conn, cmd.submission_id))
    domain.check_changeable(row["status"], "Sáng kiến")
    ed = await access.edition_of(rt, conn, cmd.tenant, cmd.edition)
    part = access.initiative_part(ed, row["part"])
    now = await _open_for(uow, ed, part, row["unit_id"])
    authors[at] = {**authors[at], "confirmed": True, "confirmed_at": now.astimezone(VN).isoformat()}
    body = {**row["body"], "authors": authors}
    return await _store_body(uow, row, body, now)


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


@dataclass(frozen=True)
class Quota:
    """What a part takes (its attachment rule) and what the initiative already holds, before an upload."""

    rule: Attachments
    count: int
    total: int


async def upload_quota(rt: Runtime, caller: Caller, tenant: str, edition: str, submission_id: str) -> Quota:
    """Before a byte of an upload is read: may the caller change it, does its part take attachments, is there
    room left (409 / 413 otherwise)."""
    async with rt.engine.connect() as conn:
        _, _, part = await _editable(rt, conn, caller, tenant, edition, submission_id)
        count, total = await _attached(conn, submission_id)
    rule = part.attachments
    if rule is None:
        raise DomainError(
            Refusal.CONFLICT,
            "This part takes no attachments.",
            "Phần thi này không nhận tệp đính kèm.",
            code="no_attachments",
        )
    domain.check_attachment_quota(count, total, 0, rule.max_files, rule.total_limit)
    return Quota(rule, count, total)


@dataclass(frozen=True)
class Upload:
    """A file the caller sends (its bytes read by the router, within the part's ``max_bytes``)."""

    tenant: str
    edition: str
    submission_id: str
    caller: Caller
    filename: str
    data: bytes


@dataclass(frozen=True)
class Attach:
    """An upload whose bytes are in the object store (``stage_upload``): record the attachment row."""

    upload: Upload
    rule: Attachments
    digest: str
    kind: str
    name: str


def upload_request(filename: str, data: bytes) -> dict[str, Any]:
    """What an upload's ``Idempotency-Key`` is bound to: the name asked for and the bytes' hash."""
    return {"filename": filename, "sha256": objects.sha256(data)}


async def stage_upload(rt: Runtime, cmd: Upload, quota: Quota, idempotent: Idempotent) -> Done[Attach]:
    """Steps 1 and 2 of an upload (``usecases/objects.py``): the type decided from the bytes, then the bytes
    stored under their hash before any row points to them. A retry (the key already answered) stores nothing:
    its stored answer is ``replayed``."""
    rule = quota.rule
    domain.check_attachment_quota(quota.count, quota.total, len(cmd.data), rule.max_files, rule.total_limit)
    if idempotent.key:
        async with rt.engine.connect() as conn:
            stored = await rt.idempotency.lookup(conn, idempotent.scope, idempotent.key, idempotent.digest)
        if stored is not None:  # a retry: the same attachment, not a second copy
            return Done(replayed=stored)
    kind, name = domain.check_attachment(cmd.data, cmd.filename, rule.types, rule.max_bytes)
    store = await objects.store_of(rt)
    digest = await objects.begin_upload(
        rt.engine, store, cmd.data
    )  # the bytes are stored before the row commits
    return Done(Attach(cmd, rule, digest, kind, name))


async def attach(uow: Uow, cmd: Attach) -> dict[str, Any]:
    """Step 3: the attachment row (a submitted initiative: revision+1), under the initiative's row lock."""
    rt, conn, up = uow.rt, uow.conn, cmd.upload
    t, a = models.submissions, models.attachments
    rule, size = cmd.rule, len(up.data)
    row, ed, part = await _editable(rt, conn, up.caller, up.tenant, up.edition, up.submission_id)
    now = await _open_for(uow, ed, part, row["unit_id"])
    # again under the row lock: two uploads at once cannot both take the last place
    count, total = await _attached(conn, up.submission_id)
    domain.check_attachment_quota(count, total, size, rule.max_files, rule.total_limit)
    att = {
        "id": str(uuid.uuid4()),
        "tenant": up.tenant,
        "submission_id": up.submission_id,
        "sha256": cmd.digest,
        "filename": cmd.name,
        "file_type": cmd.kind,
        "size": size,
        "uploaded_by": up.caller.person_id,
        "uploaded_at": now,
    }
    await conn.execute(a.insert().values(**att))
    await objects.finish_upload(conn, cmd.digest)
    if row["status"] == "submitted":
        revision = row["revision"] + 1
        await conn.execute(sa.update(t).where(t.c.id == up.submission_id).values(revision=revision))
        await _emit_revised(uow, row, row["body"], revision, now)
    return {
        "attachment_id": att["id"],
        "filename": cmd.name,
        "file_type": cmd.kind,
        "media_type": domain.MEDIA_TYPES[cmd.kind],
        "size": size,
        "sha256": cmd.digest,
        "renamed": cmd.name != up.filename,
    }


@dataclass(frozen=True)
class RemoveAttachment:
    """Remove an attachment before the deadline in force (a submitted initiative: revision+1)."""

    tenant: str
    edition: str
    submission_id: str
    attachment_id: str
    caller: Caller


async def remove_attachment(uow: Uow, cmd: RemoveAttachment) -> None:
    conn = uow.conn
    t, a = models.submissions, models.attachments
    row, ed, part = await _editable(uow.rt, conn, cmd.caller, cmd.tenant, cmd.edition, cmd.submission_id)
    now = await _open_for(uow, ed, part, row["unit_id"])
    res = await conn.execute(
        sa.delete(a).where(a.c.id == cmd.attachment_id, a.c.submission_id == cmd.submission_id)
    )
    if not res.rowcount:
        raise no_attachment()
    if row["status"] == "submitted":
        revision = row["revision"] + 1
        await conn.execute(sa.update(t).where(t.c.id == cmd.submission_id).values(revision=revision))
        await _emit_revised(uow, row, row["body"], revision, now)


# ---------------------------------------------------------------------------------------------- queries


async def initiative(
    rt: Runtime, caller: Caller, tenant: str, edition: str, submission_id: str
) -> dict[str, Any]:
    """One initiative with its attachments, as the caller may read it (404 if they may not see it)."""
    async with rt.engine.connect() as conn:
        row = await access.load(conn, tenant, edition, submission_id)
        if row["kind"] != "initiative" or not await access.may_see(rt, conn, caller, row):
            raise access.not_found()
        return seen_by(caller, public(row, await _attachments(conn, submission_id)))


async def initiatives(rt: Runtime, caller: Caller, tenant: str, edition: str) -> list[dict[str, Any]]:
    """The initiatives the caller may see, as they may read them."""
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


async def attachment_file(
    rt: Runtime, caller: Caller, tenant: str, edition: str, submission_id: str, attachment_id: str
) -> tuple[Any, bytes]:
    """An attachment's row and its bytes, if the caller may see the initiative (404 otherwise)."""
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
        raise no_attachment()
    store = await objects.store_of(rt)
    return att, await objects.read(store, att["sha256"])
