"""Campaign's HTTP API for the secretariat's documents and for participation (thin: parse, authorise, call).

- the directory: import (YAML/JSON document or HR's CSV/XLSX list), export, units as of a date;
- editions: import (publishes the next version; or only validates, ``?dry_run=true``), export any version,
  list versions;
- participation per unit, per part and per union tree, as of any moment (by business time).

Who may do what: the secretariat manages directory and editions; the director sees everything; a unit head sees
their own unit (and its branches); a union secretary sees their union's members.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Annotated, Any

import anyio
import sqlalchemy as sa
import yaml
from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse

from services.campaign import domain, models
from services.campaign.domain.directory_io import DirectoryImportError
from services.campaign.usecases import documents as documents_io
from services.campaign.usecases.publishing import stored_directory
from shared.bounds import BusinessDate, Instant, Version, end_of_day
from shared.clock import VN
from shared.documents import Directory, Person, dump_yaml
from shared.guard import AsOfDate, body_limit
from shared.idempotency import request_hash
from shared.privacy import NO_STORE, Sight, Viewer, no_store, person_view
from shared.problems import Problem
from shared.service import Caller, CallerDep, RuntimeDep, require_person

router = APIRouter(prefix="/tenants/{tenant}", tags=["campaign: documents"])

_XLSX = ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",)
FORMATS = {"csv": "list.csv", "xlsx": "list.xlsx", "yaml": "doc.yaml", "json": "doc.json"}


def require_secretariat(caller: Caller) -> Person:
    person = require_person(caller)
    if not caller.has_role("secretariat", "admin"):
        raise Problem(
            403,
            "Only the secretariat (Department Office) manages the directory and editions.",
            "Chỉ bộ phận thường trực (Văn phòng Sở) được quản lý danh bạ và kỳ hội thi.",
            code="not_secretariat",
        )
    return person


def _invalid(exc: DirectoryImportError) -> Problem:
    return Problem(
        422,
        f"{len(exc.errors)} problem(s); nothing was written.",
        f"Có {len(exc.errors)} lỗi; chưa ghi gì.",
        code="invalid_document",
        errors=[
            {
                "field": e.field,
                "line": e.line or None,
                "code": "invalid",
                "message": e.message,
                "message_vi": e.message_vi,
            }
            for e in exc.errors
        ],
    )


def _format(request: Request, fmt: str | None) -> str:
    if fmt:
        if fmt not in FORMATS:
            raise Problem(
                415,
                f"Unknown format {fmt!r}: one of {', '.join(FORMATS)}.",
                f"Định dạng {fmt!r} không được hỗ trợ: chọn một trong {', '.join(FORMATS)}.",
                code="unsupported_format",
            )
        return FORMATS[fmt]
    ctype = request.headers.get("content-type", "").split(";")[0].strip()
    by_type = {
        "text/csv": "csv",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "xlsx",
        "application/yaml": "yaml",
        "application/x-yaml": "yaml",
        "text/yaml": "yaml",
        "application/json": "json",
    }
    if ctype not in by_type:
        raise Problem(
            415,
            "Send CSV, XLSX, YAML or JSON (Content-Type or ?format=).",
            "Hãy gửi tệp CSV, XLSX, YAML hoặc JSON (Content-Type hoặc ?format=).",
            code="unsupported_format",
        )
    return FORMATS[by_type[ctype]]


_DOCUMENT_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            t: {"schema": {"type": "string", "format": "binary"}}
            for t in ("application/yaml", "application/json", "text/csv", *_XLSX)
        },
    }
}


@router.post(
    "/directory/import",
    summary="Import a directory document or an HR list (secretariat); all or nothing",
    openapi_extra=_DOCUMENT_BODY,
)
@body_limit("directory_import")
async def import_directory(
    tenant: str, request: Request, rt: RuntimeDep, caller: CallerDep, format: str | None = None
) -> dict[str, Any]:
    require_secretariat(caller)
    filename = _format(request, format)
    content = await request.body()
    try:
        async with rt.engine.begin() as conn:
            lines = await documents_io.import_directory_file(
                conn, rt.outbox, tenant, content, filename, rt.now()
            )
    except DirectoryImportError as exc:
        raise _invalid(exc) from None
    rt.outbox.committed()
    return {"result": lines}


@router.get(
    "/directory",
    summary="The whole directory (every effective-dated row), or as of a date",
    dependencies=[Depends(no_store)],
)
async def export_directory(
    tenant: str, rt: RuntimeDep, caller: CallerDep, as_of: AsOfDate = None, format: str = "json"
) -> Any:
    """The secretariat's working copy, every field; the director's has no e-mail, date of birth or
    qualification of others (``shared.privacy``: the director reads the aggregates)."""
    person = require_person(caller)
    if not caller.has_role("secretariat", "director", "admin"):
        raise Problem(
            403,
            "Only the secretariat and the director see the whole directory.",
            "Chỉ thường trực và Giám đốc Sở được xem toàn bộ danh bạ.",
            code="forbidden",
        )
    async with rt.engine.connect() as conn:
        d = await stored_directory(conn, tenant)
    if as_of is not None:
        # a view of stored, validated rows: before a unit existed its people may point nowhere, which is
        # history, not an invalid document (validating it here was a 500)
        d = Directory.model_construct(
            tenant=tenant, units=d.units_as_of(as_of), unions=d.unions, people=d.people_as_of(as_of)
        )
    viewer = Viewer.of(caller.person_id, person, d.units)
    if format == "yaml" and all(viewer.sight(p.id, p.unit) == Sight.full for p in d.people):
        return PlainTextResponse(dump_yaml(d), media_type="application/yaml", headers=NO_STORE)
    out = d.model_dump(mode="json", by_alias=format == "yaml", exclude_none=format == "yaml")
    out["people"] = [
        {k: v for k, v in person_view(viewer, p).items() if v is not None or format != "yaml"}
        for p in out["people"]
    ]
    if format == "yaml":
        text = yaml.safe_dump(out, allow_unicode=True, sort_keys=False, width=110)
        return PlainTextResponse(text, media_type="application/yaml", headers=NO_STORE)
    return out


@router.post(
    "/editions",
    status_code=201,
    summary="Import an edition (secretariat): the next version if it changed; ?dry_run=true only validates",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {t: {"schema": {"type": "object"}} for t in ("application/yaml", "application/json")},
        }
    },
    responses={
        200: {
            "description": "Dry run: the document is valid (against the directory too); nothing was published",
            "content": {"application/json": {"schema": {"type": "object"}}},
        }
    },
)
async def import_edition(
    tenant: str,
    request: Request,
    rt: RuntimeDep,
    caller: CallerDep,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
    dry_run: Annotated[
        bool, Query(description="Validate exactly as a publication would, and write nothing (200).")
    ] = False,
) -> Any:
    require_secretariat(caller)
    filename = _format(request, None)
    content = await request.body()
    scope = f"{tenant}|{caller.person_id}|editions"
    digest = request_hash({"filename": filename, "content": content.hex()})
    try:
        edition = await anyio.to_thread.run_sync(documents_io.parse_edition, content, filename)
        if dry_run:  # the same checks, on a read-only connection: nothing published, nothing remembered
            async with rt.engine.connect() as conn:
                await documents_io.check_edition(conn, edition, tenant)
                versions = await documents_io.edition_versions(conn, tenant, edition.edition)
            latest = versions[-1]["version"] if versions else None
            return JSONResponse({"edition": edition.edition, "valid": True, "latest_version": latest})
        async with rt.engine.begin() as conn:
            stored = await rt.idempotency.lookup(conn, scope, idempotency_key, digest)
            if stored is not None:
                return JSONResponse(stored.body, status_code=stored.status)
            lines = await documents_io.import_edition(conn, rt.outbox, edition, rt.now(), tenant=tenant)
            versions = await documents_io.edition_versions(conn, tenant, edition.edition)
            answer = {"edition": edition.edition, "version": versions[-1]["version"], "result": lines}
            await rt.idempotency.remember(conn, scope, idempotency_key, digest, 201, answer, rt.now())
    except DirectoryImportError as exc:
        raise _invalid(exc) from None
    rt.outbox.committed()
    return answer


@router.get("/editions/{edition}/versions", summary="Every published version of an edition")
async def list_versions(tenant: str, edition: str, rt: RuntimeDep, caller: CallerDep) -> list[dict[str, Any]]:
    require_person(caller)
    async with rt.engine.connect() as conn:
        rows = await documents_io.edition_versions(conn, tenant, edition)
    return [
        {"version": r["version"], "published_at": r["published_at"].astimezone(VN).isoformat()} for r in rows
    ]


@router.get("/editions/{edition}/versions/{version}", summary="One version of an edition document")
async def get_version(
    tenant: str, edition: str, version: Version, rt: RuntimeDep, caller: CallerDep, format: str = "json"
) -> Any:
    require_person(caller)
    async with rt.engine.connect() as conn:
        doc = await documents_io.export_edition(conn, tenant, edition, version)
    if doc is None:
        raise Problem(
            404,
            f"No version {version} of edition {edition!r}.",
            f"Không có phiên bản {version} của kỳ hội thi {edition!r}.",
            code="no_edition",
        )
    if format == "yaml":
        return PlainTextResponse(dump_yaml(doc), media_type="application/yaml")
    return doc.model_dump(mode="json")


# ------------------------------------------------------------------------------------------ participation


def scope_of(
    caller: Caller, person: Person, directory: Directory
) -> tuple[str, Callable[[str, str | None], bool] | None]:
    """What a caller may see of assignments, as ``(scope, visible(assignee_id, unit_id))``; None: nothing beyond
    their own. The director and the secretariat see everything; a unit head their unit and its branches; a union
    secretary their union's members. The head of the Department Office (Chánh Văn phòng, the unit of kind
    ``office``) leads the secretariat and sees everything too."""
    units = {u.id: u for u in directory.units}
    office_head = (
        caller.has_role("unit_head") and person.unit in units and units[person.unit].kind == "office"
    )
    if caller.has_role("director", "secretariat", "admin") or office_head:
        return "all", lambda assignee, unit: True
    if caller.has_role("unit_head"):
        own = {person.unit, *(u.id for u in directory.units if u.parent == person.unit)}
        return f"unit:{person.unit}", lambda assignee, unit: unit in own
    if caller.has_role("union_secretary"):
        mine = {u.id for u in directory.unions if u.secretary == person.id} or set(person.unions)
        # and every union below theirs: a Bí thư sees the members of the Chi đoàn under their Đoàn
        below = set(mine)
        while grown := {u.id for u in directory.unions if u.parent in below} - below:
            below |= grown
        members = {p.id for p in directory.people if set(p.unions) & below}
        return "union:" + ",".join(sorted(mine)), lambda assignee, unit: assignee in members
    return f"person:{person.id}", None


def _as_of(value: date | None, now: datetime) -> datetime:
    """A date (the end of that day, Vietnam time) or an instant (no offset = Vietnam time); default now."""
    if value is None:
        return now
    if not isinstance(value, datetime):
        return end_of_day(value)
    return value if value.tzinfo else value.replace(tzinfo=VN)


@router.get(
    "/editions/{edition}/participation",
    summary="Participation per unit, per part and per union: assigned / fulfilled / late / missed / extended",
)
async def participation(
    tenant: str,
    edition: str,
    rt: RuntimeDep,
    caller: CallerDep,
    as_of: Annotated[
        BusinessDate | Instant | None, Query(description="YYYY-MM-DD (end of day, +07:00) or an instant")
    ] = None,
) -> dict[str, Any]:
    person = require_person(caller)
    at = _as_of(as_of, rt.now())
    day = at.astimezone(VN).date()
    a, m, x = models.assignments, models.misses, models.extensions
    async with rt.engine.connect() as conn:
        directory = await stored_directory(conn, tenant)
        rows = (await conn.execute(sa.select(a).where(a.c.tenant == tenant, a.c.edition == edition))).all()
        missed: dict[str, list[datetime]] = {}
        for r in await conn.execute(sa.select(m.c.assignment_id, m.c.deadline).where(m.c.tenant == tenant)):
            missed.setdefault(r.assignment_id, []).append(r.deadline)
        c = models.assignment_changes
        changes: dict[str, list[domain.StatusChange]] = {}
        for r in await conn.execute(
            sa.select(c.c.assignment_id, c.c.at, c.c.status, c.c.on_time)
            .where(c.c.tenant == tenant)
            .order_by(c.c.assignment_id, c.c.at, c.c.recorded)
        ):
            changes.setdefault(r.assignment_id, []).append(
                domain.StatusChange(r.at, r.status == "fulfilled", r.on_time)
            )
        extended: dict[str, list[datetime]] = {}
        for r in await conn.execute(sa.select(x.c.assignment_id, x.c.granted_at).where(x.c.tenant == tenant)):
            extended.setdefault(r.assignment_id, []).append(r.granted_at)
    facts = [
        domain.AssignmentFacts(
            r.id,
            r.part,
            r.assignee_id,
            r.unit_id,
            tuple(changes.get(r.id, ())),
            tuple(missed.get(r.id, ())),
            tuple(extended.get(r.id, ())),
        )
        for r in rows
        if r.created_at <= at
    ]
    units_by_id = {u.id: u for u in directory.units}
    scope, visible = scope_of(caller, person, directory)
    if visible is None:
        raise Problem(
            403,
            "Participation is shown to the secretariat, the director, unit heads and union secretaries.",
            "Chỉ thường trực, Giám đốc Sở, thủ trưởng đơn vị và bí thư/chủ tịch đoàn thể được xem tình hình tham gia.",
            code="forbidden",
        )
    facts = [f for f in facts if visible(f.assignee_id, f.unit_id)]

    def unit_as_of(unit_id: str | None) -> str | None:
        """The unit as it was on ``day``; after a merge or rename, its successor in force that day."""
        if unit_id is None:
            return None
        if unit_id not in units_by_id or any(
            u.id == unit_id and u.effective_on(day) for u in directory.units
        ):
            return unit_id
        for u in directory.units_as_of(day):
            if unit_id in u.successor_of:
                return u.id
        return unit_id

    union_parent = {u.id: u.parent for u in directory.unions}

    def unions_of(f: domain.AssignmentFacts) -> list[str] | None:
        """The person's unions and every union above them: a Chi đoàn's members count in the Đoàn above it."""
        try:
            direct = directory.person(f.assignee_id, day).unions
        except KeyError:
            return None
        tree: list[str] = []
        for union in direct:
            while union is not None and union not in tree:
                tree.append(union)
                union = union_parent.get(union)
        return tree

    by_unit = domain.tally(facts, at, lambda f: unit_as_of(f.unit_id))
    names = {}
    for uid in by_unit:
        try:  # the name the unit had that day (a unit may have been renamed since)
            names[uid] = directory.unit(uid, day).name
        except KeyError:
            names[uid] = units_by_id[uid].name if uid in units_by_id else uid
    union_names = {u.id: u.name for u in directory.unions}
    return {
        "as_of": at.astimezone(VN).isoformat(),
        "scope": scope,
        "units": [{"unit_id": k, "name": names[k], **v} for k, v in by_unit.items()],
        "parts": [{"part": k, **v} for k, v in domain.tally(facts, at, lambda f: f.part).items()],
        "unions": [
            {"union_id": k, "name": union_names.get(k, k), **v}
            for k, v in domain.tally(facts, at, unions_of).items()
        ],
    }
