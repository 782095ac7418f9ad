"""Conflicts of interest across a merger (issue 13, item 4), through the real campaign and submissions on the
2025 seed: Chi cục Phát triển nông thôn (u-ccptnt) is merged into Chi cục Thủy lợi (u-cctl) on 01/10/2025. An
initiative received from u-ccptnt before the merger may not be scored after it by the council member of u-cctl
(c-06): the secretariat sees why (``merged_unit``), the score sheet is refused (403), nothing is written."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.settings import SERVICES
from tests.support.cantho import (
    BASE_2025,
    CHAIR_2025,
    SECRETARIAT_2025,
    SEED_2025,
    START_2025,
    TENANT_2025,
    initiative_body,
)
from tests.support.servers import TestServers
from tests.support.submissions import events_of
from tests.support.system import System


@pytest.fixture
def system(test_servers: TestServers, unique_prefix: str, tmp_path: Path) -> Iterator[System]:
    sys_ = System(
        nats_url=test_servers.nats_url,
        prefix=unique_prefix,
        workdir=tmp_path,
        database_urls={s: test_servers.create_database(s) for s in SERVICES},
        seed_dir=SEED_2025,
        services=("campaign", "submissions"),
    )
    sys_.set_clock(START_2025, rate=0)
    try:
        sys_.start()
        yield sys_
    finally:
        sys_.stop()


def _reviewers(system: System, sid: str) -> dict:
    with system.client("submissions", SECRETARIAT_2025, tenant=TENANT_2025) as c:
        r = c.get(f"{BASE_2025}/initiatives/{sid}/reviewers")
    assert r.status_code == 200, r.text
    return r.json()


def test_a_member_of_the_unit_merged_into_never_scores_the_merged_units_initiative(system: System) -> None:
    system.set_clock("2025-09-20T09:00:00+07:00", rate=0)
    with system.client("submissions", "c-08", tenant=TENANT_2025) as c:  # head of Chi cục PTNT
        r = c.post(
            f"{BASE_2025}/initiatives",
            json=initiative_body("Cấp mã số vùng trồng trực tuyến", [("c-08", 100)]),
        )
    assert r.status_code == 201, r.text
    sid = r.json()["submission_id"]

    # Before the merger Chi cục Thủy lợi is another unit: its member c-06 reviews it.
    before = _reviewers(system, sid)
    assert "c-06" in [m["member_id"] for m in before["reviewers"]]
    assert before["excluded"] == []

    # From 01/10/2025 u-cctl is the successor of u-ccptnt: c-06 is left out, and the secretariat reads why.
    system.set_clock("2025-10-02T09:00:00+07:00", rate=0)
    after = _reviewers(system, sid)
    assert [m["member_id"] for m in after["reviewers"]] == ["c-01", "c-04", "c-10"]
    (why,) = after["excluded"]
    assert why["member_id"] == "c-06" and why["reason"] == "merged_unit"
    assert why["reason_vi"] == (
        "Chi cục Thủy lợi và Phát triển nông thôn là đơn vị kế thừa của đơn vị nộp Chi cục Phát triển nông thôn "
        "(sáp nhập, chia tách hoặc đổi tên)"
    )
    assert why["detail"] == "u-cctl: successor of u-ccptnt"

    sheet = {"scores": {"tinh-moi": 30, "hieu-qua": 50}}
    with system.client("submissions", "c-06", tenant=TENANT_2025) as c:
        refused = c.put(f"{BASE_2025}/initiatives/{sid}/score-sheet", json=sheet)
    assert refused.status_code == 403, refused.text
    assert refused.json()["type"].endswith("/merged_unit") and "sáp nhập" in refused.json()["detail_vi"]
    # The chair cannot put them back on it either (422 naming the field), and another member scores.
    with system.client("submissions", CHAIR_2025, tenant=TENANT_2025) as c:
        back = c.put(f"{BASE_2025}/initiatives/{sid}/reviewers", json={"add": ["c-06"], "remove": []})
    assert back.status_code == 422, back.text
    assert [(e["field"], e["code"]) for e in back.json()["errors"]] == [("add[0]", "merged_unit")]
    with system.client("submissions", "c-04", tenant=TENANT_2025) as c:
        ok = c.put(f"{BASE_2025}/initiatives/{sid}/score-sheet", json=sheet)
    assert ok.status_code == 200, ok.text

    # The ranking shows the secretariat the same exclusion; only c-04's sheet was written.
    with system.client("submissions", SECRETARIAT_2025, tenant=TENANT_2025) as c:
        ranking = c.get(f"{BASE_2025}/ranking").json()
    (entry,) = ranking["initiatives"]
    assert ranking["aggregate"] == "median" and entry["sheets"] == 1 and entry["score"] == 80.0
    assert [(e["member_id"], e["reason"]) for e in entry["excluded"]] == [("c-06", "merged_unit")]
    assert "c-06" not in {e["data"].get("member_id") for e in events_of(system, "initiative.scored")}
    # Nor does c-06 see its scores before the selection (another member does).
    with system.client("submissions", "c-06", tenant=TENANT_2025) as c:
        (theirs,) = c.get(f"{BASE_2025}/ranking").json()["initiatives"]
    assert theirs.get("hidden") is True and theirs["score"] is None
    with system.client("submissions", "c-10", tenant=TENANT_2025) as c:
        (other,) = c.get(f"{BASE_2025}/ranking").json()["initiatives"]
    assert other["score"] == 80.0 and not other.get("hidden")
