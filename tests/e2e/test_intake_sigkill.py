"""A 201 is durable (issue 15): submissions is SIGKILLed in the middle of a burst, right after its first
answers; every receipt it had answered survives as a row with gapless numbers, and once it is back the outbox
publishes each one's ``submission.received``."""

from __future__ import annotations

import asyncio
import secrets
import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from services.submissions import models
from shared.db import make_engine
from shared.settings import SERVICES
from tests.support.system import EDITION, TENANT, System, report_body, seed_with_officials
from tests.support.wait import eventually

BURST = 400
KILL_AFTER = 60  # 201s received before the kill


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def burst_system(request, test_servers, tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:  # type: ignore[no-untyped-def]
    work: Path = tmp_path_factory.mktemp("sigkill")
    if request.param == "sqlite":
        dbs = {s: f"sqlite+aiosqlite:///{work / f'{s}.db'}" for s in SERVICES}
    else:
        dbs = {s: test_servers.create_database(s) for s in SERVICES}
    system = System(
        nats_url=test_servers.nats_url,
        prefix="k" + secrets.token_hex(4),
        workdir=work,
        database_urls=dbs,
        seed_dir=seed_with_officials(work / "seed", BURST),
        catch_up_timeout=600,
    )
    try:
        system.start()
        yield system
    finally:
        system.stop()


async def _burst_then_kill(system: System) -> list[dict]:
    """A first wave of ``KILL_AFTER`` officials submits at once and is answered; the rest then submit at once, and
    submissions is SIGKILLed as soon as the first of them is on the wire (group commit answers a whole batch at
    once, so on a fast machine a single burst could be over before a kill sent "after 60 answers" lands).
    Returns the receipts answered (201) before the kill, then those answered after it."""
    url = f"{system.url('submissions')}/tenants/{TENANT}/editions/{EDITION}/experience-reports"
    body = report_body()
    answered: list[dict] = []
    on_the_wire = asyncio.Event()

    async def sent(_: httpx.Request) -> None:
        on_the_wire.set()

    async def one(client: httpx.AsyncClient, i: int) -> None:
        headers = {"Authorization": f"Bearer {system.token(f'p-x{i:05d}')}"}
        try:
            r = await client.post(url, json=body, headers=headers)
        except httpx.HTTPError:
            return  # cut off by the kill: no answer, no promise
        if r.status_code == 201:
            answered.append(r.json())

    limits = httpx.Limits(max_connections=50)
    first = [httpx.AsyncClient(timeout=60, limits=limits) for _ in range(4)]
    rest = [httpx.AsyncClient(timeout=60, limits=limits, event_hooks={"request": [sent]}) for _ in range(8)]
    try:
        await asyncio.wait_for(
            asyncio.gather(*(one(first[i % len(first)], i) for i in range(KILL_AFTER))), timeout=120
        )
        tasks = [asyncio.create_task(one(rest[i % len(rest)], i)) for i in range(KILL_AFTER, BURST)]
        await asyncio.wait_for(on_the_wire.wait(), timeout=60)
        killed = list(answered)  # what the clients had been told when the kill is sent
        system.stop_service("submissions", sig=signal.SIGKILL)
        await asyncio.gather(*tasks)
    finally:
        for c in (*first, *rest):
            await c.aclose()
    assert len(answered) < BURST, "the kill came after the burst was over: nothing was in flight"
    return killed + [r for r in answered if r not in killed]


async def _rows(url: str) -> dict[str, str]:
    engine = make_engine(url)
    t = models.submissions
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(sa.select(t.c.receipt_number, t.c.id))
            return {number: sid for number, sid in rows}
    finally:
        await engine.dispose()


async def test_every_receipt_answered_before_a_sigkill_survives_it(burst_system: System) -> None:
    answered = await _burst_then_kill(burst_system)
    assert len(answered) >= KILL_AFTER

    rows = await _rows(burst_system.database_urls["submissions"])
    for r in answered:
        assert rows.get(r["receipt_number"]) == r["submission_id"], f"receipt {r['receipt_number']} lost"
    numbers = sorted(int(n.rsplit("-", 1)[1]) for n in rows)
    assert numbers == list(range(1, len(numbers) + 1))  # gapless: nothing numbered was left half-written

    # back up: the outbox publishes what the killed process committed and had not sent yet
    burst_system.start_service("submissions")
    burst_system.wait_ready("submissions")
    wanted = {r["submission_id"] for r in answered}

    def published() -> set[str] | None:
        seen = {
            e["data"]["submission_id"]
            for _, e in burst_system.events()
            if e.get("type") == "submission.received"
        }
        return seen if wanted <= seen else None

    await eventually(published, timeout=120, interval=1.0, message="every answered receipt on the stream")
