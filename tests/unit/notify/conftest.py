"""notify's runtime on a SQLite file, with its tables made from the models: the real handlers and jobs, no servers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from services.notify import app, models
from shared.service import Runtime, build_runtime
from shared.settings import Settings, service_settings
from tests.support.notify import vn


@pytest.fixture
async def rt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Runtime]:
    monkeypatch.setenv("HOITHI_NOTIFY_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'notify.db'}")
    settings = Settings(env="test", data_dir=tmp_path, clock_simulated_at=vn("2023-10-18T09:00:00"))
    runtime = build_runtime(app.SPEC, settings, service_settings("notify", settings))
    async with runtime.engine.begin() as conn:
        await conn.run_sync(models.metadata.create_all)
    try:
        yield runtime
    finally:
        await runtime.engine.dispose()
