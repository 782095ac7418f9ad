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
from shared.collation import name_key
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


def brief(units: list[dict]) -> list[dict]:  # type: ignore[type-arg]
    """Units as a page names them: every field but their every entry."""
    return [{**u, "reasons": []} for u in units]


def test_list_exports_journal_and_rules_check_over_http(client: TestClient) -> None:
    pl = client.get(f"{BASE}/priority-list", params={"ledger": "true"})
    assert pl.status_code == 200, pl.text
    assert as_rows(pl.json()["persons"]) == EXPECTED_PERSONS and pl.json()["ledger"]
    assert pl.json()["page"] is None  # the whole list, as before

    # Pages of the same list, ranked by the database: together they are the whole list, in order.
    pages, offset = [], 0
    while offset is not None:
        page = client.get(f"{BASE}/priority-list", params={"limit": 3, "offset": offset}).json()
        assert page["page"]["persons_total"] == len(EXPECTED_PERSONS) and page["unions"] == []
        assert len(page["persons"]) <= 3
        pages += page["persons"]
        offset = page["page"]["next_offset"]
    assert as_rows(pages) == EXPECTED_PERSONS
    # A page's units: their reasons in brief (what each rule earned them), their every entry with the ledger.
    first_units = client.get(f"{BASE}/priority-list", params={"limit": 2}).json()["units"]
    assert first_units == brief(pl.json()["units"][:2])  # roll-ups of a page's units count every branch
    in_full = client.get(f"{BASE}/priority-list", params={"limit": 2, "ledger": "true"}).json()["units"]
    assert in_full == pl.json()["units"][:2]
    for u in pl.json()["units"]:
        assert u["reasons"] and round(sum(t["points"] for t in u["reason_totals"]), 2) == u["points"]
        assert sum(t["count"] for t in u["reason_totals"]) == len(u["reasons"])
    assert client.get(f"{BASE}/priority-list", params={"limit": 0}).status_code == 422

    # As of a moment, a page is the page of that moment's whole list: the same rows (names, units, ranks,
    # reasons), the whole list's totals, and its units' roll-ups counting every branch.
    moment = {"as_of": "2023-10-25T12:00:00"}
    then = client.get(f"{BASE}/priority-list", params=moment).json()
    assert 0 < len(then["persons"]) < len(EXPECTED_PERSONS)
    pages, offset = [], 0
    while offset is not None:
        page = client.get(f"{BASE}/priority-list", params={**moment, "limit": 2, "offset": offset}).json()
        assert page["page"]["persons_total"] == len(then["persons"]) and page["unions"] == []
        assert page["units"] == brief(then["units"][offset : offset + 2])
        pages += page["persons"]
        offset = page["page"]["next_offset"]
    assert pages == then["persons"]

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


def test_an_official_sees_names_of_others_but_only_their_own_points_and_the_secretariat_sees_all(
    client: TestClient,
) -> None:
    """Decree 13/2023 (``shared.privacy``): points, misses and their reasons are the person's own business, the
    secretariat's and the reward council's; everyone else reads names, titles and units."""
    settings = Settings(env="test")
    official = {"Authorization": f"Bearer {issue_token(settings, 'p-0002', TENANT)}"}
    pl = client.get(f"{BASE}/priority-list", params={"ledger": "true"}, headers=official)
    assert pl.status_code == 200, pl.text
    assert pl.headers["cache-control"] == "no-store"
    persons = {p["person_id"]: p for p in pl.json()["persons"]}
    assert persons["p-0002"]["points"] == 1 and persons["p-0002"]["reasons"]
    other = persons["p-0007"]
    assert (other["name"], other["unit_id"]) == ("Trương Văn Đức", "u-tnn-ks")
    assert other["points"] is None and other["rank"] is None and other["missed_deadlines"] is None
    assert other["reasons"] == [] and other["eligibility"] == []
    # the others come after the reader's own row, in the Vietnamese order of names: the order tells nothing
    hidden = [p for p in pl.json()["persons"] if p["person_id"] != "p-0002"]
    assert pl.json()["persons"][0]["person_id"] == "p-0002" and len(hidden) > 5
    assert [p["name"] for p in hidden] == sorted((p["name"] for p in hidden), key=name_key)
    assert [p["name"] for p in hidden] != sorted(p["name"] for p in hidden)  # not code-point order
    assert {e["participant_id"] for e in pl.json()["ledger"] if e["participant_kind"] == "person"} == {
        "p-0002"
    }

    text = client.get(f"{BASE}/priority-list.csv", headers=official).content.decode("utf-8-sig")
    rows = {r[1]: r for r in csv.reader(io.StringIO(text))}
    assert rows["p-0007"][0] == "***" and rows["p-0007"][5] == "***" and rows["p-0002"][5] == "1"
    xlsx = client.get(f"{BASE}/priority-list.xlsx", headers=official)
    assert xlsx.headers["cache-control"] == "no-store"
    assert "p-0007" not in {
        row[1] for row in load_workbook(io.BytesIO(xlsx.content))["Sổ ghi nhận"].iter_rows(values_only=True)
    }
    journal = client.get(f"{BASE}/ledger", params={"participant": "p-0006"}, headers=official)
    assert journal.status_code == 200 and journal.json() == []
    assert journal.headers["cache-control"] == "no-store"

    secretariat = {"Authorization": f"Bearer {issue_token(settings, 'p-0004', TENANT)}"}
    persons = {
        p["person_id"]: p for p in client.get(f"{BASE}/priority-list", headers=secretariat).json()["persons"]
    }
    assert persons["p-0007"]["points"] == 7 and persons["p-0007"]["rank"] == 1
    assert (
        len(client.get(f"{BASE}/ledger", params={"participant": "p-0006"}, headers=secretariat).json()) == 2
    )
