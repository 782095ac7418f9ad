"""The 90-day campaign's state: procedure catalogues, progress reports, and the figures computed from them."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from services.campaign import domain, models
from shared.clock import VN
from shared.documents import Edition, OnlineServicesCampaignPart
from shared.outbox import Outbox


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
