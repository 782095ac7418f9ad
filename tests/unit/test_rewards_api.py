"""rewards' HTTP routes over the acceptance fixture (the app without its messaging: no lifespan)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook  # type: ignore[import-untyped]

import shared.service
from services.rewards.app import SPEC
from shared.auth import issue_token
from shared.settings import ServiceSettings, Settings
from tests.support.rewards import EDITION, EXPECTED_PERSONS, TENANT, all_facts, as_rows, rewards_on_sqlite

BASE = f"/tenants/{TENANT}/editions/{EDITION}"


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    import asyncio

    db = tmp_path / "rewards.db"

    async def fill() -> None:
        r = await rewards_on_sqlite(db)
        await r.deliver(all_facts())
        await r.engine.dispose()

    asyncio.run(fill())
    settings = Settings(env="test", data_dir=tmp_path)
    own = ServiceSettings(name="rewards", database_url=f"sqlite+aiosqlite:///{db}", port=1)
    app = shared.service.create_app(SPEC, settings, own)
    token = issue_token(settings, "p-0001", TENANT)
    yield TestClient(app, headers={"Authorization": f"Bearer {token}"})  # no `with`: no NATS


def test_list_exports_journal_and_rules_check_over_http(client: TestClient) -> None:
    pl = client.get(f"{BASE}/priority-list", params={"ledger": "true"})
    assert pl.status_code == 200, pl.text
    assert as_rows(pl.json()["persons"]) == EXPECTED_PERSONS and pl.json()["ledger"]

    text = client.get(f"{BASE}/priority-list.csv", params={"sheet": "units"}).content.decode("utf-8-sig")
    assert next(csv.reader(io.StringIO(text)))[:3] == ["Hạng", "Mã đơn vị", "Tên đơn vị"]
    wb = load_workbook(io.BytesIO(client.get(f"{BASE}/priority-list.xlsx").content))
    assert wb["Cá nhân"]["C2"].value == "Trương Văn Đức"

    journal = client.get(f"{BASE}/ledger", params={"participant": "p-0006"}).json()
    # p-0006's report was credited, then reversed by its withdrawal: both stay in the journal.
    assert [(j["action"], j["points"]) for j in journal] == [("credit", 1), ("reversal", -1)]
    assert journal[1]["reason_vi"].startswith("Hủy ghi nhận")

    bad = client.post(f"{BASE}/rules/validate", json={"rewards": {"points": {"submission.accepted": 1}}})
    assert bad.status_code == 422
    (err,) = bad.json()["errors"]
    assert err["field"] == "rewards.points.submission.accepted" and "không được hỗ trợ" in err["message_vi"]
    good = client.post(
        f"{BASE}/rules/validate", json={"points": {"initiative.selected": 5}, "rules_version": 3}
    )
    assert good.json() == {"valid": True, "rules_version": 3, "errors": []}
    assert client.get("/tenants/other/editions/2023/priority-list").status_code == 403
    assert client.get(f"/tenants/{TENANT}/editions/2099/priority-list").status_code == 404
