"""The council flow on the 2023 edition (issue 4): seven initiatives, five council members from different
units, score sheets on the edition's rubric, a ranking equal to a table computed by hand, the selection and
its effects in rewards, notify and campaign; with attachments, rulings, visibility and exports on the way.

The rubric of the seed: criteria novelty 30 / applicability 30 / effectiveness 40; aggregate ``mean``;
ties ``[higher_median, earlier_receipt]``; a comment below 50; disagreement population stdev above 15."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Iterator
from typing import Any

import httpx
import openpyxl
import pytest

from shared.events.envelope import deterministic_id
from shared.settings import SERVICES
from tests.support.submissions import events_of
from tests.support.system import EDITION, TENANT, System
from tests.support.wait import eventually_sync

BASE = f"/tenants/{TENANT}/editions/{EDITION}"
SECRETARIAT = "p-0004"
CHAIR = "p-0001"  # Văn phòng Sở; council members: p-0001 VP, p-0007 TNN-KS, p-0013 CCQLDD, p-0018 VPDKDD, p-0021 TTCNTT

# unit head, unit, title, authors (person id or outside name, share)
INITIATIVES: dict[str, tuple[str, str, list[tuple[str, float]]]] = {
    "I1": ("p-0001", "Số hoá sổ theo dõi văn bản đến của Văn phòng Sở", [("p-0001", 60), ("p-0005", 40)]),
    "I2": (
        "p-0007",
        "Cấp phép khai thác nước dưới đất trực tuyến toàn trình",
        [("p-0007", 70), ("p-0009", 30)],
    ),
    "I3": ("p-0010", "Bản đồ số vùng ven biển phục vụ giao khu vực biển", [("p-0010", 50), ("p-0011", 50)]),
    "I4": ("p-0013", "Tra cứu quy hoạch sử dụng đất qua mã QR", [("p-0013", 100)]),
    "I5": (
        "p-0015",
        "Tiếp nhận hồ sơ đánh giá tác động môi trường qua Cổng Dịch vụ công",
        [("p-0015", 50), ("p-0008", 30), ("Nguyễn Văn Ngoài", 20)],
    ),
    "I6": (
        "p-0018",
        "Trả kết quả đăng ký biến động đất đai qua bưu chính công ích",
        [("p-0018", 80), ("p-0019", 20)],
    ),
    "I7": ("p-0021", "Chữ ký số cho hồ sơ điện tử của Trung tâm", [("p-0021", 100)]),
}

# Totals each member gives, by hand; the members of the authors' units never score (their cells are absent).
SHEETS: dict[str, dict[str, int]] = {
    "I1": {"p-0007": 60, "p-0013": 70, "p-0018": 80, "p-0021": 90},
    "I2": {"p-0001": 65, "p-0013": 70, "p-0018": 85, "p-0021": 80},
    "I3": {"p-0001": 70, "p-0007": 74, "p-0013": 78, "p-0018": 82, "p-0021": 86},
    "I4": {"p-0001": 50, "p-0007": 80, "p-0018": 81, "p-0021": 89},
    "I5": {"p-0001": 40, "p-0013": 60, "p-0018": 64, "p-0021": 80},  # p-0007 excluded: co-author from TNN-KS
    "I6": {"p-0001": 90, "p-0007": 95, "p-0013": 20, "p-0021": 55},
    "I7": {"p-0001": 50, "p-0007": 52},  # p-0021 own unit; p-0013 yet to score; p-0018 declared a conflict
}

# The ranking computed by hand: mean; ties by the higher median (of an even count: the mean of the two
# middle totals), then the earlier receipt.
#   I3  70 74 78 82 86        mean 78   median 78
#   I4  50 80 81 89           mean 75   median (80+81)/2 = 80.5   beats I1, I2 on the median
#   I1  60 70 80 90           mean 75   median (70+80)/2 = 75     received before I2
#   I2  65 70 80 85           mean 75   median (70+80)/2 = 75
#   I6  20 55 90 95           mean 65   median 72.5   stdev sqrt(3650/4) = 30.21 > 15: disputed
#   I5  40 60 64 80           mean 61   median 62     stdev sqrt(812/4) = 14.25
#   I7  50 52                 mean 51   median 51
EXPECTED = [
    ("I3", 1, 78.0, 78.0, False),
    ("I4", 2, 75.0, 80.5, False),
    ("I1", 3, 75.0, 75.0, False),
    ("I2", 4, 75.0, 75.0, False),
    ("I6", 5, 65.0, 72.5, True),
    ("I5", 6, 61.0, 62.0, False),
    ("I7", 7, 51.0, 51.0, False),
]

PDF = (
    b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n"
)


@pytest.fixture(scope="module")
def system(test_servers: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    """On PostgreSQL only: the SQLite path of intake is covered by the deadline tests, and this flow is long."""
    import secrets

    work = tmp_path_factory.mktemp("council")
    dbs = {s: test_servers.create_database(s) for s in SERVICES}
    sys_ = System(
        nats_url=test_servers.nats_url, prefix="c" + secrets.token_hex(4), workdir=work, database_urls=dbs
    )
    try:
        sys_.start()
        yield sys_
    finally:
        sys_.stop()


def _split(total: int) -> dict[str, int]:
    novelty = min(30, total // 3)
    applicability = min(30, (total - novelty) // 2)
    return {
        "novelty": novelty,
        "applicability": applicability,
        "effectiveness": total - novelty - applicability,
    }


def _body(key: str, submit: bool = True, **over: Any) -> dict[str, Any]:
    _, title, authors = INITIATIVES[key]
    return {
        "title": title,
        "authors": [
            {"person_id": a, "share": s}
            if a.startswith("p-")
            else {"name": a, "workplace": "Trường Đại học Cần Thơ", "share": s}
            for a, s in authors
        ],
        "field_of_application": "Cải cách thủ tục hành chính",
        "first_applied_on": "2023-06-01",
        "existing_solution": "Tiếp nhận hồ sơ giấy tại Bộ phận Một cửa.",
        "existing_weaknesses": "Người dân phải đi lại nhiều lần; khó tra cứu tiến độ.",
        "new_solution": f"{title}: quy trình mới, toàn bộ trên môi trường điện tử.",
        "novelty": "Lần đầu áp dụng tại Sở.",
        "applicability": "Áp dụng được cho các đơn vị có thủ tục tương tự trong tỉnh.",
        "benefits": "Giảm 50% thời gian giải quyết hồ sơ.",
        "benefits_kind": "actual",
        "submit": submit,
        **over,
    }


def _c(system: System, person: str) -> httpx.Client:
    return system.client("submissions", person)


def _scored_events(system: System) -> list[dict]:
    return events_of(system, "initiative.scored")


def test_council_flow_end_to_end(system: System) -> None:
    ids: dict[str, str] = {}
    receipts: dict[str, str] = {}

    # ---- intake: seven units, one initiative each (I7 as a draft first)
    for key, (head, _, _) in INITIATIVES.items():
        with _c(system, head) as c:
            r = c.post(
                f"{BASE}/initiatives",
                json=_body(key, submit=key != "I7"),
                headers={"Idempotency-Key": f"ini-{key}"},
            )
        assert r.status_code == 201, (key, r.text)
        ids[key] = r.json()["submission_id"]
        receipts[key] = r.json()["receipt_number"]
    assert receipts["I7"] is None
    with _c(system, "p-0021") as c:
        sub = c.post(f"{BASE}/initiatives/{ids['I7']}/submission")
    assert sub.status_code == 200, sub.text
    receipts["I7"] = sub.json()["receipt_number"]
    assert receipts["I7"].startswith("2023-SK-")
    assert len(set(receipts.values())) == 7

    # A retry with the same key: the same receipt, nothing new.
    with _c(system, "p-0001") as c:
        again = c.post(f"{BASE}/initiatives", json=_body("I1"), headers={"Idempotency-Key": "ini-I1"})
    assert again.status_code == 201 and again.json()["receipt_number"] == receipts["I1"]

    # Refusals: nothing written, no event.
    before = len(events_of(system, "submission.received"))
    with _c(system, "p-0001") as c:
        second = c.post(f"{BASE}/initiatives", json=_body("I1", title="Sáng kiến thứ hai"))
        shares = c.post(
            f"{BASE}/initiatives", json=_body("I1", authors=[{"person_id": "p-0001", "share": 90}])
        )
    assert second.status_code == 409 and "chỉnh sửa" in second.json()["detail_vi"]
    assert shares.status_code == 422
    assert any(e["field"] == "authors" and "100" in e["message_vi"] for e in shares.json()["errors"])
    with _c(system, SECRETARIAT) as c:
        assert len(c.get(f"{BASE}/initiatives").json()) == 7
    assert len(events_of(system, "submission.received")) == before

    # The snapshot of a directory author, and an outside co-author without id.
    with _c(system, "p-0015") as c:
        i5 = c.get(f"{BASE}/initiatives/{ids['I5']}").json()
    assert i5["authors"][1]["name"] == "Lý Thị Mỹ Linh" and i5["authors"][1]["unit_id"] == "u-tnn-ks"
    assert i5["authors"][2]["outside"] is True and i5["authors"][2]["name"] == "Nguyễn Văn Ngoài"

    # A revision before the deadline: same receipt, revision 2, submission.revised.
    with _c(system, "p-0001") as c:
        rev = c.put(
            f"{BASE}/initiatives/{ids['I1']}",
            json={
                k: v for k, v in _body("I1", title="Số hoá toàn bộ sổ văn bản đến").items() if k != "submit"
            },
        )
    assert rev.status_code == 200, rev.text
    assert rev.json()["revision"] == 2 and rev.json()["receipt_number"] == receipts["I1"]

    # ---- co-authors are invited: until they confirm, the initiative does not count them (issue 14, 5)
    received_i5 = next(e for e in events_of(system, "submission.received") if e["subject"] == ids["I5"])
    assert {a["person_id"] for a in received_i5["data"]["authors"]} == {"p-0015", None}  # p-0008 not yet
    with _c(system, SECRETARIAT) as c:
        before = c.get(f"{BASE}/initiatives/{ids['I5']}/reviewers").json()
    assert "p-0007" in [r["member_id"] for r in before["reviewers"]]  # an unconfirmed co-author removes no one
    for person in ("p-0015", SECRETARIAT, "p-0007"):  # nobody confirms for someone else
        with _c(system, person) as c:
            r = c.post(f"{BASE}/initiatives/{ids['I5']}/authors/p-0008/confirmation")
        assert r.status_code == 403 and r.json()["detail_vi"], (person, r.text)
    coauthors = {"I1": "p-0005", "I2": "p-0009", "I3": "p-0011", "I5": "p-0008", "I6": "p-0019"}
    for key, person in coauthors.items():
        with _c(system, person) as c:
            r = c.post(f"{BASE}/initiatives/{ids[key]}/authors/{person}/confirmation")
        assert r.status_code == 200, (key, r.text)
        assert next(a for a in r.json()["authors"] if a.get("person_id") == person)["confirmed"] is True
    with _c(system, SECRETARIAT) as c:
        after = c.get(f"{BASE}/initiatives/{ids['I5']}/reviewers").json()
    assert "p-0007" not in [r["member_id"] for r in after["reviewers"]]
    (why,) = [e for e in after["excluded"] if e["member_id"] == "p-0007"]
    assert why["reason"] == "own_unit" and "Lý Thị Mỹ Linh" in why["reason_vi"]
    revised_i5 = [e for e in events_of(system, "submission.revised") if e["subject"] == ids["I5"]]
    assert "p-0008" in {a["person_id"] for a in revised_i5[-1]["data"]["authors"]}

    # ---- attachments: type from the bytes, limits, and the same bytes back
    with _c(system, "p-0001") as c:
        up = c.post(
            f"{BASE}/initiatives/{ids['I1']}/attachments",
            params={"filename": "thuyet-minh.docx"},
            content=PDF,
            headers={"Idempotency-Key": "att-1"},
        )
        assert up.status_code == 201, up.text
        # a retry with the same key: the same attachment, not a second one
        retried = c.post(
            f"{BASE}/initiatives/{ids['I1']}/attachments",
            params={"filename": "thuyet-minh.docx"},
            content=PDF,
            headers={"Idempotency-Key": "att-1"},
        )
        assert retried.status_code == 201 and retried.json() == up.json()
        assert up.json()["file_type"] == "pdf" and up.json()["filename"] == "thuyet-minh.pdf"
        assert up.json()["sha256"] == hashlib.sha256(PDF).hexdigest()
        down = c.get(f"{BASE}/initiatives/{ids['I1']}/attachments/{up.json()['attachment_id']}")
        assert down.status_code == 200 and hashlib.sha256(down.content).hexdigest() == up.json()["sha256"]
        assert down.headers["content-type"] == "application/pdf"
        exe = c.post(
            f"{BASE}/initiatives/{ids['I1']}/attachments",
            params={"filename": "ho-so.pdf"},
            content=b"MZ\x90\x00" + b"\0" * 64,
        )
        assert exe.status_code == 415 and exe.json()["detail_vi"]
        empty = c.post(
            f"{BASE}/initiatives/{ids['I1']}/attachments", params={"filename": "rong.pdf"}, content=b""
        )
        assert empty.status_code == 422
        limit = 20_971_520  # the edition's attachments.max_bytes for the initiative part
        over = c.post(
            f"{BASE}/initiatives/{ids['I1']}/attachments",
            params={"filename": "lon.pdf"},
            content=PDF + b"0" * (limit + 1 - len(PDF)),
        )
        assert over.status_code == 413
        assert len(c.get(f"{BASE}/initiatives/{ids['I1']}").json()["attachments"]) == 1

    # ---- visibility: authors their own, unit heads their unit's, the secretariat everything
    with _c(system, "p-0008") as c:  # co-author of I5, official of TNN-KS
        assert [i["submission_id"] for i in c.get(f"{BASE}/initiatives").json()] == [ids["I5"]]
        assert c.get(f"{BASE}/initiatives/{ids['I2']}").status_code == 404
    with _c(system, "p-0006") as c:  # an official of VP, not an author
        assert c.get(f"{BASE}/initiatives").json() == []

    # ---- eligibility ruling: rejected, then reinstated
    with _c(system, SECRETARIAT) as c:
        ruling = {"reason": "Chưa áp dụng thử tại đơn vị"}
        rej = c.post(
            f"{BASE}/submissions/{ids['I7']}/rejection", json=ruling, headers={"Idempotency-Key": "rej-I7"}
        )
        assert rej.status_code == 200, rej.text
        # a retry of the ruling with its key: the same answer (not 409 "not submitted"), no second ruling
        again = c.post(
            f"{BASE}/submissions/{ids['I7']}/rejection", json=ruling, headers={"Idempotency-Key": "rej-I7"}
        )
        assert again.status_code == 200 and again.json() == rej.json(), again.text
        assert ids["I7"] not in [r["submission_id"] for r in c.get(f"{BASE}/ranking").json()["initiatives"]]
        assert (
            c.post(
                f"{BASE}/submissions/{ids['I7']}/reinstatement", json={"reason": "Đã bổ sung minh chứng"}
            ).status_code
            == 200
        )
    with _c(system, "p-0001") as c:
        assert c.post(f"{BASE}/submissions/{ids['I6']}/rejection", json={"reason": "x"}).status_code == 403
    kinds = [
        e["type"]
        for e in events_of(system, "submission.rejected", "submission.reinstated")
        if e["subject"] == ids["I7"]
    ]
    assert kinds == ["submission.rejected", "submission.reinstated"]

    # ---- review: assignments, a conflict, own-unit refusals
    with _c(system, CHAIR) as c:
        assert [
            r["member_id"] for r in c.get(f"{BASE}/initiatives/{ids['I1']}/reviewers").json()["reviewers"]
        ] == [
            "p-0007",
            "p-0013",
            "p-0018",
            "p-0021",
        ]
    with _c(system, "p-0018") as c:
        declared = [
            c.post(
                f"{BASE}/initiatives/{ids['I7']}/conflicts",
                json={"reason": "Vợ là đồng tác giả"},
                headers={"Idempotency-Key": "conflict-1"},
            )
            for _ in range(2)  # the second is a retry with the same key: the original answer
        ]
        assert [r.status_code for r in declared] == [201, 201]
        assert declared[1].json() == declared[0].json()

    scored_before = len(_scored_events(system))
    with _c(system, "p-0007") as c:  # TNN-KS: own unit's I2, and I5 whose co-author is from TNN-KS
        own = c.put(f"{BASE}/initiatives/{ids['I2']}/score-sheet", json={"scores": _split(90)})
        assert own.status_code == 403 and "đơn vị mình" in own.json()["detail_vi"]
        assert (
            c.put(f"{BASE}/initiatives/{ids['I5']}/score-sheet", json={"scores": _split(90)}).status_code
            == 403
        )
    with _c(system, "p-0018") as c:
        assert (
            c.put(f"{BASE}/initiatives/{ids['I7']}/score-sheet", json={"scores": _split(90)}).status_code
            == 403
        )
    with _c(system, "p-0001") as c:  # below 50 without a comment
        low = c.put(f"{BASE}/initiatives/{ids['I5']}/score-sheet", json={"scores": _split(40)})
        assert low.status_code == 422 and low.json()["errors"][0]["field"] == "comment"
        bad = c.put(
            f"{BASE}/initiatives/{ids['I5']}/score-sheet", json={"scores": {**_split(40), "novelty": 31}}
        )
        assert bad.status_code == 422
    assert len(_scored_events(system)) == scored_before
    with _c(system, CHAIR) as c:
        reviewers_i2 = c.get(f"{BASE}/initiatives/{ids['I2']}/reviewers").json()["reviewers"]
    assert all(not r["scored"] for r in reviewers_i2)

    for key, sheets in SHEETS.items():
        for member, total in sheets.items():
            comment = "Hiệu quả chưa được chứng minh bằng số liệu." if total < 50 else None
            with _c(system, member) as c:
                r = c.put(
                    f"{BASE}/initiatives/{ids[key]}/score-sheet",
                    json={"scores": _split(total), "comment": comment},
                )
            assert r.status_code == 200, (key, member, r.text)
            assert r.json()["total"] == total
    n_sheets = sum(len(s) for s in SHEETS.values())
    eventually_sync(
        lambda: len(_scored_events(system)) == scored_before + n_sheets,
        timeout=10,
        message="initiative.scored",
    )

    # Progress: p-0013 has I7 still to do.
    with _c(system, "p-0013") as c:
        mine = c.get(f"{BASE}/review/progress").json()["members"][0]
    assert [i["submission_id"] for i in mine["to_do"]] == [ids["I7"]]
    assert mine["done_count"] == 5  # I1 I2 I3 I5 I6; never I4, its own unit

    # ---- ranking: equal to the table by hand
    with _c(system, SECRETARIAT) as c:
        ranking = c.get(f"{BASE}/ranking").json()
    got = [
        (r["submission_id"], r["rank"], r["mean"], r["median"], r["disputed"]) for r in ranking["initiatives"]
    ]
    assert got == [(ids[k], rank, mean, median, disputed) for k, rank, mean, median, disputed in EXPECTED]
    assert [r["score"] for r in ranking["initiatives"]] == [e[2] for e in EXPECTED]  # aggregate: mean
    # A member never sees their own unit's scores before the selection.
    with _c(system, "p-0013") as c:
        theirs = {r["submission_id"]: r for r in c.get(f"{BASE}/ranking").json()["initiatives"]}
    assert theirs[ids["I4"]]["score"] is None and theirs[ids["I3"]]["score"] == 78.0
    # The secretariat sees who is left out of each review, and why; a member does not.
    i7 = next(r for r in ranking["initiatives"] if r["submission_id"] == ids["I7"])
    assert {(e["member_id"], e["reason"]) for e in i7["excluded"]} == {
        ("p-0021", "own_unit"),
        ("p-0018", "conflict_declared"),
    }
    assert any("Vợ là đồng tác giả" in e["reason_vi"] for e in i7["excluded"])
    assert "excluded" not in theirs[ids["I3"]]

    # ---- selection
    with _c(system, "p-0007") as c:
        assert c.post(f"{BASE}/selection", json={"selected": [ids["I3"]]}).status_code == 403
    with _c(system, CHAIR) as c:
        decision = {
            "selected": [ids["I3"]],
            "notes": {ids["I3"]: "Điểm cao nhất, có khả năng nhân rộng toàn tỉnh"},
        }
        sel = c.post(f"{BASE}/selection", json=decision, headers={"Idempotency-Key": "sel-1"})
        assert sel.status_code == 201, sel.text
        # The chair's client retries (a lost answer): the original 201, not "already decided".
        again = c.post(f"{BASE}/selection", json=decision, headers={"Idempotency-Key": "sel-1"})
        assert again.status_code == 201, again.text
        assert again.json() == sel.json()
        outcomes = {o["submission_id"]: o["outcome"] for o in sel.json()["outcomes"]}
        assert outcomes[ids["I3"]] == "selected" and list(outcomes.values()).count("not_selected") == 6
        assert c.post(f"{BASE}/selection", json={"selected": [ids["I4"]]}).status_code == 409
    selected = eventually_sync(
        lambda: events_of(system, "initiative.selected"), timeout=10, message="initiative.selected"
    )
    assert len(selected) == 1
    ev = selected[0]
    assert ev["subject"] == ids["I3"] and ev["data"]["rank"] == 1 and ev["data"]["score"] == 78.0
    assert ev["id"] == deterministic_id("initiative.selected", TENANT, EDITION, "selection", ids["I3"])
    assert {a["person_id"] for a in ev["data"]["authors"]} == {"p-0010", "p-0011"}

    # Rewards credits the authors, notify tells them, campaign records the selection fulfilled.
    def ledger() -> list[dict]:
        with system.client("rewards", "p-0010") as c:
            return [
                e
                for e in c.get(f"{BASE}/ledger", params={"participant": "p-0010"}).json()
                if e["event_id"] == ev["id"]
            ]

    assert eventually_sync(ledger, timeout=15, message="rewards ledger entry for the selection")

    def notified() -> bool:
        with system.client("notify", "p-0010") as c:
            inbox = c.get(f"/tenants/{TENANT}/inbox").json()
        return any(
            ids["I3"] in json.dumps(e, ensure_ascii=False) or "chọn" in json.dumps(e, ensure_ascii=False)
            for e in inbox
        )

    assert eventually_sync(notified, timeout=15, message="notify's in-app entry for the selection")

    def council_fulfilled() -> bool:
        with system.client("campaign", SECRETARIAT) as c:
            rows = c.get(f"{BASE}/assignments", params={"part": "selection"}).json()
        return bool(rows) and all(r["status"] == "fulfilled" for r in rows)

    assert eventually_sync(
        council_fulfilled, timeout=15, message="campaign: the selection assignment fulfilled"
    )

    # ---- exports: XLSX reads back with the values submitted, diacritics intact; CSV limited to the caller
    with _c(system, SECRETARIAT) as c:
        x = c.get(f"{BASE}/exports/submissions.xlsx")
        assert x.status_code == 200
        ws = openpyxl.load_workbook(io.BytesIO(x.content)).active
        rows = list(ws.iter_rows(values_only=True))
        header = rows[0]
        assert "Tên sáng kiến" in header and "Tác giả (tỷ lệ đóng góp)" in header
        titles = {r[header.index("Tên sáng kiến")] for r in rows[1:]}
        assert INITIATIVES["I5"][1] in titles and "Số hoá toàn bộ sổ văn bản đến" in titles
        i5_row = next(r for r in rows[1:] if r[header.index("Số biên nhận")] == receipts["I5"])
        assert "Nguyễn Văn Ngoài (ngoài đơn vị) — 20%" in i5_row[header.index("Tác giả (tỷ lệ đóng góp)")]
        # names, never internal ids: the edition's part title, the union's name (I5's submitter is in CĐCS)
        assert i5_row[header.index("Phần thi")] == "Phần thi sáng kiến cải cách hành chính"
        assert (
            i5_row[header.index("Đoàn thể (tại thời điểm nộp)")]
            == "Công đoàn cơ sở Sở Tài nguyên và Môi trường"
        )
        assert {r[header.index("Phần thi")] for r in rows[1:]} == {"Phần thi sáng kiến cải cách hành chính"}
        scores = openpyxl.load_workbook(io.BytesIO(c.get(f"{BASE}/exports/scores.xlsx").content)).active
        assert scores.max_row == 1 + sum(len(s) for s in SHEETS.values())
    with _c(system, "p-0008") as c:
        text = c.get(f"{BASE}/exports/submissions.csv").content.decode("utf-8-sig")
    table = list(csv.DictReader(io.StringIO(text)))
    assert [r["Số biên nhận"] for r in table] == [receipts["I5"]]
    assert table[0]["Tên sáng kiến"] == INITIATIVES["I5"][1]

    # ---- the selection deadline (30/10/2023): the council decided in time, so it is not missed. Submissions
    # closes the selection's intake counting the one selected initiative; campaign decides only once it has
    # applied that initiative.selected, and records the part fulfilled.
    system.set_clock("2023-10-31T00:00:05+07:00")

    def selection_passed() -> list[dict[str, Any]]:
        return [e for e in events_of(system, "deadline.passed") if e["data"]["part"] == "selection"]

    passed = eventually_sync(selection_passed, timeout=30, message="deadline.passed for the selection")
    assert len(passed) == 1
    assert passed[0]["data"]["assigned"] == 1 and passed[0]["data"]["fulfilled"] == 1
    closed = [e for e in events_of(system, "intake.closed") if e["data"]["part"] == "selection"]
    assert [e["data"]["accepted_on_time"] for e in closed] == [1]
    assert not [e for e in events_of(system, "deadline.missed") if e["data"]["part"] == "selection"]
