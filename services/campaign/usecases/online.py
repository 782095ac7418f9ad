"""The 90-day campaign: its state (procedure catalogues, progress reports, and the figures computed from them),
its use cases (a unit's catalogue changed, a progress report) and the queries that read its figures."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from services.campaign import domain, models
from shared.clock import VN
from shared.documents import (
    Edition,
    OnlineServicesCampaignPart,
    Unit,
    format_date_vn,
    national_procedure_code,
)
from shared.errors import DomainError, Refusal, field_error
from shared.outbox import Outbox
from shared.service import Runtime
from shared.uow import UnitOfWork


async def catalogue_as_of(
    conn: AsyncConnection, tenant: str, unit_id: str, at: datetime
) -> list[dict[str, Any]]:
    """The unit's complete procedure list in force at ``at`` (the latest list from before it)."""
    return (await catalogue_in_force(conn, tenant, unit_id, at))[1]


async def catalogue_in_force(
    conn: AsyncConnection, tenant: str, unit_id: str, at: datetime
) -> tuple[datetime | None, list[dict[str, Any]]]:
    """(from when, procedures) of the unit's list in force at ``at``; (None, []) before its first list."""
    t = models.procedure_catalogues
    row = (
        await conn.execute(
            sa.select(t.c.at, t.c.procedures)
            .where(t.c.tenant == tenant, t.c.unit_id == unit_id, t.c.at <= at)
            .order_by(t.c.at.desc())
            .limit(1)
        )
    ).first()
    return (row.at, json.loads(row.procedures)) if row else (None, [])


async def record_catalogue(
    conn: AsyncConnection,
    outbox: Outbox,
    tenant: str,
    unit_id: str,
    procedures: list[dict[str, Any]],
    at: datetime,
    newer: datetime | None,
    changed_by: str,
    now: datetime,
) -> None:
    """Store the unit's list from ``at`` (replacing one of the same date) and announce it; a list dated before a
    ``newer`` one corrects the period up to it."""
    t = models.procedure_catalogues
    correction = newer is not None
    await conn.execute(sa.delete(t).where(t.c.tenant == tenant, t.c.unit_id == unit_id, t.c.at == at))
    await conn.execute(
        t.insert().values(
            tenant=tenant,
            unit_id=unit_id,
            at=at,
            procedures=json.dumps(procedures, ensure_ascii=False),
            changed_by=changed_by,
            correction=correction,
            recorded_at=now,
        )
    )
    await outbox.emit(
        conn,
        "procedure.catalogue.changed",
        {"unit_id": unit_id, "procedures": procedures, "at": at, "until": newer, "correction": correction},
        tenant=tenant,
        subject=f"procedures/{unit_id}",
        time=at,
    )


async def catalogue_dates(conn: AsyncConnection, tenant: str, unit_id: str) -> list[datetime]:
    """The dates (00:00 +07:00) from which each of the unit's catalogue versions holds, in order."""
    t = models.procedure_catalogues
    return list(
        (
            await conn.execute(
                sa.select(t.c.at).where(t.c.tenant == tenant, t.c.unit_id == unit_id).order_by(t.c.at)
            )
        ).scalars()
    )


async def catalogue_versions(
    conn: AsyncConnection, tenant: str, unit_id: str
) -> list[tuple[datetime, set[str]]]:
    """(from when, national codes) of each of the unit's catalogue versions, in order."""
    t = models.procedure_catalogues
    rows = await conn.execute(
        sa.select(t.c.at, t.c.procedures).where(t.c.tenant == tenant, t.c.unit_id == unit_id).order_by(t.c.at)
    )
    return [(r.at, {p["code"] for p in json.loads(r.procedures)}) for r in rows]


async def first_catalogue_default(conn: AsyncConnection, tenant: str, now: datetime) -> datetime:
    """Where a unit's first catalogue starts when no date is given: the start of the tenant's earliest 90-day
    campaign that has begun (reports for its past weeks need it), else today (00:00 +07:00)."""
    e = models.copies.editions
    starts = []
    for doc in (await conn.execute(sa.select(e.c.doc).where(e.c.tenant == tenant))).scalars():
        edition = Edition.model_validate_json(doc)
        starts += [
            p.starts_at(edition.tz) for p in edition.parts if isinstance(p, OnlineServicesCampaignPart)
        ]
    begun = [s for s in starts if s <= now]
    if begun:
        return min(begun)
    return now.astimezone(VN).replace(hour=0, minute=0, second=0, microsecond=0)


async def dossiers_until(
    conn: AsyncConnection, tenant: str, edition: str, part: str, unit_id: str, at: datetime
) -> list[domain.DossierCount]:
    """Every procedure's dossiers from the unit's reports of periods begun before ``at`` (a report counts as soon
    as it is in, even for a period still running)."""
    t = models.progress_reports
    rows = (
        await conn.execute(
            sa.select(t.c.dossiers).where(
                t.c.tenant == tenant,
                t.c.edition == edition,
                t.c.part == part,
                t.c.unit_id == unit_id,
                t.c.period_start < at,
            )
        )
    ).scalars()
    return [
        domain.DossierCount(d["code"], d["received"], d["online"], d["on_time"])
        for doc in rows
        for d in json.loads(doc)
    ]


def entries(catalogue: list[dict[str, Any]]) -> list[domain.CatalogueEntry]:
    return [domain.CatalogueEntry(p["code"], p["level"], p["eligible_full_process"]) for p in catalogue]


def targets_of(part: OnlineServicesCampaignPart) -> dict[str, float | None]:
    return part.targets.model_dump()


async def progress(
    conn: AsyncConnection, edition: Edition, part: OnlineServicesCampaignPart, at: datetime
) -> dict[str, Any]:
    """Per assigned unit and for the department (pooled): figures as of ``at``, the targets, what is unmet."""
    a = models.assignments
    rows = (
        await conn.execute(
            sa.select(a.c.id, a.c.unit_id)
            .where(a.c.tenant == edition.tenant, a.c.edition == edition.edition, a.c.part == part.id)
            .order_by(a.c.unit_id)
        )
    ).all()
    targets = targets_of(part)
    units = []
    all_catalogue: list[domain.CatalogueEntry] = []
    all_dossiers: list[domain.DossierCount] = []
    for r in rows:
        cat = entries(await catalogue_as_of(conn, edition.tenant, r.unit_id, at))
        dos = await dossiers_until(conn, edition.tenant, edition.edition, part.id, r.unit_id, at)
        all_catalogue += cat
        all_dossiers += dos
        figures = domain.campaign_figures(cat, dos)
        units.append(
            {
                "assignment_id": r.id,
                "unit_id": r.unit_id,
                "procedures": len(cat),
                "eligible": sum(1 for c in cat if c.eligible_full_process),
                "full_process": sum(1 for c in cat if c.eligible_full_process and c.level == "full_process"),
                "dossiers_received": sum(d.received for d in dos),
                "figures": figures,
                "unmet": domain.unmet_targets(figures, targets),
            }
        )
    department = domain.campaign_figures(all_catalogue, all_dossiers)
    return {
        "part": part.id,
        "starts_at": part.starts_at(edition.tz),
        "ends_at": part.deadline_instant(edition.tz),
        "targets": targets,
        "units": units,
        "department": {"figures": department, "unmet": domain.unmet_targets(department, targets)},
    }


async def unit_progress(
    conn: AsyncConnection, edition: Edition, part: OnlineServicesCampaignPart, unit_id: str, at: datetime
) -> dict[str, Any]:
    """One assigned unit's figures as of ``at`` per procedure of its catalogue in force then: each procedure's
    level, eligibility and dossiers (received / online / on time, summed over the reports of periods begun
    before ``at``, as ``progress`` counts them) with its two dossier shares; the unit's figures as ``progress``
    gives them. Dossiers of procedures the catalogue in force no longer lists (a later list dropped them) are
    shown apart, so the rows add up to the unit's totals."""
    tenant = edition.tenant
    since, catalogue = await catalogue_in_force(conn, tenant, unit_id, at)
    dossiers = await dossiers_until(conn, tenant, edition.edition, part.id, unit_id, at)
    summed: dict[str, domain.DossierCount] = {}
    for d in dossiers:
        was = summed.get(d.code, domain.DossierCount(d.code, 0, 0, 0))
        summed[d.code] = domain.DossierCount(
            d.code, was.received + d.received, was.online + d.online, was.on_time + d.on_time
        )

    def counted(code: str) -> dict[str, Any]:
        d = summed.pop(code, domain.DossierCount(code, 0, 0, 0))
        shares = domain.campaign_figures([], [d])
        return {
            "dossiers_received": d.received,
            "dossiers_online": d.online,
            "dossiers_on_time": d.on_time,
            "online_dossier_share": shares["online_dossier_share"],
            "on_time_share": shares["on_time_share"],
        }

    procedures = [
        {
            "code": p["code"],
            "local_code": p.get("local_code"),
            "name": p["name"],
            "field_name": p.get("field_name"),
            "level": p["level"],
            "eligible_full_process": p["eligible_full_process"],
            **counted(p["code"]),
        }
        for p in sorted(catalogue, key=lambda p: str(p["code"]))
    ]
    names = await _names_ever(conn, tenant, unit_id) if summed else {}
    elsewhere = [{"code": code, "name": names.get(code), **counted(code)} for code in sorted(summed)]
    targets = targets_of(part)
    figures = domain.campaign_figures(entries(catalogue), dossiers)
    return {
        "part": part.id,
        "unit_id": unit_id,
        "starts_at": part.starts_at(edition.tz),
        "ends_at": part.deadline_instant(edition.tz),
        "targets": targets,
        "catalogue_from": since,
        "procedures": procedures,
        "not_in_catalogue": elsewhere,
        "eligible": sum(1 for p in catalogue if p["eligible_full_process"]),
        "full_process": sum(
            1 for p in catalogue if p["eligible_full_process"] and p["level"] == "full_process"
        ),
        "dossiers_received": sum(d.received for d in dossiers),
        "dossiers_online": sum(d.online for d in dossiers),
        "dossiers_on_time": sum(d.on_time for d in dossiers),
        "figures": figures,
        "unmet": domain.unmet_targets(figures, targets),
    }


async def _names_ever(conn: AsyncConnection, tenant: str, unit_id: str) -> dict[str, str]:
    """National code → the name the unit's latest list naming it gives (any version, any date)."""
    t = models.procedure_catalogues
    rows = await conn.execute(
        sa.select(t.c.procedures).where(t.c.tenant == tenant, t.c.unit_id == unit_id).order_by(t.c.at)
    )
    return {p["code"]: p["name"] for r in rows for p in json.loads(r.procedures)}


async def tenant_catalogue(conn: AsyncConnection, tenant: str, at: datetime) -> list[dict[str, Any]]:
    """Every procedure of the tenant's units' catalogues in force at ``at``, one per national code (two forms of
    one code are one procedure): its code, its Vietnamese name, the provincial long forms seen, the units."""
    from shared.documents import national_procedure_code

    t = models.procedure_catalogues
    units = (await conn.execute(sa.select(t.c.unit_id).where(t.c.tenant == tenant).distinct())).scalars()
    merged: dict[str, dict[str, Any]] = {}
    for unit_id in sorted(units):
        for p in await catalogue_as_of(conn, tenant, unit_id, at):
            code = national_procedure_code(p["code"])
            entry = merged.setdefault(code, {"code": code, "name": p["name"], "local_codes": [], "units": []})
            for form in (p["code"], p.get("local_code")):
                if form and form != code and form not in entry["local_codes"]:
                    entry["local_codes"].append(form)
            entry["units"].append(unit_id)
    return [merged[c] for c in sorted(merged)]


# ------------------------------------------------------------------------------ the 90-day campaign's use cases


def _vn(dt: datetime) -> str:
    return dt.astimezone(VN).isoformat()


async def edition_campaign(
    conn: AsyncConnection, tenant: str, edition: str
) -> tuple[Any, OnlineServicesCampaignPart]:
    doc = await models.copies.edition(conn, tenant, edition)
    if doc is None:
        raise DomainError(
            Refusal.NOT_FOUND,
            f"No edition {edition!r}.",
            f"Không có kỳ hội thi {edition!r}.",
            code="no_edition",
        )
    part = next((p for p in doc.parts if isinstance(p, OnlineServicesCampaignPart)), None)
    if part is None:
        raise DomainError(
            Refusal.NOT_FOUND,
            "This edition has no 90-day campaign.",
            "Kỳ hội thi này không có Chiến dịch 90 ngày.",
            code="no_campaign",
        )
    return doc, part


@dataclass(frozen=True)
class ChangeCatalogue:
    """A unit's complete procedure list from ``effective_from`` (None: the default), by its head or the
    secretariat; ``correction`` to correct a period before a newer list."""

    tenant: str
    unit_id: str
    procedures: list[dict[str, Any]]
    effective_from: date | None
    correction: bool
    changed_by: str


async def change_catalogue(uow: UnitOfWork[Runtime], cmd: ChangeCatalogue) -> dict[str, Any]:
    conn, now = uow.conn, uow.now()
    tenant, unit_id, procedures = cmd.tenant, cmd.unit_id, cmd.procedures
    if await models.copies.unit(conn, tenant, unit_id, now) is None:
        raise DomainError(
            Refusal.NOT_FOUND, f"No unit {unit_id!r}.", f"Không có đơn vị {unit_id!r}.", code="no_unit"
        )
    versions = await catalogue_dates(conn, tenant, unit_id)
    if cmd.effective_from is not None:
        at = datetime.combine(cmd.effective_from, datetime.min.time(), VN)
    elif not versions:
        at = await first_catalogue_default(conn, tenant, now)
    else:
        at = now.astimezone(VN).replace(hour=0, minute=0, second=0, microsecond=0)
    newer = min((v for v in versions if v > at), default=None)
    if newer is not None and not cmd.correction:
        last = format_date_vn(newer - timedelta(days=1))
        raise DomainError(
            Refusal.CONFLICT,
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
    await record_catalogue(conn, uow.rt.outbox, tenant, unit_id, procedures, at, newer, cmd.changed_by, now)
    return {
        "unit_id": unit_id,
        "effective_from": _vn(at),
        "in_force_until": _vn(newer) if newer else None,
        "correction": correction,
        "procedures": procedures,
    }


@dataclass(frozen=True)
class ReportedProcedure:
    """One procedure's dossiers of a period, as the unit reports them (the code as written)."""

    code: str
    dossiers_received: int
    dossiers_online: int
    dossiers_on_time: int


@dataclass(frozen=True)
class ReportProgress:
    """A unit's 90-day progress report for a period (from ``period_start`` to the end of ``period_end``)."""

    tenant: str
    edition: str
    unit_id: str
    period_start: date
    period_end: date
    procedures: tuple[ReportedProcedure, ...]
    reported_by: str


async def report_progress(uow: UnitOfWork[Runtime], cmd: ReportProgress) -> dict[str, Any]:
    conn, now = uow.conn, uow.now()
    tenant, edition, unit_id = cmd.tenant, cmd.edition, cmd.unit_id
    start = datetime.combine(cmd.period_start, datetime.min.time(), VN)
    end = datetime.combine(cmd.period_end, datetime.min.time(), VN) + timedelta(days=1)  # exclusive
    a, t = models.assignments, models.progress_reports
    _, part = await edition_campaign(conn, tenant, edition)
    assignment = (
        await conn.execute(
            sa.select(a.c.id).where(
                a.c.tenant == tenant, a.c.edition == edition, a.c.part == part.id, a.c.unit_id == unit_id
            )
        )
    ).scalar()
    if assignment is None:
        raise DomainError(
            Refusal.INVALID,
            f"Unit {unit_id!r} is not assigned to the 90-day campaign.",
            f"Đơn vị {unit_id!r} không được giao Chiến dịch 90 ngày.",
            code="not_assigned",
            errors=[field_error("unit_id", "Not a campaign unit.", "Không phải đơn vị tham gia chiến dịch.")],
        )
    # The catalogue in force on the period's last day decides which procedures a report may name.
    last_day = end - timedelta(microseconds=1)
    catalogue = {p["code"]: p for p in await catalogue_as_of(conn, tenant, unit_id, last_day)}
    versions = await catalogue_versions(conn, tenant, unit_id)
    period = f"{format_date_vn(start)}–{format_date_vn(last_day)}"
    errors = []
    counts = []
    for i, p in enumerate(cmd.procedures):
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
        counts.append(domain.DossierCount(code, p.dossiers_received, p.dossiers_online, p.dossiers_on_time))
    if errors:
        raise DomainError(
            Refusal.INVALID,
            "Unknown procedures.",
            "Có thủ tục không thuộc danh mục.",
            code="invalid",
            errors=errors,
        )
    figures = domain.campaign_figures(entries(list(catalogue.values())), counts)
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
            reported_by=cmd.reported_by,
            reported_at=now,
        )
    )
    await uow.emit(
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
            "reported_by": cmd.reported_by,
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
    return answer


# ------------------------------------------------------------------------------ the 90-day campaign's queries


async def read_progress(rt: Runtime, tenant: str, edition: str, at: datetime) -> dict[str, Any]:
    """The campaign's figures per assigned unit and for the department as of ``at`` (``progress``)."""
    async with rt.engine.connect() as conn:
        doc, part = await edition_campaign(conn, tenant, edition)
        return await progress(conn, doc, part, at)


async def read_unit_progress(
    rt: Runtime, tenant: str, edition: str, unit_id: str, at: datetime
) -> dict[str, Any]:
    """One assigned unit's figures as of ``at`` (``unit_progress``), with its assignment and name; 404 for a
    unit not in the directory or not assigned to the campaign."""
    a, u = models.assignments, models.copies.units
    async with rt.engine.connect() as conn:
        doc, part = await edition_campaign(conn, tenant, edition)
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
            raise DomainError(
                Refusal.NOT_FOUND,
                f"No unit {unit_id!r} in the directory.",
                f"Không có đơn vị {unit_id!r} trong danh bạ.",
                code="no_unit",
            )
        if assigned is None:
            raise DomainError(
                Refusal.NOT_FOUND,
                f"Unit {unit.name} ({unit_id}) is not assigned to this edition's 90-day campaign.",
                f"Đơn vị {unit.name} ({unit_id}) không được giao Chiến dịch 90 ngày của kỳ hội thi này.",
                code="not_assigned",
            )
        result = await unit_progress(conn, doc, part, unit_id, at)
    result["assignment_id"] = assigned
    result["unit_name"] = unit.name
    return result


async def read_procedures(rt: Runtime, tenant: str, at: datetime) -> list[dict[str, Any]]:
    """Every procedure of the tenant's units' catalogues in force at ``at`` (``tenant_catalogue``)."""
    async with rt.engine.connect() as conn:
        return await tenant_catalogue(conn, tenant, at)
