"""The 90-day campaign's procedure catalogue is dated: a unit's first list holds from the campaign's start (so a
report for a week already past can use it), a report naming a procedure the catalogue lists only later is
refused saying which date rule applies, and a back-dated correction is refused unless it says it is one —
then it is recorded as a correction of the period up to the newer list. Campaign as a real process on
PostgreSQL and NATS, its clock frozen at 20/10/2023 09:00."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.campaign import SECRETARIAT, CampaignSystem, running_campaign
from tests.support.system import EDITION, TENANT

UNIT = "u-ccbvmt"


@pytest.fixture
def cs(test_servers: Any, tmp_path: Path, unique_prefix: str) -> Iterator[CampaignSystem]:
    with running_campaign(test_servers, tmp_path, unique_prefix, "2023-10-20T09:00:00+07:00") as made:
        yield made


def procedure(code: str) -> dict[str, Any]:
    return {"code": code, "name": f"Thủ tục {code}", "level": "full_process", "eligible_full_process": True}


def catalogue(c: httpx.Client, codes: list[str], **body: Any) -> httpx.Response:
    return c.put(
        f"/tenants/{TENANT}/units/{UNIT}/procedures",
        json={"procedures": [procedure(x) for x in codes], **body},
    )


def report(c: httpx.Client, start: str, end: str, code: str) -> httpx.Response:
    return c.post(
        f"/tenants/{TENANT}/editions/{EDITION}/units/{UNIT}/progress-reports",
        json={
            "period_start": start,
            "period_end": end,
            "procedures": [
                {"code": code, "dossiers_received": 4, "dossiers_online": 2, "dossiers_on_time": 4}
            ],
        },
    )


def test_dated_catalogue_reports_for_past_weeks_and_corrections(cs: CampaignSystem) -> None:
    with cs.system.client("campaign", SECRETARIAT) as c:
        # The unit's first list, no date given: it holds from the campaign's start (21/08/2023), not today.
        first = catalogue(c, ["1.010001"])
        assert first.status_code == 200, first.text
        assert first.json()["effective_from"] == "2023-08-21T00:00:00+07:00"
        r = report(c, "2023-10-09", "2023-10-15", "1.010001")  # a week already past
        assert r.status_code == 201, r.text

        # A newer list from today adds 1.010002; last week's report naming it is refused, saying why (dates).
        newer = catalogue(c, ["1.010001", "1.010002"])
        assert newer.status_code == 200 and newer.json()["effective_from"] == "2023-10-20T00:00:00+07:00"
        r = report(c, "2023-10-09", "2023-10-15", "1.010002")
        assert r.status_code == 422, r.text
        (err,) = r.json()["errors"]
        assert err["field"] == "procedures[0].code"
        assert "chỉ có trong danh mục thủ tục của đơn vị từ ngày 20/10/2023" in err["message_vi"]
        assert "09/10/2023–15/10/2023" in err["message_vi"] and "from 20/10/2023" in err["message"]

        # A back-dated correction that does not say so: refused, naming the date rule; nothing written.
        before = len(cs.outbox("procedure.catalogue.changed"))
        r = catalogue(c, ["1.010001", "1.010002"], effective_from="2023-08-21")
        assert r.status_code == 409, r.text
        assert r.json()["errors"][0]["field"] == "effective_from"
        assert "đến hết ngày 19/10/2023" in r.json()["detail_vi"]
        assert len(cs.outbox("procedure.catalogue.changed")) == before

        # Said to be a correction: recorded as one, for the period up to the newer list, which stays in force.
        r = catalogue(c, ["1.010001", "1.010002"], effective_from="2023-08-21", correction=True)
        assert r.status_code == 200, r.text
        assert (r.json()["correction"], r.json()["in_force_until"]) == (True, "2023-10-20T00:00:00+07:00")
        (event,) = [
            e["data"] for e in cs.outbox("procedure.catalogue.changed") if e["data"].get("correction")
        ]
        assert event["at"].startswith("2023-08-2") and event["until"].startswith("2023-10-19T17:00:00")
        r = report(c, "2023-10-09", "2023-10-15", "1.010002")
        assert r.status_code == 201, r.text
