"""A deadline rush through the real system (issue 15): 2,000 officials submit at once; every one gets a receipt,
the receipt numbers are unique and gapless, and rewards applies each report exactly once."""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from services.rewards import models as rewards_models
from shared.db import make_engine
from shared.settings import SERVICES
from tests.support.system import EDITION, TENANT, System, report_body, seed_with_officials
from tests.support.wait import eventually

RUSH = 2000
# make test rushes PostgreSQL (production's database); make soak both (HOITHI_RUSH_DATABASES=sqlite,postgresql)
DATABASES = os.environ.get("HOITHI_RUSH_DATABASES", "postgresql").split(",")
pytestmark = pytest.mark.serial  # 2,000 concurrent officials load the whole machine


@pytest.fixture(scope="module", params=DATABASES)
def rush_system(request, test_servers, tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:  # type: ignore[no-untyped-def]
    work: Path = tmp_path_factory.mktemp("rush")
    if request.param == "sqlite":
        dbs = {s: f"sqlite+aiosqlite:///{work / f'{s}.db'}" for s in SERVICES}
    else:
        dbs = {s: test_servers.create_database(s) for s in SERVICES}
    system = System(
        nats_url=test_servers.nats_url,
        prefix="r" + secrets.token_hex(4),
        workdir=work,
        database_urls=dbs,
        seed_dir=seed_with_officials(work / "seed", RUSH),
        catch_up_timeout=600,
    )
    try:
        system.start()
        yield system
    finally:
        system.stop()


async def _submit_all(system: System) -> list[dict]:
    url = f"{system.url('submissions')}/tenants/{TENANT}/editions/{EDITION}/experience-reports"
    body = report_body()
    tokens = [system.token(f"p-x{i:05d}") for i in range(RUSH)]

    async def one(client: httpx.AsyncClient, i: int) -> dict:
        headers = {"Authorization": f"Bearer {tokens[i]}", "Idempotency-Key": f"rush-{i}"}
        while True:
            r = await client.post(url, json=body, headers=headers)
            if r.status_code == 503:  # a full queue: retry as told (the key makes the retry safe)
                await asyncio.sleep(float(r.headers["Retry-After"]))
                continue
            assert r.status_code == 201, r.text
            return r.json()  # type: ignore[no-any-return]

    # Many small clients, every request in flight at once: one client with thousands of connections spends
    # its time in httpcore's pool bookkeeping, not in the server.
    clients = [httpx.AsyncClient(timeout=120, limits=httpx.Limits(max_connections=50)) for _ in range(40)]
    try:
        return await asyncio.gather(*(one(clients[i % len(clients)], i) for i in range(RUSH)))
    finally:
        for c in clients:
            await c.aclose()


async def _ledger(url: str) -> dict[str, int]:
    """Person entries per submission in rewards' ledger."""
    engine = make_engine(url)
    t = rewards_models.ledger
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                sa.select(t.c.submission_id, sa.func.count())
                .where(t.c.participant_kind == "person")
                .group_by(t.c.submission_id)
            )
            return {sid: int(n) for sid, n in rows}
    finally:
        await engine.dispose()


async def test_two_thousand_concurrent_reports_get_gapless_receipts_applied_once(rush_system: System) -> None:
    receipts = await _submit_all(rush_system)

    numbers = sorted(int(r["receipt_number"].rsplit("-", 1)[1]) for r in receipts)
    assert numbers == list(range(1, RUSH + 1))  # unique and gapless
    assert len({r["author_id"] for r in receipts}) == RUSH
    ids = {r["submission_id"] for r in receipts}

    async def all_applied() -> dict[str, int] | None:
        ledger = await _ledger(rush_system.database_urls["rewards"])
        return ledger if ids <= set(ledger) else None

    ledger = await eventually(all_applied, timeout=180, interval=1.0, message="every report in the ledger")
    assert set(ledger) == ids
    assert set(ledger.values()) == {1}  # each applied once
