"""The 90-day campaign over HTTP (thin): a unit's procedure catalogue, its progress reports, the figures (the use
cases and queries: ``usecases/online.py``).

The secretariat may act for any unit; a unit head for their own unit; the director sees everything.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from services.campaign.usecases import online
from shared.bounds import PROCEDURE_CODE_PATTERN, BusinessDate
from shared.clock import VN
from shared.documents import national_procedure_code
from shared.events.catalogue import Procedure
from shared.guard import AsOfInstant
from shared.problems import Problem, bilingual_error
from shared.service import Caller, CallerDep, RuntimeDep, require_person
from shared.uow import Idempotent, run

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


@router.put("/units/{unit_id}/procedures", summary="Replace a unit's procedure catalogue from a date")
async def change_catalogue(
    tenant: str, unit_id: str, body: CatalogueChange, rt: RuntimeDep, caller: CallerDep
) -> dict[str, Any]:
    _may_act_for(caller, unit_id)
    procedures = [Procedure(**p.model_dump()).model_dump(mode="json") for p in body.procedures]
    cmd = online.ChangeCatalogue(
        tenant, unit_id, procedures, body.effective_from, body.correction, changed_by=caller.person_id
    )
    return (await run(rt, online.change_catalogue, cmd)).unwrap()


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
    reported = tuple(
        online.ReportedProcedure(p.code, p.dossiers_received, p.dossiers_online, p.dossiers_on_time)
        for p in body.procedures
    )
    cmd = online.ReportProgress(
        tenant, edition, unit_id, body.period_start, body.period_end, reported, reported_by=caller.person_id
    )
    key = Idempotent(
        f"progress:{tenant}:{edition}:{unit_id}", idempotency_key, body.model_dump(mode="json"), 201
    )
    done = await run(rt, online.report_progress, cmd, idempotent=key)
    return done.replayed.body if done.replayed is not None else done.unwrap()


@router.get(
    "/editions/{edition}/online-services", summary="90-day campaign progress per unit and for the department"
)
async def campaign_progress(
    tenant: str, edition: str, rt: RuntimeDep, caller: CallerDep, as_of: AsOfInstant = None
) -> dict[str, Any]:
    person = require_person(caller)
    at = as_of or rt.now()
    result = await online.read_progress(rt, tenant, edition, at)
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
    result = await online.read_unit_progress(rt, tenant, edition, unit_id, at)
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
    found = await online.read_procedures(rt, tenant, rt.now())
    return [CatalogueEntry(**e) for e in found]
