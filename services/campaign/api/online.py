"""The 90-day campaign over HTTP (thin): a unit's procedure catalogue, its progress reports, the figures.

The secretariat may act for any unit; a unit head for their own unit; the director sees everything.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Header
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from services.campaign import domain, models
from services.campaign.usecases import online
from shared.bounds import PROCEDURE_CODE_PATTERN, BusinessDate
from shared.clock import VN
from shared.documents import OnlineServicesCampaignPart, Unit, format_date_vn, national_procedure_code
from shared.events.catalogue import Procedure
from shared.guard import AsOfInstant
from shared.idempotency import request_hash
from shared.problems import Problem, bilingual_error, field_error
from shared.service import Caller, CallerDep, RuntimeDep, require_person

router = APIRouter(prefix="/tenants/{tenant}", tags=["campaign: 90-day campaign"])


class CatalogueProcedure(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(
        description="national code 1.004227 or the provincial long form",
        json_schema_extra={"pattern": PROCEDURE_CODE_PATTERN},
    )
    name: str = Field(min_length=1)
    level: str = Field(
        description="full_process | partial | not_offered",
        json_schema_extra={"enum": ["full_process", "partial", "not_offered"]},
    )
    eligible_full_process: bool
    field_name: str | None = None

    @field_validator("code")
    @classmethod
    def _national(cls, v: str) -> str:
        try:
            return national_procedure_code(v)
        except ValueError:
            raise bilingual_error(
                "procedure_code",
                "Not a procedure code (1.004227 or 1.011442.000.00.00.H38).",
                "Mã thủ tục không hợp lệ (dạng 1.004227 hoặc 1.011442.000.00.00.H38).",
            ) from None

    @field_validator("level")
    @classmethod
    def _level(cls, v: str) -> str:
        if v not in ("full_process", "partial", "not_offered"):
            raise bilingual_error(
                "procedure_level",
                "level is full_process, partial or not_offered.",
                "Mức độ phải là full_process (toàn trình), partial (một phần) hoặc not_offered.",
            )
        return v


class CatalogueChange(BaseModel):
    """The unit's complete procedure list from ``effective_from``: by default today, or — for the unit's first
    list — the start of the tenant's earliest 90-day campaign, so reports for weeks already past can use it.
    A list dated before a newer one is a correction of the period up to that newer list, and must say so
    (``correction: true``): the newer list stays in force from its own date."""

    model_config = ConfigDict(extra="forbid")

    procedures: list[CatalogueProcedure]
    effective_from: BusinessDate | None = None
    correction: bool = Field(
        default=False, description="correct a past period: allowed (and required) before a newer list's date"
    )

    @model_validator(mode="after")
    def _distinct(self) -> CatalogueChange:
        codes = [p.code for p in self.procedures]
        if len(set(codes)) != len(codes):
            raise bilingual_error(
                "duplicate_procedure",
                "A procedure is listed twice (two forms of one code are one procedure).",
                "Một thủ tục bị liệt kê hai lần (hai dạng của cùng một mã là một thủ tục).",
            )
        return self


class DossierFigures(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str
    dossiers_received: int = Field(ge=0)
    dossiers_online: int = Field(ge=0)
    dossiers_on_time: int = Field(ge=0)

    @model_validator(mode="after")
    def _within(self) -> DossierFigures:
        if self.dossiers_online > self.dossiers_received or self.dossiers_on_time > self.dossiers_received:
            raise bilingual_error(
                "dossiers",
                "Online and on-time dossiers cannot exceed the dossiers received.",
                "Số hồ sơ trực tuyến và đúng hạn không được vượt số hồ sơ tiếp nhận.",
            )
        return self


class ProgressReport(BaseModel):
    """Dossiers of a period (từ ngày … đến hết ngày …, Vietnam time)."""

    model_config = ConfigDict(extra="forbid")

    period_start: BusinessDate
    period_end: BusinessDate = Field(description="the last day of the period (inclusive)")
    procedures: list[DossierFigures] = Field(min_length=1)

    @model_validator(mode="after")
    def _ordered(self) -> ProgressReport:
        if self.period_end < self.period_start:
            raise bilingual_error(
                "period", "period_end is before period_start.", "Ngày kết thúc kỳ báo cáo trước ngày bắt đầu."
            )
        return self


def _may_act_for(caller: Caller, unit_id: str) -> None:
    person = require_person(caller)
    if caller.has_role("secretariat", "admin"):
        return
    if caller.has_role("unit_head") and person.unit == unit_id:
        return
    raise Problem(
        403,
        "Only the secretariat or the unit's head may report for this unit.",
        "Chỉ thường trực hoặc thủ trưởng đơn vị được báo cáo cho đơn vị này.",
        code="forbidden",
    )


def _vn(dt: datetime) -> str:
    return dt.astimezone(VN).isoformat()


async def _campaign(conn: Any, tenant: str, edition: str) -> tuple[Any, OnlineServicesCampaignPart]:
    doc = await models.copies.edition(conn, tenant, edition)
    if doc is None:
        raise Problem(404, f"No edition {edition!r}.", f"Không có kỳ hội thi {edition!r}.", code="no_edition")
    part = next((p for p in doc.parts if isinstance(p, OnlineServicesCampaignPart)), None)
    if part is None:
        raise Problem(
            404,
            "This edition has no 90-day campaign.",
            "Kỳ hội thi này không có Chiến dịch 90 ngày.",
            code="no_campaign",
        )
    return doc, part


@router.put("/units/{unit_id}/procedures", summary="Replace a unit's procedure catalogue from a date")
async def change_catalogue(
    tenant: str, unit_id: str, body: CatalogueChange, rt: RuntimeDep, caller: CallerDep
) -> dict[str, Any]:
    _may_act_for(caller, unit_id)
    now = rt.now()
    procedures = [Procedure(**p.model_dump()).model_dump(mode="json") for p in body.procedures]
    async with rt.engine.begin() as conn:
        if await models.copies.unit(conn, tenant, unit_id, now) is None:
            raise Problem(404, f"No unit {unit_id!r}.", f"Không có đơn vị {unit_id!r}.", code="no_unit")
        versions = await online.catalogue_dates(conn, tenant, unit_id)
        if body.effective_from is not None:
            at = datetime.combine(body.effective_from, datetime.min.time(), VN)
        elif not versions:
            at = await online.first_catalogue_default(conn, tenant, now)
        else:
            at = now.astimezone(VN).replace(hour=0, minute=0, second=0, microsecond=0)
        newer = min((v for v in versions if v > at), default=None)
        if newer is not None and not body.correction:
            last = format_date_vn(newer - timedelta(days=1))
            raise Problem(
                409,
                f"A newer catalogue is in force from {format_date_vn(newer)}: this list would hold only from "
                f"{format_date_vn(at)} to the end of {last}. Send correction: true to correct that period (the "
                f"newer list stays in force), or an effective_from on or after {format_date_vn(newer)}.",
                f"Danh mục mới hơn có hiệu lực từ ngày {format_date_vn(newer)}: danh mục này chỉ áp dụng từ ngày "
                f"{format_date_vn(at)} đến hết ngày {last}. Gửi correction: true để đính chính giai đoạn đó "
                f"(danh mục mới hơn vẫn giữ hiệu lực), hoặc chọn effective_from từ ngày {format_date_vn(newer)}.",
                code="newer_catalogue",
                errors=[
                    field_error(
                        "effective_from",
                        f"Before the newer catalogue of {format_date_vn(newer)}: a correction needs correction: "
                        "true.",
                        f"Trước danh mục mới hơn (từ ngày {format_date_vn(newer)}): đính chính cần correction: true.",
                        code="newer_catalogue",
                    )
                ],
            )
        correction = newer is not None
        await online.record_catalogue(
            conn, rt.outbox, tenant, unit_id, procedures, at, newer, caller.person_id, now
        )
    rt.outbox.committed()
    return {
        "unit_id": unit_id,
        "effective_from": _vn(at),
        "in_force_until": _vn(newer) if newer else None,
        "correction": correction,
        "procedures": procedures,
    }


@router.post(
    "/editions/{edition}/units/{unit_id}/progress-reports",
    status_code=201,
    summary="A unit's 90-day progress report for a period (its head or the secretariat)",
)
async def report_progress(
    tenant: str,
    edition: str,
    unit_id: str,
    body: ProgressReport,
    rt: RuntimeDep,
    caller: CallerDep,
    idempotency_key: Annotated[str | None, Header()] = None,
) -> dict[str, Any]:
    _may_act_for(caller, unit_id)
    now = rt.now()
    start = datetime.combine(body.period_start, datetime.min.time(), VN)
    end = datetime.combine(body.period_end, datetime.min.time(), VN) + timedelta(days=1)  # exclusive
    scope = f"progress:{tenant}:{edition}:{unit_id}"
    digest = request_hash(body.model_dump(mode="json"))
    a, t = models.assignments, models.progress_reports
    async with rt.engine.begin() as conn:
        stored = await rt.idempotency.lookup(conn, scope, idempotency_key, digest)
        if stored is not None:
            return stored.body  # type: ignore[no-any-return]
        _, part = await _campaign(conn, tenant, edition)
        assignment = (
            await conn.execute(
                sa.select(a.c.id).where(
                    a.c.tenant == tenant, a.c.edition == edition, a.c.part == part.id, a.c.unit_id == unit_id
                )
            )
        ).scalar()
        if assignment is None:
            raise Problem(
                422,
                f"Unit {unit_id!r} is not assigned to the 90-day campaign.",
                f"Đơn vị {unit_id!r} không được giao Chiến dịch 90 ngày.",
                code="not_assigned",
                errors=[
                    field_error("unit_id", "Not a campaign unit.", "Không phải đơn vị tham gia chiến dịch.")
                ],
            )
        # The catalogue in force on the period's last day decides which procedures a report may name.
        last_day = end - timedelta(microseconds=1)
        catalogue = {p["code"]: p for p in await online.catalogue_as_of(conn, tenant, unit_id, last_day)}
        versions = await online.catalogue_versions(conn, tenant, unit_id)
        period = f"{format_date_vn(start)}–{format_date_vn(last_day)}"
        errors = []
        counts = []
        for i, p in enumerate(body.procedures):
            try:
                code = national_procedure_code(p.code)
            except ValueError:
                code = p.code
            if code not in catalogue:
                later = min((at for at, codes in versions if at > last_day and code in codes), default=None)
                if later is not None:
                    en = (
                        f"{p.code!r} is in the unit's procedure catalogue only from {format_date_vn(later)}, "
                        f"after this period ({period}): the catalogue in force on the period's last day decides. "
                        "Correct the catalogue for the period (PUT …/procedures with an earlier effective_from)."
                    )
                    vi = (
                        f"Thủ tục {p.code!r} chỉ có trong danh mục thủ tục của đơn vị từ ngày "
                        f"{format_date_vn(later)}, sau kỳ báo cáo ({period}): kỳ báo cáo dùng danh mục có hiệu "
                        "lực vào ngày cuối kỳ. Hãy đính chính danh mục cho kỳ này (effective_from sớm hơn)."
                    )
                elif not catalogue:
                    en = (
                        f"The unit has no procedure catalogue in force on {format_date_vn(last_day)}, the last day "
                        f"of the period ({period})."
                    )
                    vi = (
                        f"Đơn vị chưa có danh mục thủ tục có hiệu lực vào ngày {format_date_vn(last_day)}, ngày "
                        f"cuối kỳ báo cáo ({period})."
                    )
                else:
                    en = (
                        f"{p.code!r} is not in the unit's procedure catalogue in force on "
                        f"{format_date_vn(last_day)}, the last day of the period ({period})."
                    )
                    vi = (
                        f"Thủ tục {p.code!r} không có trong danh mục thủ tục của đơn vị có hiệu lực vào ngày "
                        f"{format_date_vn(last_day)}, ngày cuối kỳ báo cáo ({period})."
                    )
                errors.append(field_error(f"procedures[{i}].code", en, vi))
            counts.append(
                domain.DossierCount(code, p.dossiers_received, p.dossiers_online, p.dossiers_on_time)
            )
        if errors:
            raise Problem(
                422, "Unknown procedures.", "Có thủ tục không thuộc danh mục.", code="invalid", errors=errors
            )
        figures = domain.campaign_figures(online.entries(list(catalogue.values())), counts)
        report_id = str(uuid.uuid4())
        await conn.execute(
            sa.delete(t).where(
                t.c.tenant == tenant,
                t.c.edition == edition,
                t.c.part == part.id,
                t.c.unit_id == unit_id,
                t.c.period_start == start,
                t.c.period_end == end,
            )
        )
        await conn.execute(
            t.insert().values(
                id=report_id,
                tenant=tenant,
                edition=edition,
                part=part.id,
                unit_id=unit_id,
                period_start=start,
                period_end=end,
                dossiers=json.dumps(
                    [
                        {"code": c.code, "received": c.received, "online": c.online, "on_time": c.on_time}
                        for c in counts
                    ]
                ),
                reported_by=caller.person_id,
                reported_at=now,
            )
        )
        await rt.outbox.emit(
            conn,
            "onlineservice.progress.reported",
            {
                "assignment_id": assignment,
                "part": part.id,
                "unit_id": unit_id,
                "period_start": start,
                "period_end": end,
                "procedures": [
                    {
                        "code": c.code,
                        "level": catalogue[c.code]["level"],
                        "eligible_full_process": catalogue[c.code]["eligible_full_process"],
                        "dossiers_received": c.received,
                        "dossiers_online": c.online,
                        "dossiers_on_time": c.on_time,
                    }
                    for c in counts
                ],
                "figures": {k: v for k, v in figures.items() if v is not None},
                "reported_by": caller.person_id,
            },
            tenant=tenant,
            edition=edition,
            subject=assignment,
            time=end,
        )
        answer = {
            "report_id": report_id,
            "unit_id": unit_id,
            "period_start": _vn(start),
            "period_end": _vn(end),
            "figures": figures,
        }
        await rt.idempotency.remember(conn, scope, idempotency_key, digest, 201, answer, now)
    rt.outbox.committed()
    return answer


@router.get(
    "/editions/{edition}/online-services", summary="90-day campaign progress per unit and for the department"
)
async def campaign_progress(
    tenant: str, edition: str, rt: RuntimeDep, caller: CallerDep, as_of: AsOfInstant = None
) -> dict[str, Any]:
    person = require_person(caller)
    at = as_of or rt.now()
    async with rt.engine.connect() as conn:
        doc, part = await _campaign(conn, tenant, edition)
        result = await online.progress(conn, doc, part, at)
    if not caller.has_role("director", "secretariat", "admin"):
        if not caller.has_role("unit_head"):
            raise Problem(
                403,
                "The campaign's figures are shown to the secretariat, the director and unit heads.",
                "Chỉ thường trực, Giám đốc Sở và thủ trưởng đơn vị được xem số liệu chiến dịch.",
                code="forbidden",
            )
        result["units"] = [u for u in result["units"] if u["unit_id"] == person.unit]
    result["as_of"] = _vn(at)
    result["starts_at"] = _vn(result["starts_at"])
    result["ends_at"] = _vn(result["ends_at"])
    return result


@router.get(
    "/editions/{edition}/units/{unit_id}/online-services",
    summary="One unit's 90-day campaign figures per procedure of its catalogue in force",
)
async def unit_campaign_progress(
    tenant: str,
    edition: str,
    unit_id: str,
    rt: RuntimeDep,
    caller: CallerDep,
    as_of: AsOfInstant = None,
) -> dict[str, Any]:
    """Per procedure of the unit's catalogue in force at ``as_of``: level, eligibility, dossiers summed over the
    reports of periods begun before it, shares (the secretariat, the director, the unit's own head)."""
    person = require_person(caller)
    own = caller.has_role("unit_head") and person.unit == unit_id
    if not (own or caller.has_role("director", "secretariat", "admin")):
        raise Problem(
            403,
            "A unit's campaign figures are shown to the secretariat, the director and that unit's head.",
            "Chỉ thường trực, Giám đốc Sở và thủ trưởng của đơn vị được xem số liệu chiến dịch của đơn vị này.",
            code="forbidden",
        )
    at = as_of or rt.now()
    a, u = models.assignments, models.copies.units
    async with rt.engine.connect() as conn:
        doc, part = await _campaign(conn, tenant, edition)
        assigned = (
            await conn.execute(
                sa.select(a.c.id).where(
                    a.c.tenant == tenant, a.c.edition == edition, a.c.part == part.id, a.c.unit_id == unit_id
                )
            )
        ).scalar()
        unit = await models.copies.unit(conn, tenant, unit_id, at)
        if unit is None:  # not yet in force at as_of (or never): its latest row, if any
            found = (
                await conn.execute(
                    sa.select(u.c.doc)
                    .where(u.c.tenant == tenant, u.c.unit_id == unit_id)
                    .order_by(u.c.effective_from.desc())
                    .limit(1)
                )
            ).scalar()
            unit = Unit.model_validate_json(found) if found else None
        if unit is None:
            raise Problem(
                404,
                f"No unit {unit_id!r} in the directory.",
                f"Không có đơn vị {unit_id!r} trong danh bạ.",
                code="no_unit",
            )
        if assigned is None:
            raise Problem(
                404,
                f"Unit {unit.name} ({unit_id}) is not assigned to this edition's 90-day campaign.",
                f"Đơn vị {unit.name} ({unit_id}) không được giao Chiến dịch 90 ngày của kỳ hội thi này.",
                code="not_assigned",
            )
        result = await online.unit_progress(conn, doc, part, unit_id, at)
    result["assignment_id"] = assigned
    result["unit_name"] = unit.name
    result["as_of"] = _vn(at)
    for key in ("starts_at", "ends_at", "catalogue_from"):
        result[key] = _vn(result[key]) if result[key] is not None else None
    return result


class CatalogueEntry(BaseModel):
    code: str = Field(description="the national code (1.004227)")
    name: str = Field(description="the procedure's name, in Vietnamese, as the unit's catalogue gives it")
    local_codes: list[str] = Field(description="provincial long forms of this code seen in the catalogues")
    units: list[str] = Field(description="the units whose catalogue lists it")


@router.get(
    "/procedures",
    response_model=list[CatalogueEntry],
    summary="The procedures of every unit's catalogue in force today, one per national code, with names",
)
async def procedures(tenant: str, rt: RuntimeDep, caller: CallerDep) -> list[CatalogueEntry]:
    """For the experience report's picker: search by code or name; two forms of one code are one entry."""
    require_person(caller)
    async with rt.engine.connect() as conn:
        found = await online.tenant_catalogue(conn, tenant, rt.now())
    return [CatalogueEntry(**e) for e in found]
