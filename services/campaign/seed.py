"""``hoithi seed``: load a directory and an edition into campaign's database (its outbox publishes them)."""

from __future__ import annotations

from pathlib import Path

from services.campaign import models
from services.campaign.directory_io import DirectoryImportError
from services.campaign.publishing import import_directory, publish_edition, refuse_what_any_service_would
from shared.clock import Clock
from shared.db import make_engine
from shared.documents import load_directory, load_edition
from shared.outbox import Outbox
from shared.settings import get_settings, service_settings


async def load(path: Path) -> list[str]:
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
    clock = Clock.from_settings(settings)
    engine = make_engine(own.database_url)
    outbox = Outbox(models.backbone, settings, "campaign", clock)
    try:
        async with engine.begin() as conn:
            now = clock.now()
            lines = await import_directory(conn, outbox, directory, now)
            lines += await publish_edition(conn, outbox, edition, directory, now)
    finally:
        await engine.dispose()
    return lines
