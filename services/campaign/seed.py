"""``hoithi seed``: load a directory and an edition into campaign's database (its outbox publishes them); with
``--demo-procedures``, also the demo's procedure catalogue (``demo-procedures.yaml`` of the same folder)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncConnection

from services.campaign import models
from services.campaign.domain.directory_io import DirectoryImportError
from services.campaign.domain.documents import refuse_what_any_service_would
from services.campaign.usecases import online
from services.campaign.usecases.publishing import import_directory, publish_edition
from shared.clock import Clock
from shared.db import make_engine
from shared.documents import Directory, load_directory, load_edition
from shared.events.catalogue import Procedure
from shared.outbox import Outbox
from shared.settings import get_settings, service_settings

DEMO_PROCEDURES = "demo-procedures.yaml"


def read_procedures(path: Path, directory: Directory) -> dict[str, list[dict[str, Any]]]:
    """Unit id → its procedures, from a file keyed by unit code (no ids of the demo in it); each entry checked
    as ``PUT …/units/{id}/procedures`` checks it. A long form keeps its national code, and itself as
    ``local_code``."""
    from services.campaign.api.online import CatalogueChange

    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    by_code = {u.code: u.id for u in directory.units if u.code}
    problems, out = [], {}
    for code, listed in (data.get("units") or {}).items():
        if code not in by_code:
            problems.append(f"{code}: không có đơn vị mã này trong danh bạ (no unit with this code)")
            continue
        try:
            change = CatalogueChange.model_validate({"procedures": listed})
        except ValidationError as exc:
            problems += [f"{code}: {e['loc']}: {e['msg']}" for e in exc.errors()]
            continue
        out[by_code[code]] = [
            Procedure(**p.model_dump(), local_code=raw["code"] if raw["code"] != p.code else None).model_dump(
                mode="json"
            )
            for p, raw in zip(change.procedures, listed, strict=True)
        ]
    if problems:
        raise SystemExit(
            f"Không ghi gì: {path.name} có lỗi (nothing written):\n" + "\n".join(f"  {p}" for p in problems)
        )
    return out


async def load_procedures(
    conn: AsyncConnection,
    outbox: Outbox,
    tenant: str,
    catalogues: dict[str, list[dict[str, Any]]],
    now: datetime,
) -> list[str]:
    """Each unit's list, for units that have none yet (a re-run, or a list someone changed since, is left alone),
    from the default of a unit's first list."""
    lines = []
    for unit_id, procedures in catalogues.items():
        if await online.catalogue_dates(conn, tenant, unit_id):
            continue
        at = await online.first_catalogue_default(conn, tenant, now)
        await online.record_catalogue(conn, outbox, tenant, unit_id, procedures, at, None, "hoithi seed", now)
        lines.append(f"procedures {unit_id}: {len(procedures)}")
    return lines


async def load(path: Path, demo_procedures: bool = False) -> list[str]:
    settings = get_settings()
    own = service_settings("campaign", settings)
    directory = load_directory(path / "directory.yaml")
    edition = load_edition(path / "edition.yaml")
    try:
        refuse_what_any_service_would(edition)
    except DirectoryImportError as exc:
        raise SystemExit(
            "Không ghi gì: kỳ hội thi có lỗi (nothing written):\n" + "\n".join(f"  {e}" for e in exc.errors)
        ) from None
    catalogues = (
        read_procedures(path / DEMO_PROCEDURES, directory)
        if demo_procedures and (path / DEMO_PROCEDURES).is_file()
        else {}
    )
    clock = Clock.from_settings(settings)
    engine = make_engine(own.database_url)
    outbox = Outbox(models.backbone, settings, "campaign", clock)
    try:
        async with engine.begin() as conn:
            now = clock.now()
            lines = await import_directory(conn, outbox, directory, now)
            lines += await publish_edition(conn, outbox, edition, directory, now)
            lines += await load_procedures(conn, outbox, directory.tenant, catalogues, now)
    finally:
        await engine.dispose()
    return lines
