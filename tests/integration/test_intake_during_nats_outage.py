"""Intake while NATS is away (issue 12, defect 6): readiness means "serves HTTP with its own database", so a
broker outage leaves every service in rotation and intake keeps accepting receipts (the outbox holds them);
attachment uploads, whose bytes go to the JetStream object store first, answer 503 with ``Retry-After``; the
broker side is its own signal (``/health/consumers``). When NATS returns, every receipt is applied exactly
once downstream.

Servers this test owns: its own nats-server (stopped and started again) and fresh databases."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from shared.devserver import NatsServer
from tests.support.faults import CORE_SERVICES, FaultSystem
from tests.support.servers import TestServers
from tests.support.system import EDITION, TENANT
from tests.support.wait import eventually

pytestmark = pytest.mark.fault

REPORTS = 200
HEAD = "p-0001"  # head of the Văn phòng Sở in the seed: drafts an initiative
PDF = b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog >>\nendobj\n%%EOF\n"
BASE = f"/tenants/{TENANT}/editions/{EDITION}"


@pytest.fixture
async def fs(
    tmp_path: Path, test_servers: TestServers, own_nats_server: NatsServer, unique_prefix: str
) -> AsyncIterator[FaultSystem]:
    system = FaultSystem.build(
        test_servers=test_servers,
        nats_url=own_nats_server.url,
        prefix=unique_prefix,
        workdir=tmp_path,
        officials=REPORTS,
    )
    try:
        system.system.start()
        await system.wait_settled()
        yield system
    finally:
        system.stop(grace=3.0)


def _draft_initiative(fs: FaultSystem) -> str:
    body = {
        "title": "Số hoá sổ theo dõi văn bản đến của Văn phòng Sở",
        "authors": [{"person_id": HEAD, "share": 100}],
        "field_of_application": "Cải cách thủ tục hành chính",
        "first_applied_on": "2023-06-01",
        "existing_solution": "Tiếp nhận hồ sơ giấy tại Bộ phận Một cửa.",
        "existing_weaknesses": "Người dân phải đi lại nhiều lần; khó tra cứu tiến độ.",
        "new_solution": "Quy trình mới, toàn bộ trên môi trường điện tử.",
        "novelty": "Lần đầu áp dụng tại Sở.",
        "applicability": "Áp dụng được cho các đơn vị có thủ tục tương tự trong tỉnh.",
        "benefits": "Giảm 50% thời gian giải quyết hồ sơ.",
        "benefits_kind": "actual",
        "submit": False,
    }
    with fs.system.client("submissions", HEAD) as c:
        r = c.post(f"{BASE}/initiatives", json=body, headers={"Idempotency-Key": "outage-draft"})
    assert r.status_code == 201, r.text
    return str(r.json()["submission_id"])


def _upload(fs: FaultSystem, initiative: str, filename: str) -> httpx.Response:
    with fs.system.client("submissions", HEAD) as c:
        return c.post(
            f"{BASE}/initiatives/{initiative}/attachments", params={"filename": filename}, content=PDF
        )


async def _health(fs: FaultSystem, service: str, which: str) -> httpx.Response:
    async with httpx.AsyncClient(timeout=5) as c:
        return await c.get(f"{fs.system.url(service)}/health/{which}")


async def test_intake_accepts_reports_while_nats_is_stopped_and_applies_each_once_after(
    fs: FaultSystem, own_nats_server: NatsServer
) -> None:
    people = [f"p-x{i:05d}" for i in range(REPORTS)]
    initiative = _draft_initiative(fs)
    assert _upload(fs, initiative, "truoc.pdf").status_code == 201  # the object store answers

    await asyncio.to_thread(own_nats_server.kill)  # its store kept (a container too)
    for s in CORE_SERVICES:

        async def noticed(s: str = s) -> bool:  # its broker side red (or, as before the fix, its readiness)
            return (await _health(fs, s, "consumers")).status_code == 503 or (
                await _health(fs, s, "ready")
            ).status_code != 200

        await eventually(noticed, timeout=15, message=f"{s} noticed NATS is away")
        ready = await _health(fs, s, "ready")
        assert ready.status_code == 200, (s, ready.text)  # still in the Service: it serves with its database
        assert ready.json()["consumers"] == "degraded" and ready.json()["broker"]["nats"] == "disconnected"

    # Attachments need the object store: 503 with Retry-After, in both languages, nothing stored.
    refused = await asyncio.to_thread(_upload, fs, initiative, "trong-luc-mat-ket-noi.pdf")
    assert refused.status_code == 503, refused.text
    assert int(refused.headers["Retry-After"]) > 0
    assert "thử lại" in refused.json()["detail_vi"]

    results = await fs.concurrent_reports(people, concurrency=16)
    refused_reports = {p: r[:2] for p, r in results.items() if r[0] != 201}
    assert not refused_reports, refused_reports
    assert (await _health(fs, "submissions", "consumers")).status_code == 503  # NATS was away throughout
    accepted = {p: str(r[1]["submission_id"]) for p, r in results.items()}  # type: ignore[index]

    await asyncio.to_thread(own_nats_server.restart)

    async def drained() -> bool:
        return await fs.outbox_unpublished("submissions") == 0

    await eventually(drained, timeout=60, message="submissions' outbox drained after NATS returned")
    await fs.assert_applied_exactly_once(accepted, timeout=90)
    for s in CORE_SERVICES:

        async def broker_side_green(s: str = s) -> bool:
            return (await _health(fs, s, "consumers")).status_code == 200

        await eventually(broker_side_green, timeout=30, message=f"{s} consumers healthy again")
    with fs.system.client("submissions", HEAD) as c:
        attachments = c.get(f"{BASE}/initiatives/{initiative}").json()["attachments"]
    assert [a["filename"] for a in attachments] == ["truoc.pdf"]
    assert _upload(fs, initiative, "sau.pdf").status_code == 201
