"""The secretariat's documents and participation through campaign's HTTP API, on PostgreSQL and NATS.

One campaign process, seeded with the 2023 edition: an HR list with a bad row writes nothing; a merge of two
units on 01/11/2023 keeps both units' history and shows the new unit from that day; editions are versioned;
each role sees what it may see.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from tests.support.campaign import SECRETARIAT, CampaignSystem, running_campaign
from tests.support.system import EDITION, SEED, TENANT
from tests.support.wait import eventually_sync

OFFICIAL = "p-0002"
DIRECTOR = "p-0003"
HEAD_TNN = "p-0007"  # unit head of Phòng Tài nguyên Nước, Khoáng sản
UNION_SECRETARY = "p-0022"  # Bí thư Chi đoàn (cd)

MERGE = (
    "Mã đơn vị;Ký hiệu;Tên đơn vị;Loại;Thay thế;Hiệu lực từ\n"
    "u-tnmb;TN-MB;Phòng Tài nguyên Nước, Biển và Khoáng sản;division;u-tnn-ks, u-tnb-bdkh;01/11/2023\n"
)
BAD_PEOPLE = (
    "Mã cán bộ,Họ và tên,Email,Chức vụ,Đơn vị,Vai trò\n"
    "p-0900,Võ Thị Hoa,hoa.vt@example.vn,Chuyên viên,TNN-KS,official\n"
    "p-0901,Ngô Văn Bình,binh.nv@,Chuyên viên,TNN-KS,official\n"
)


@pytest.fixture(scope="module")
def cs(test_servers: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[CampaignSystem]:
    import secrets

    with running_campaign(
        test_servers,
        tmp_path_factory.mktemp("campaign-docs"),
        "d" + secrets.token_hex(4),
        "2023-10-20T09:00:00+07:00",
    ) as system:
        yield system


def _directory_events(cs: CampaignSystem) -> int:
    return len(cs.outbox("directory.unit.changed")) + len(cs.outbox("directory.person.changed"))


def test_the_2023_seed_loads_the_assignments_the_directive_implies(cs: CampaignSystem) -> None:
    """DOMAIN.md's table, worked out from the seed directory here: one initiative per unit (the unions are not
    units), one experience report per official and unit head, the council's selection, six 90-day units."""
    seed = yaml.safe_load((SEED / "directory.yaml").read_text(encoding="utf-8"))
    unit_of_code = {u["code"]: u["id"] for u in seed["units"]}
    table = ["VP", "TNN-KS", "TNB-BDKH", "CCQLDD", "CCBVMT", "VPDKDD", "TTCNTT"]
    reporters = {p["id"] for p in seed["people"] if {"official", "unit_head"} & set(p.get("roles", []))}
    with cs.system.client("campaign", SECRETARIAT) as c:
        rows = c.get(f"/tenants/{TENANT}/editions/{EDITION}/assignments").json()
    by_part: dict[str, list[str]] = {}
    for r in rows:
        by_part.setdefault(r["part"], []).append(r["assignee_id"])
    assert sorted(by_part["initiative"]) == sorted(unit_of_code[c] for c in table)
    assert len(by_part["initiative"]) == 7
    assert sorted(by_part["experience"]) == sorted(reporters)
    assert by_part["selection"] == ["initiative-council"]
    assert sorted(by_part["online90"]) == sorted(unit_of_code[c] for c in table[1:])
    assert len(cs.outbox("assignment.created")) == len(rows)


def test_an_hr_list_with_a_malformed_email_is_refused_by_line_and_writes_nothing(cs: CampaignSystem) -> None:
    before = _directory_events(cs)
    with cs.system.client("campaign", OFFICIAL) as c:
        r = c.post(
            f"/tenants/{TENANT}/directory/import",
            content=BAD_PEOPLE.encode(),
            headers={"Content-Type": "text/csv"},
        )
        assert r.status_code == 403
    with cs.system.client("campaign", SECRETARIAT) as c:
        r = c.post(
            f"/tenants/{TENANT}/directory/import",
            content=BAD_PEOPLE.encode(),
            headers={"Content-Type": "text/csv"},
        )
        assert r.status_code == 422, r.text
        errors = r.json()["errors"]
        assert [(e["line"], e["field"]) for e in errors] == [(3, "email")]
        assert "thư điện tử" in errors[0]["message_vi"]
        people = c.get(f"/tenants/{TENANT}/people").json()
    assert "p-0900" not in {p["id"] for p in people}
    assert _directory_events(cs) == before


def test_a_merge_keeps_both_units_history_and_shows_the_new_unit_from_its_date(cs: CampaignSystem) -> None:
    with cs.system.client("campaign", SECRETARIAT) as c:
        r = c.post(f"/tenants/{TENANT}/directory/import", content=MERGE.encode(), params={"format": "csv"})
        assert r.status_code == 200, r.text
        on_30_10 = {u["id"] for u in c.get(f"/tenants/{TENANT}/units", params={"as_of": "2023-10-30"}).json()}
        on_01_11 = {u["id"] for u in c.get(f"/tenants/{TENANT}/units", params={"as_of": "2023-11-01"}).json()}
        assert {"u-tnn-ks", "u-tnb-bdkh"} <= on_30_10 and "u-tnmb" not in on_30_10
        assert "u-tnmb" in on_01_11 and not {"u-tnn-ks", "u-tnb-bdkh"} & on_01_11

        path = f"/tenants/{TENANT}/editions/{EDITION}/participation"
        then = {u["unit_id"]: u for u in c.get(path, params={"as_of": "2023-10-30"}).json()["units"]}
        later = {u["unit_id"]: u for u in c.get(path, params={"as_of": "2023-11-02"}).json()["units"]}
    assert "u-tnn-ks" in then and "u-tnb-bdkh" in then and "u-tnmb" not in then
    assert "u-tnmb" in later and "u-tnn-ks" not in later
    assert later["u-tnmb"]["assigned"] == then["u-tnn-ks"]["assigned"] + then["u-tnb-bdkh"]["assigned"]
    closed = [e["data"]["unit"] for e in cs.outbox("directory.unit.changed") if e["data"].get("unit")]
    assert any(u["id"] == "u-tnn-ks" and u["effective_to"] == "2023-10-31" for u in closed)


def test_each_role_sees_its_own_scope(cs: CampaignSystem) -> None:
    path = f"/tenants/{TENANT}/editions/{EDITION}/participation"
    with cs.system.client("campaign", DIRECTOR) as c:
        everything = c.get(path).json()
    with cs.system.client("campaign", HEAD_TNN) as c:
        own = c.get(path, params={"as_of": "2023-10-30"}).json()
    with cs.system.client("campaign", UNION_SECRETARY) as c:
        members = c.get(path).json()
    with cs.system.client("campaign", OFFICIAL) as c:
        assert c.get(path).status_code == 403
        own_rows = c.get(f"/tenants/{TENANT}/editions/{EDITION}/assignments").json()
    with cs.system.client("campaign", HEAD_TNN) as c:
        unit_rows = c.get(f"/tenants/{TENANT}/editions/{EDITION}/assignments").json()
    assert {r["assignee_id"] for r in own_rows} == {OFFICIAL}
    assert {r["unit_id"] for r in unit_rows} == {"u-tnn-ks"} and len(unit_rows) > 2
    assert everything["scope"] == "all" and len(everything["units"]) >= 9
    assert [u["unit_id"] for u in own["units"]] == ["u-tnn-ks"]
    assert "cd" in {u["union_id"] for u in members["unions"]}
    assert members["scope"] == "union:cd"
    total_cd = next(u for u in everything["unions"] if u["union_id"] == "cd")["assigned"]
    assert sum(p["assigned"] for p in members["parts"]) == total_cd


def test_an_edition_change_publishes_the_next_version_and_keeps_the_first(cs: CampaignSystem) -> None:
    base = f"/tenants/{TENANT}/editions"
    with cs.system.client("campaign", SECRETARIAT) as c:
        v1 = c.get(f"{base}/{EDITION}/versions/1", params={"format": "yaml"})
        assert v1.status_code == 200
        doc = yaml.safe_load(v1.text)
        bad = {**doc, "parts": [{**doc["parts"][0], "deadline": "2023-08-01"}, *doc["parts"][1:]]}
        r = c.post(
            base,
            content=yaml.safe_dump(bad, allow_unicode=True),
            headers={"Content-Type": "application/yaml"},
        )
        assert r.status_code == 422, r.text
        assert any("mở kỳ hội thi" in e["message_vi"] for e in r.json()["errors"])
        doc = c.get(f"{base}/{EDITION}/versions/1").json()
        doc["title"] = "Hội thi Cải cách hành chính năm 2023 (sửa đổi)"
        with cs.system.client("campaign", OFFICIAL) as other:
            assert other.post(base, json=doc).status_code == 403
        r = c.post(base, json=doc)
        assert r.status_code == 201, r.text
        assert r.json()["version"] == 2
        versions = [v["version"] for v in c.get(f"{base}/{EDITION}/versions").json()]
        assert versions == [1, 2]
        assert c.get(f"{base}/{EDITION}/versions/1").json()["title"] == "Hội thi Cải cách hành chính năm 2023"
        assert c.get(f"{base}/{EDITION}").json()["title"].endswith("(sửa đổi)")
    assert [e["data"]["version"] for e in cs.outbox("edition.published")] == [1, 2]


# The 90-day campaign fixture: two units, ten procedures, figures worked out by hand.
# TNN-KS: 6 procedures, 5 eligible for full-process, 3 of those offered full-process → 3/5 = 0.6;
#   dossiers: (100 received, 40 online, 95 on time) + (50, 35, 50) = 150, 75, 145 → 0.5 online, 145/150 on time.
# CCBVMT: 4 procedures, all eligible, all full-process → 1.0; dossiers 80, 60, 77 → 0.75 online, 77/80 on time.
# Department (pooled): 7 of 9 eligible full-process; 230 received, 135 online, 222 on time.
# Targets of the seed: 0.80 full-process, 0.50 online, 0.95 on time → TNN-KS misses full-process; CCBVMT reaches all.
TNN_PROCEDURES = [
    ("1.004227", "full_process", True),
    ("1.000494", "full_process", True),
    ("1.001234", "full_process", True),
    ("1.011442.000.00.00.H38", "partial", True),
    ("2.000123", "not_offered", True),
    ("1.009999", "partial", False),
]
BVMT_PROCEDURES = [
    ("1.010001", "full_process", True),
    ("1.010002", "full_process", True),
    ("1.010003", "full_process", True),
    ("1.010004", "full_process", True),
]


def _catalogue(items: list[tuple[str, str, bool]]) -> dict[str, Any]:
    return {
        "effective_from": "2023-08-21",
        "procedures": [
            {"code": c, "name": f"Thủ tục {c}", "level": lvl, "eligible_full_process": e}
            for c, lvl, e in items
        ],
    }


def _report(start: str, end: str, rows: list[tuple[str, int, int, int]]) -> dict[str, Any]:
    return {
        "period_start": start,
        "period_end": end,
        "procedures": [
            {"code": c, "dossiers_received": r, "dossiers_online": o, "dossiers_on_time": t}
            for c, r, o, t in rows
        ],
    }


def test_ninety_day_figures_equal_the_figures_worked_out_by_hand(cs: CampaignSystem) -> None:
    units = f"/tenants/{TENANT}/units"
    reports = f"/tenants/{TENANT}/editions/{EDITION}/units"
    with cs.system.client("campaign", HEAD_TNN) as head:
        assert head.put(f"{units}/u-tnn-ks/procedures", json=_catalogue(TNN_PROCEDURES)).status_code == 200
        assert head.put(f"{units}/u-ccbvmt/procedures", json=_catalogue(BVMT_PROCEDURES)).status_code == 403
        bad = _report("2023-08-21", "2023-09-20", [("1.004227", 10, 11, 10)])
        r = head.post(f"{reports}/u-tnn-ks/progress-reports", json=bad)
        assert r.status_code == 422 and "vượt" in r.text
        for body in (
            _report("2023-08-21", "2023-09-20", [("1.004227", 60, 20, 57), ("1.011442", 40, 20, 38)]),
            _report("2023-09-21", "2023-10-20", [("1.000494", 50, 35, 50)]),
        ):
            r = head.post(f"{reports}/u-tnn-ks/progress-reports", json=body)
            assert r.status_code == 201, r.text
    with cs.system.client("campaign", SECRETARIAT) as c:
        assert c.put(f"{units}/u-ccbvmt/procedures", json=_catalogue(BVMT_PROCEDURES)).status_code == 200
        r = c.post(
            f"{reports}/u-ccbvmt/progress-reports",
            json=_report("2023-08-21", "2023-10-20", [("1.010001", 30, 20, 30), ("1.010002", 50, 40, 47)]),
        )
        assert r.status_code == 201, r.text
        progress = c.get(f"/tenants/{TENANT}/editions/{EDITION}/online-services").json()
    by_unit = {u["unit_id"]: u for u in progress["units"]}
    tnn, bvmt = by_unit["u-tnn-ks"]["figures"], by_unit["u-ccbvmt"]["figures"]
    assert tnn["full_process_share_of_eligible"] == pytest.approx(3 / 5)
    assert tnn["online_dossier_share"] == pytest.approx(75 / 150)
    assert tnn["on_time_share"] == pytest.approx(145 / 150)
    assert bvmt == pytest.approx(
        {"full_process_share_of_eligible": 1.0, "online_dossier_share": 0.75, "on_time_share": 77 / 80}
    )
    dept = progress["department"]["figures"]
    assert dept == pytest.approx(
        {
            "full_process_share_of_eligible": 7 / 9,
            "online_dossier_share": 135 / 230,
            "on_time_share": 222 / 230,
        }
    )
    assert by_unit["u-tnn-ks"]["unmet"] == ["full_process_share_of_eligible"]
    assert by_unit["u-ccbvmt"]["unmet"] == []
    assert len(cs.outbox("onlineservice.progress.reported")) == 3
    assert len(cs.outbox("procedure.catalogue.changed")) == 2

    # The campaign ends before 19/11/2023 00:00 +07:00: one result per unit, decided once by the clock.
    cs.freeze("2023-11-19T00:00:00+07:00")
    results = eventually_sync(
        lambda: (
            len(cs.outbox("onlineservice.target.reached") + cs.outbox("onlineservice.target.missed")) == 6
            and cs.outbox("onlineservice.target.reached") + cs.outbox("onlineservice.target.missed")
        ),
        timeout=15,
        message="campaign results",
    )
    outcome = {e["data"]["unit_id"]: e["type"] for e in results}
    assert outcome["u-ccbvmt"] == "onlineservice.target.reached"
    assert outcome["u-tnn-ks"] == "onlineservice.target.missed"


def test_a_chi_doan_imported_under_the_doan_rolls_its_members_up_the_union_tree(cs: CampaignSystem) -> None:
    path = f"/tenants/{TENANT}/editions/{EDITION}/participation"
    as_of = {"as_of": "2023-11-15"}

    def unions(caller: str) -> dict[str, int]:
        with cs.system.client("campaign", caller) as c:
            r = c.get(path, params=as_of)
            assert r.status_code == 200, r.text
            return {u["union_id"]: u["assigned"] for u in r.json()["unions"]}

    before = unions(DIRECTOR)
    imports = f"/tenants/{TENANT}/directory/import"
    chi_doan = "Mã;Tên;Loại;Cấp trên\ncd-cn1;Chi đoàn Chi nhánh Văn phòng Đăng ký đất đai;Chi đoàn;cd\n"
    joined = (
        "Mã cán bộ,Họ và tên,Email,Chức vụ,Đơn vị,Vai trò,Đoàn thể,Hiệu lực từ\n"
        f"{OFFICIAL},Trần Văn Minh,minh.tv@example.vn,Chuyên viên,VPDKDD-CN1,official,cd-cn1;cdcs,01/11/2023\n"
    )
    with cs.system.client("campaign", SECRETARIAT) as c:
        for body in (chi_doan, joined):
            r = c.post(imports, content=body.encode(), headers={"content-type": "text/csv"})
            assert r.status_code == 200, r.text
    after = unions(DIRECTOR)
    # Trần Văn Minh left cd for its new Chi đoàn: he counts there and, through the tree, still in cd.
    assert after["cd-cn1"] >= 1
    assert after["cd"] == before["cd"] and after["cdcs"] == before["cdcs"]
    # cd's secretary still sees him (a member of a Chi đoàn below cd).
    assert unions(UNION_SECRETARY)["cd-cn1"] == after["cd-cn1"]


HEAD_VPDKDD = "p-0018"  # Giám đốc Văn phòng Đăng ký đất đai: unit u-vpdkdd, branches u-vpdkdd-cn1 and cn2
NHUNG = "p-0025"  # an official of the branch u-vpdkdd-cn1, whose record no test here changes


def _people(cs: CampaignSystem, caller: str) -> dict[str, dict[str, Any]]:
    with cs.system.client("campaign", caller) as c:
        r = c.get(f"/tenants/{TENANT}/people")
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    return {p["id"]: p for p in r.json()}


def test_each_role_sees_only_the_personal_data_its_work_needs(cs: CampaignSystem) -> None:
    """Decree 13/2023: an official sees others' names, titles and units (and all of their own); a unit head the
    e-mail of their unit and its branches; the secretariat everything; the director's directory has no one
    else's e-mail, date of birth or qualification."""
    seen = _people(cs, NHUNG)
    me, colleague, other = seen[NHUNG], seen[OFFICIAL], seen["p-0008"]
    assert me["email"] == "nhung.lth@example.vn" and me["date_of_birth"] == "1997-07-07"
    assert (other["name"], other["title"], other["unit"]) == ("Lý Thị Mỹ Linh", "Chuyên viên", "u-tnn-ks")
    for p in (colleague, other):
        assert p["email"] is None and p["date_of_birth"] is None and p["qualification"] is None

    seen = _people(cs, HEAD_VPDKDD)
    assert seen[NHUNG]["email"] == "nhung.lth@example.vn"  # a branch of the head's unit
    assert seen["p-0019"]["email"] == "tu.dtc@example.vn" and seen["p-0019"]["date_of_birth"] is None
    assert seen["p-0008"]["email"] is None

    seen = _people(cs, SECRETARIAT)
    assert seen["p-0008"]["email"] == "linh.ltm@example.vn"
    assert (seen["p-0008"]["date_of_birth"], seen["p-0008"]["qualification"]) == (
        "1993-04-18",
        "Kỹ sư Địa chất",
    )

    for who, full in ((SECRETARIAT, True), (DIRECTOR, False)):
        with cs.system.client("campaign", who) as c:
            r = c.get(f"/tenants/{TENANT}/directory")
            y = c.get(f"/tenants/{TENANT}/directory", params={"format": "yaml"})
        assert r.headers["cache-control"] == y.headers["cache-control"] == "no-store"
        linh = next(p for p in r.json()["people"] if p["id"] == "p-0008")
        assert (linh["email"] == "linh.ltm@example.vn") is full
        assert (linh["date_of_birth"] == "1993-04-18") is full
        assert ("1993-04-18" in y.text) is full and ("linh.ltm@example.vn" in y.text) is full


def test_person_facts_carry_no_date_of_birth_or_qualification(cs: CampaignSystem) -> None:
    """The stream keeps facts for years: only campaign's directory holds dates of birth and qualifications."""
    facts = cs.outbox("directory.person.changed")
    assert facts and all(f["dataschemaversion"] == 2 for f in facts)
    assert not any({"date_of_birth", "qualification"} & set(f["data"]["person"]) for f in facts)
    assert any(f["data"]["person"]["email"] == "linh.ltm@example.vn" for f in facts)
    with cs.system.client("campaign", SECRETARIAT) as c:  # campaign itself still has them
        linh = next(p for p in c.get(f"/tenants/{TENANT}/people").json() if p["id"] == "p-0008")
    assert linh["date_of_birth"] == "1993-04-18"


# Per procedure: Trung tâm Công nghệ thông tin (u-ttcntt, its head p-0021), a unit no other test here reports for.
# Its first list (from 21/08/2023) has 1.010101 (full process), 1.010102 (partial) and 1.010103 (not offered, not
# eligible); a second list from 01/09/2023 drops 1.010103 and adds 1.010104 (full process). Two reports:
#   21/08–27/08: 1.010101 10 received, 6 online, 9 on time; 1.010103 4, 0, 4;
#   04/09–10/09: 1.010101 20, 14, 20; 1.010102 (sent in its provincial long form) 5, 1, 4.
# As of 31/08/2023 12:00 the first list and the first report count; today, the second list and both reports,
# 1.010103's dossiers shown apart (no longer listed) so the rows add up to the unit's 39 dossiers.
HEAD_TTCNTT = "p-0021"
TTCNTT_FIRST = [
    ("1.010101", "full_process", True),
    ("1.010102", "partial", True),
    ("1.010103", "not_offered", False),
]
TTCNTT_SECOND = [
    ("1.010101", "full_process", True),
    ("1.010102", "partial", True),
    ("1.010104", "full_process", True),
]


def test_a_units_figures_per_procedure_follow_its_catalogue_and_reports_as_of_a_moment(
    cs: CampaignSystem,
) -> None:
    """Runs after the hand-worked figures test (that test counts the outbox's catalogue and report events)."""
    units = f"/tenants/{TENANT}/units"
    editions = f"/tenants/{TENANT}/editions/{EDITION}"
    path = f"{editions}/units/u-ttcntt/online-services"
    with cs.system.client("campaign", HEAD_TTCNTT) as head:
        for items, day in ((TTCNTT_FIRST, "2023-08-21"), (TTCNTT_SECOND, "2023-09-01")):
            r = head.put(f"{units}/u-ttcntt/procedures", json=dict(_catalogue(items), effective_from=day))
            assert r.status_code == 200, r.text
        for body in (
            _report("2023-08-21", "2023-08-27", [("1.010101", 10, 6, 9), ("1.010103", 4, 0, 4)]),
            _report(
                "2023-09-04", "2023-09-10", [("1.010101", 20, 14, 20), ("1.010102.000.00.00.H38", 5, 1, 4)]
            ),
        ):
            r = head.post(f"{editions}/units/u-ttcntt/progress-reports", json=body)
            assert r.status_code == 201, r.text

        # As of 31/08/2023 12:00: the first list, the first report only (the second's period had not begun).
        r = head.get(path, params={"as_of": "2023-08-31T12:00:00"})
        assert r.status_code == 200, r.text
        early = r.json()
    assert early["unit_name"] == "Trung tâm Công nghệ thông tin Tài nguyên và Môi trường"
    assert early["as_of"] == "2023-08-31T12:00:00+07:00"
    assert early["catalogue_from"] == "2023-08-21T00:00:00+07:00"
    rows = {p["code"]: p for p in early["procedures"]}
    assert list(rows) == ["1.010101", "1.010102", "1.010103"]
    assert rows["1.010101"]["name"] == "Thủ tục 1.010101" and rows["1.010101"]["level"] == "full_process"
    assert (rows["1.010103"]["level"], rows["1.010103"]["eligible_full_process"]) == ("not_offered", False)
    counts = {
        c: (p["dossiers_received"], p["dossiers_online"], p["dossiers_on_time"]) for c, p in rows.items()
    }
    assert counts == {"1.010101": (10, 6, 9), "1.010102": (0, 0, 0), "1.010103": (4, 0, 4)}
    assert rows["1.010101"]["online_dossier_share"] == pytest.approx(0.6)
    assert rows["1.010101"]["on_time_share"] == pytest.approx(0.9)
    assert rows["1.010102"]["online_dossier_share"] is None  # nothing received: no share, not 0 %
    assert early["not_in_catalogue"] == []
    assert (early["full_process"], early["eligible"], early["dossiers_received"]) == (1, 2, 14)
    assert early["figures"]["full_process_share_of_eligible"] == pytest.approx(0.5)

    # Today (the module's frozen clock, after both periods): the second list; 1.010103 apart, still counted.
    with cs.system.client("campaign", SECRETARIAT) as c:
        today = c.get(path).json()
        per_unit = c.get(f"{editions}/online-services").json()
    rows = {p["code"]: p for p in today["procedures"]}
    counts = {
        c: (p["dossiers_received"], p["dossiers_online"], p["dossiers_on_time"]) for c, p in rows.items()
    }
    assert counts == {"1.010101": (30, 20, 29), "1.010102": (5, 1, 4), "1.010104": (0, 0, 0)}
    assert rows["1.010102"]["online_dossier_share"] == pytest.approx(0.2)
    (gone,) = today["not_in_catalogue"]
    assert (gone["code"], gone["name"], gone["dossiers_received"], gone["on_time_share"]) == (
        "1.010103",
        "Thủ tục 1.010103",
        4,
        1.0,
    )
    unit = next(u for u in per_unit["units"] if u["unit_id"] == "u-ttcntt")
    assert today["dossiers_received"] == unit["dossiers_received"] == 39
    assert today["figures"] == unit["figures"] and today["unmet"] == unit["unmet"]
    assert today["figures"]["online_dossier_share"] == pytest.approx(21 / 39)
    assert today["figures"]["full_process_share_of_eligible"] == pytest.approx(2 / 3)

    # Before the campaign and the first list: nothing listed, nothing counted.
    with cs.system.client("campaign", DIRECTOR) as c:
        r = c.get(path, params={"as_of": "2023-08-20T23:59:59+07:00"})
        assert r.status_code == 200, r.text
        assert (r.json()["procedures"], r.json()["catalogue_from"], r.json()["dossiers_received"]) == (
            [],
            None,
            0,
        )

        # Clear refusals, in Vietnamese: a date that is none, a unit that is none, a unit not in the campaign.
        r = c.get(path, params={"as_of": "31/02/2023"})
        assert r.status_code == 422
        (err,) = r.json()["errors"]
        assert err["field"] == "as_of" and "Phải là thời điểm dạng YYYY-MM-DD" in err["message_vi"]
        r = c.get(f"{editions}/units/u-khong-co/online-services")
        assert r.status_code == 404 and r.json()["detail_vi"] == "Không có đơn vị 'u-khong-co' trong danh bạ."
        r = c.get(f"{editions}/units/u-vp/online-services")
        assert r.status_code == 404 and "không được giao Chiến dịch 90 ngày" in r.json()["detail_vi"]

    # Who may read it: the secretariat and the director (above), the unit's own head; not another unit's head,
    # not an official.
    for who in (HEAD_TNN, OFFICIAL):
        with cs.system.client("campaign", who) as c:
            r = c.get(path)
        assert r.status_code == 403, (who, r.text)
        assert "thủ trưởng của đơn vị" in r.json()["detail_vi"]
