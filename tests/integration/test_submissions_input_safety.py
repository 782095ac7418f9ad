"""Input that would poison what comes after (issue 14, points 4, 5 and 8) is refused at the HTTP edge, through
the running services: control characters (422 naming the field), decomposed Vietnamese stored in NFC,
formula-like text exported as text, uploads checked by structure and name, the number of files capped, and
co-authors counted only once they confirm."""

from __future__ import annotations

import csv
import io
import secrets
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from shared.settings import SERVICES
from tests.support.system import EDITION, TENANT, System

BASE = f"/tenants/{TENANT}/editions/{EDITION}"
HEAD = "p-0001"  # unit head of Văn phòng Sở
SECRETARIAT = "p-0004"
PDF = b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n"
ELF = b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 56


@pytest.fixture(scope="module")
def system(test_servers: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    work: Path = tmp_path_factory.mktemp("input-safety")
    dbs = {s: test_servers.create_database(s) for s in SERVICES}
    sys_ = System(
        nats_url=test_servers.nats_url,
        prefix="s" + secrets.token_hex(4),
        workdir=work,
        database_urls=dbs,
        services=("campaign", "submissions"),
    )
    try:
        sys_.start()
        yield sys_
    finally:
        sys_.stop()


def _body(**over: Any) -> dict[str, Any]:
    return {
        "title": "Số hoá sổ theo dõi văn bản đến",
        "authors": [{"person_id": HEAD, "share": 100}],
        "field_of_application": "Cải cách thủ tục hành chính",
        "existing_solution": "Sổ giấy.",
        "existing_weaknesses": "Khó tra cứu.",
        "new_solution": "Sổ điện tử.",
        "novelty": "Lần đầu áp dụng tại Sở.",
        "applicability": "Toàn tỉnh.",
        "benefits": "Nhanh hơn.",
        "benefits_kind": "actual",
        "submit": True,
        **over,
    }


def test_poisoned_text_is_refused_and_formulas_export_as_text(system: System) -> None:
    with system.client("submissions", HEAD) as c:
        bad = c.post(f"{BASE}/initiatives", json=_body(new_solution="Nội dung\u0000ẩn"))
        assert bad.status_code == 422, bad.text
        (err,) = bad.json()["errors"]
        assert err["field"] == "new_solution" and "ký tự điều khiển" in err["message_vi"]
        assert c.get(f"{BASE}/initiatives").json() == []  # nothing written

        nfd = unicodedata.normalize("NFD", "Ứng dụng chữ ký số")
        ok = c.post(f"{BASE}/initiatives", json=_body(title='=HYPERLINK("http://x.test","Bấm")', novelty=nfd))
        assert ok.status_code == 201, ok.text
        sid = ok.json()["submission_id"]
        assert c.get(f"{BASE}/initiatives/{sid}").json()["novelty"] == "Ứng dụng chữ ký số"  # NFC

    with system.client("submissions", SECRETARIAT) as c:
        x = c.get(f"{BASE}/exports/submissions.xlsx")
        assert x.status_code == 200
        ws = openpyxl.load_workbook(io.BytesIO(x.content)).active
        header = [cell.value for cell in ws[1]]
        title = ws.cell(row=2, column=header.index("Tên sáng kiến") + 1)
        assert title.value == '=HYPERLINK("http://x.test","Bấm")' and title.data_type == "s"
        text = c.get(f"{BASE}/exports/submissions.csv").content.decode("utf-8-sig")
        (row,) = list(csv.DictReader(io.StringIO(text)))
        assert row["Tên sáng kiến"].startswith("'=")

    # ---- uploads: structure, name, count
    with system.client("submissions", HEAD) as c:
        url = f"{BASE}/initiatives/{sid}/attachments"
        glued = c.post(url, params={"filename": "ho-so.pdf"}, content=b"%PDF-1.7\n" + ELF + b"\n%%EOF\n")
        assert glued.status_code == 415 and glued.json()["detail_vi"], glued.text
        for name in ("a\u0000.pdf", "../../etc/x.pdf", "thu-muc\\x.pdf"):
            r = c.post(url, params={"filename": name}, content=PDF)
            assert r.status_code == 422 and r.json()["errors"][0]["field"] == "filename", (name, r.text)
        for i in range(10):  # the edition's default: ten files per initiative
            r = c.post(url, params={"filename": f"phu-luc-{i}.pdf"}, content=PDF + str(i).encode())
            assert r.status_code == 201, (i, r.text)
        over = c.post(url, params={"filename": "phu-luc-10.pdf"}, content=PDF)
        assert over.status_code == 413 and "10 tệp" in over.json()["detail_vi"]
        assert len(c.get(f"{BASE}/initiatives/{sid}").json()["attachments"]) == 10


def test_an_authors_date_of_birth_is_shown_to_that_author_and_the_secretariat_only(system: System) -> None:
    """Decree 13/2023 (``shared.privacy``): the initiative form needs each author's date of birth and
    qualification, given in the form (no directory copy keeps them); a co-author reads their own, the
    submitter their own and the outside co-author's they typed, the secretariat all."""
    head, official = "p-0007", "p-0008"  # Trương Văn Đức (unit head) and Lý Thị Mỹ Linh, Phòng TNN-KS
    authors = [
        {"person_id": head, "share": 50, "date_of_birth": "1975-05-05", "qualification": "Thạc sĩ Luật"},
        {"person_id": official, "share": 30, "date_of_birth": "1993-04-18"},
        {"name": "Trần Thị Ngoài", "share": 20, "date_of_birth": "1980-01-01", "workplace": "UBND xã"},
    ]
    with system.client("submissions", head) as c:
        r = c.post(f"{BASE}/initiatives", json=_body(title="Sổ tay số", authors=authors, submit=False))
        assert r.status_code == 201, r.text
        sid = r.json()["submission_id"]

    def born(caller: str) -> list[str | None]:
        with system.client("submissions", caller) as c:
            one = c.get(f"{BASE}/initiatives/{sid}")
            listed = next(i for i in c.get(f"{BASE}/initiatives").json() if i["submission_id"] == sid)
        assert one.status_code == 200, one.text
        assert one.headers["cache-control"] == "no-store"
        assert listed["authors"] == one.json()["authors"]
        return [a["date_of_birth"] for a in one.json()["authors"]]

    assert born(head) == ["1975-05-05", None, "1980-01-01"]
    assert born(official) == [None, "1993-04-18", None]
    assert born(SECRETARIAT) == ["1975-05-05", "1993-04-18", "1980-01-01"]
    with system.client("submissions", official) as c:
        first = c.get(f"{BASE}/initiatives/{sid}").json()["authors"][0]
    assert first["name"] == "Trương Văn Đức" and first["qualification"] is None
    with system.client("submissions", SECRETARIAT) as c:
        assert c.get(f"{BASE}/exports/submissions.csv").headers["cache-control"] == "no-store"
