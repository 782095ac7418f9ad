"""Campaign's HTTP API for the secretariat's documents (thin: parse, authorise, call one use case or query).

- the directory: import (YAML/JSON document or HR's CSV/XLSX list), export, units as of a date;
- editions: import (publishes the next version; or only validates, ``?dry_run=true``), export any version,
  list versions.

Who may do what: the secretariat manages directory and editions; the director sees everything; a unit head sees
their own unit (and its branches); a union secretary sees their union's members.
"""

from __future__ import annotations

from typing import Annotated, Any

import anyio
import yaml
from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse

from services.campaign.domain import documents as domain_documents
from services.campaign.domain.directory_io import DirectoryImportError
from services.campaign.usecases import directory as directory_uc
from services.campaign.usecases import editions
from shared.bounds import Version
from shared.clock import VN
from shared.documents import Directory, Person, dump_yaml
from shared.guard import AsOfDate, body_limit
from shared.privacy import NO_STORE, Sight, Viewer, no_store, person_view
from shared.problems import Problem
from shared.service import Caller, CallerDep, RuntimeDep, require_person
from shared.uow import Idempotent, run

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
    cmd = directory_uc.ImportDirectory(tenant, content, filename)
    return (await run(rt, directory_uc.import_directory, cmd)).unwrap()


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
    d = await directory_uc.directory(rt, tenant)
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
    try:
        edition = await anyio.to_thread.run_sync(domain_documents.parse_edition, content, filename)
    except DirectoryImportError as exc:
        raise domain_documents.invalid(exc) from None
    if dry_run:  # the same checks, on a read-only connection: nothing published, nothing remembered
        return JSONResponse(await editions.dry_run(rt, tenant, edition))
    scope = f"{tenant}|{caller.person_id}|editions"
    key = Idempotent(scope, idempotency_key, {"filename": filename, "content": content.hex()}, 201)
    done = await run(rt, editions.import_edition, editions.ImportEdition(tenant, edition), idempotent=key)
    if done.replayed is not None:
        return JSONResponse(done.replayed.body, status_code=done.replayed.status)
    return done.value


@router.get("/editions/{edition}/versions", summary="Every published version of an edition")
async def list_versions(tenant: str, edition: str, rt: RuntimeDep, caller: CallerDep) -> list[dict[str, Any]]:
    require_person(caller)
    rows = await editions.versions(rt, tenant, edition)
    return [
        {"version": r["version"], "published_at": r["published_at"].astimezone(VN).isoformat()} for r in rows
    ]


@router.get("/editions/{edition}/versions/{version}", summary="One version of an edition document")
async def get_version(
    tenant: str, edition: str, version: Version, rt: RuntimeDep, caller: CallerDep, format: str = "json"
) -> Any:
    require_person(caller)
    doc = await editions.version(rt, tenant, edition, version)
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
