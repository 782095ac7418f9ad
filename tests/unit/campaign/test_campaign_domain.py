"""Campaign's pure rules: the deadline clock's decisions, the directory lists HR keeps, editions, participation."""

from __future__ import annotations

import io
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest

from services.campaign import domain
from services.campaign.domain import directory_io
from services.campaign.domain import documents as domain_documents
from services.campaign.domain.directory_io import DirectoryImportError
from shared.documents import load_directory

SEED = Path(__file__).resolve().parents[3] / "deploy" / "seed" / "soctrang-stnmt-2023"
DEADLINE = datetime.fromisoformat("2023-10-26T00:00:00+07:00")
OFFSETS = [("P7D", timedelta(days=7)), ("P3D", timedelta(days=3)), ("P1D", timedelta(days=1))]


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


# ------------------------------------------------------------------------------------------ deadline clock


def test_reminder_is_the_latest_offset_already_due() -> None:
    assert domain.reminder_due(DEADLINE, OFFSETS, at("2023-10-18T23:59:59+07:00")) is None
    assert domain.reminder_due(DEADLINE, OFFSETS, at("2023-10-19T00:00:00+07:00")) == "P7D"
    assert domain.reminder_due(DEADLINE, OFFSETS, at("2023-10-24T08:00:00+07:00")) == "P3D"
    assert domain.reminder_due(DEADLINE, OFFSETS, at("2023-10-25T23:59:59.999999+07:00")) == "P1D"


def test_no_reminder_at_or_after_the_deadline_even_after_a_catch_up() -> None:
    assert domain.reminder_due(DEADLINE, OFFSETS, DEADLINE) is None
    assert domain.reminder_due(DEADLINE, OFFSETS, at("2023-10-27T09:00:00+07:00")) is None


def test_misses_wait_for_the_deadline_the_intake_and_every_on_time_receipt() -> None:
    just_before = at("2023-10-25T23:59:59.999999+07:00")
    assert domain.decision_ready(just_before, DEADLINE, 3, 3) == "open"
    assert domain.decision_ready(DEADLINE, DEADLINE, None, 3) == "waiting_for_intake"
    assert domain.decision_ready(DEADLINE, DEADLINE, 3, 2) == "waiting_for_receipts"
    assert domain.decision_ready(DEADLINE, DEADLINE, 3, 3) == "ready"
    assert domain.decision_ready(DEADLINE, DEADLINE, 3, 4) == "ready"


def test_an_extended_assignee_is_not_missed_at_the_official_deadline() -> None:
    later = at("2023-10-29T00:00:00+07:00")
    rows = [
        domain.ClockAssignment("a1", "p1", "u1", DEADLINE, None, False),
        domain.ClockAssignment("a2", "p2", "u1", DEADLINE, later, False),
        domain.ClockAssignment("a3", "p3", "u2", DEADLINE, None, True),
    ]
    assert [a.id for a in domain.missed_at(rows, DEADLINE)] == ["a1"]
    assert [a.id for a in domain.missed_at(rows, later)] == ["a2"]
    assert domain.missed_by_unit(domain.missed_at(rows, DEADLINE)) == {"u1": ["p1"]}


def test_miss_ids_are_per_deadline_in_force() -> None:
    first = domain.miss_id("t", "2023", "a1", DEADLINE)
    assert first == domain.miss_id("t", "2023", "a1", DEADLINE.astimezone(tz=None))
    assert first != domain.miss_id("t", "2023", "a1", at("2023-10-29T00:00:00+07:00"))


# ------------------------------------------------------------------------------------------ directory lists

PEOPLE_CSV = """Mã cán bộ,Họ và tên,Email,Chức vụ,Đơn vị,Vai trò,Đoàn thể,Hiệu lực từ
p-0900,Võ Thị Hoa,hoa.vt@example.vn,Chuyên viên,TNN-KS,official,cdcs,01/11/2023
p-0901,Ngô Văn Bình,binh.nv@,Chuyên viên,TNN-KS,official,,01/11/2023
p-0902,Lý Văn Cường,cuong@example.vn,Chuyên viên,KHONG-CO,official,,01/11/2023
"""


def test_a_csv_row_with_a_malformed_email_is_reported_by_line_and_nothing_is_read() -> None:
    current = load_directory(SEED / "directory.yaml")
    with pytest.raises(DirectoryImportError) as err:
        directory_io.read(PEOPLE_CSV.encode(), "people.csv", current)
    lines = {(e.line, e.field) for e in err.value.errors}
    assert lines == {(3, "email"), (4, "unit")}
    assert "thư điện tử" in next(e.message_vi for e in err.value.errors if e.line == 3)


def test_a_move_is_a_new_row_from_a_date_and_the_old_row_is_kept() -> None:
    current = load_directory(SEED / "directory.yaml")
    moved = "id,name,email,title,unit,roles,effective_from\np-0002,Trần Văn Minh,minh.tv@example.vn,Chuyên viên,TNN-KS,official,2023-11-01\n"
    d = directory_io.read(moved.encode(), "people.csv", current)
    assert d.person("p-0002", date(2023, 10, 31)).unit == "u-vpdkdd-cn1"
    assert d.person("p-0002", date(2023, 11, 1)).unit == d.unit_by_code("TNN-KS").id


def _merge_two_units(current: object) -> object:
    units = (
        "Mã đơn vị;Ký hiệu;Tên đơn vị;Loại;Thay thế;Hiệu lực từ\n"
        "u-tnmb;TN-MB;Phòng Tài nguyên Nước, Biển và Khoáng sản;division;u-tnn-ks, u-tnb-bdkh;01/11/2023\n"
    )
    return directory_io.read(units.encode(), "units.csv", current)  # type: ignore[arg-type]


def test_a_merge_closes_both_units_the_day_before_and_keeps_them() -> None:
    current = load_directory(SEED / "directory.yaml")
    old = {current.unit_by_code("TNN-KS").id, current.unit_by_code("TNB-BDKH").id}
    assert old == {"u-tnn-ks", "u-tnb-bdkh"}
    d = _merge_two_units(current)
    on_30_10 = {u.id for u in d.units_as_of(date(2023, 10, 30))}  # type: ignore[attr-defined]
    on_01_11 = {u.id for u in d.units_as_of(date(2023, 11, 1))}  # type: ignore[attr-defined]
    assert old <= on_30_10 and "u-tnmb" not in on_30_10
    assert "u-tnmb" in on_01_11 and not old & on_01_11
    assert {u.id for u in d.units} >= old  # type: ignore[attr-defined]


def test_an_xlsx_list_reads_like_a_csv() -> None:
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.append(["Mã cán bộ", "Họ và tên", "Email", "Chức vụ", "Đơn vị", "Vai trò", "Ngày sinh"])
    ws.append(
        ["p-0950", "Đỗ Thị Mai", "mai.dt@example.vn", "Chuyên viên", "VP", "official", datetime(1990, 5, 1)]
    )
    ws.append(["p-0951", "Hồ Văn Tâm", "tam@example", "Chuyên viên", "VP", "official", None])
    buf = io.BytesIO()
    wb.save(buf)
    current = load_directory(SEED / "directory.yaml")
    with pytest.raises(DirectoryImportError) as err:
        directory_io.read(buf.getvalue(), "hr.xlsx", current)
    assert [(e.line, e.field) for e in err.value.errors] == [(3, "email")]


def test_a_unions_list_adds_a_chi_doan_under_its_parent_and_people_can_join_it() -> None:
    current = load_directory(SEED / "directory.yaml")
    header = "Mã;Tên;Loại;Cấp trên;Bí thư/Chủ tịch\n"
    with_secretary = header + "cd-vpdk;Chi đoàn Văn phòng Đăng ký đất đai;Chi đoàn;cd;p-0002\n"
    # A secretary who is not (yet) a member is refused, and nothing is read.
    with pytest.raises(DirectoryImportError) as err:
        directory_io.read(with_secretary.encode(), "doan-the.csv", current)
    assert "not a member" in str(err.value)
    unions = (
        header + "cd-vpdk;Chi đoàn Văn phòng Đăng ký đất đai;Chi đoàn;cd;\n"
        "cdcs-vpdk;Công đoàn bộ phận Văn phòng Đăng ký đất đai;Công đoàn;cdcs;\n"
    )
    d = directory_io.read(unions.encode(), "doan-the.csv", current)
    added = {u.id: u for u in d.unions}
    assert added["cd-vpdk"].kind == "youth_union" and added["cd-vpdk"].parent == "cd"
    assert added["cdcs-vpdk"].kind == "trade_union"
    assert {u.id for u in current.unions} < set(added)
    joined = "id,name,email,title,unit,roles,unions\np-0002,Trần Văn Minh,minh.tv@example.vn,Chuyên viên,VPDKDD-CN1,official,cd-vpdk\n"
    d2 = directory_io.read(joined.encode(), "people.csv", d)
    assert d2.person("p-0002", date(2023, 11, 1)).unions == ["cd-vpdk"]
    d3 = directory_io.read(with_secretary.encode(), "doan-the.csv", d2)
    assert {u.id: u for u in d3.unions}["cd-vpdk"].secretary == "p-0002"


def test_a_unions_list_with_a_bad_row_is_reported_by_line() -> None:
    current = load_directory(SEED / "directory.yaml")
    unions = "Mã;Tên;Loại\ncd-a;Chi đoàn A;Chi đoàn\ncd-b;;Chi đoàn\n"
    with pytest.raises(DirectoryImportError) as err:
        directory_io.read(unions.encode(), "doan-the.csv", current)
    assert [(e.line, e.field) for e in err.value.errors] == [(3, "name")]


# ------------------------------------------------------------------------------------------ editions

EDITION = (SEED / "edition.yaml").read_text(encoding="utf-8")


def test_an_edition_with_a_deadline_before_its_opening_is_refused() -> None:
    bad = EDITION.replace("deadline: 2023-10-25", "deadline: 2023-08-01", 1)
    with pytest.raises(DirectoryImportError) as err:
        domain_documents.parse_edition(bad)
    assert any("sau ngày mở kỳ hội thi" in e.message_vi for e in err.value.errors)


def test_a_part_with_no_assignees_is_refused() -> None:
    import yaml

    doc = yaml.safe_load(EDITION)
    doc["parts"][0]["assignees"] = {}
    with pytest.raises(DirectoryImportError) as err:
        domain_documents.parse_edition(yaml.safe_dump(doc, allow_unicode=True))
    assert any("đối tượng được giao" in e.message_vi for e in err.value.errors)


# ------------------------------------------------------------------------------------------ participation


def test_participation_as_of_a_moment_by_business_time() -> None:
    ch = domain.StatusChange
    late = domain.AssignmentFacts(
        "a1", "experience", "p1", "u1", (ch(at("2023-10-27T10:00:00+07:00"), True, False),), (DEADLINE,)
    )
    on_time = domain.AssignmentFacts(
        "a2", "experience", "p2", "u1", (ch(at("2023-10-20T10:00:00+07:00"), True, True),)
    )
    ext = domain.AssignmentFacts("a3", "experience", "p3", "u2", (), (), (at("2023-10-24T10:00:00+07:00"),))
    before = domain.tally([late, on_time, ext], at("2023-10-23T00:00:00+07:00"), lambda f: f.unit_id)
    assert before["u1"] == {**dict.fromkeys(domain.STANDINGS, 0), "assigned": 2, "fulfilled": 1, "open": 1}
    after = domain.tally([late, on_time, ext], at("2023-10-28T00:00:00+07:00"), lambda f: f.unit_id)
    assert after["u1"]["fulfilled_late"] == 1 and after["u1"]["fulfilled"] == 1
    assert after["u2"]["extended"] == 1
    missed_then = domain.tally([late], at("2023-10-26T12:00:00+07:00"), lambda f: f.part)
    assert missed_then["experience"]["missed"] == 1


def test_participation_as_of_folds_withdrawals_and_reinstatements_in_business_time() -> None:
    def report(aid: str, reopened: str, fulfilled_again: str) -> domain.AssignmentFacts:
        """Received on time on 20/10, reopened on ``reopened``, fulfilled (on time) again on ``fulfilled_again``."""
        changes = (
            domain.StatusChange(at("2023-10-20T10:00:00+07:00"), True, True),
            domain.StatusChange(at(reopened), False),
            domain.StatusChange(at(fulfilled_again), True, True),
        )
        return domain.AssignmentFacts(aid, "experience", f"p-{aid}", "u1", changes)

    # withdrawn 22/10 and submitted again 24/10; rejected 21/10 and reinstated 23/10
    resubmitted = report("a1", "2023-10-22T08:00:00+07:00", "2023-10-24T08:00:00+07:00")
    reinstated = report("a2", "2023-10-21T08:00:00+07:00", "2023-10-23T08:00:00+07:00")

    def counts(day: str) -> tuple[int, int]:
        t = domain.tally([resubmitted, reinstated], at(day), lambda f: f.unit_id)["u1"]
        return t["fulfilled"], t["open"]

    assert counts("2023-10-20T12:00:00+07:00") == (2, 0)
    assert counts("2023-10-21T12:00:00+07:00") == (1, 1)
    assert counts("2023-10-22T12:00:00+07:00") == (0, 2)
    assert counts("2023-10-23T12:00:00+07:00") == (1, 1)
    assert counts("2023-10-25T12:00:00+07:00") == (2, 0)


def test_ninety_day_figures_of_two_units_and_ten_procedures_by_hand() -> None:
    c = domain.CatalogueEntry
    unit_a = [
        c("1.000001", "full_process", True),
        c("1.000002", "full_process", True),
        c("1.000003", "full_process", True),
        c("1.000004", "partial", True),
        c("1.000005", "not_offered", True),
        c("1.000006", "partial", False),
    ]
    unit_b = [c(f"2.00000{i}", "full_process", True) for i in range(1, 5)]
    dossiers_a = [domain.DossierCount("1.000001", 100, 40, 95), domain.DossierCount("1.000002", 50, 35, 50)]
    dossiers_b = [domain.DossierCount("2.000001", 80, 60, 77)]
    targets = {"full_process_share_of_eligible": 0.8, "online_dossier_share": 0.5, "on_time_share": 0.95}
    a = domain.campaign_figures(unit_a, dossiers_a)
    assert a == pytest.approx(
        {"full_process_share_of_eligible": 0.6, "online_dossier_share": 0.5, "on_time_share": 145 / 150}
    )
    assert domain.unmet_targets(a, targets) == ["full_process_share_of_eligible"]
    b = domain.campaign_figures(unit_b, dossiers_b)
    assert domain.unmet_targets(b, targets) == []
    dept = domain.campaign_figures(unit_a + unit_b, dossiers_a + dossiers_b)
    assert dept == pytest.approx(
        {
            "full_process_share_of_eligible": 7 / 9,
            "online_dossier_share": 135 / 230,
            "on_time_share": 222 / 230,
        }
    )
    assert domain.unmet_targets(domain.campaign_figures([], []), targets) == list(targets)
