"""The whole contest on both bundled editions (issue 13, item 6), through the public HTTP APIs and the events
only: experience reports (one withdrawn and sent again, one under an extension), initiatives with confirmed
co-authors, council scoring, the ranking on the edition's own aggregate and the selection, the deadlines
passing with misses, then participation per unit (campaign) and points per person (rewards).

Every expected figure below is worked out by hand from the seed files (``deploy/seed/*/``), never by the code
under test:

- **Sóc Trăng 2023** (``soctrang-stnmt``): parts ``experience`` (5 procedures, until 25/10), ``initiative``
  (until 25/10), ``selection`` (30/10; rubric **mean**), ``online90`` (ends 19/11: still open at the end of
  this run). Rules: receipt of a report 1, of an initiative 2, selected 5, a miss is flagged (0 points).
- **Cần Thơ 2025** (``cantho-snnmt``): parts ``tn-dvc-2025`` (3 procedures, until 15/10), ``sk-2025``
  (until 30/09), ``xc-2025`` (20/10; rubric **median**). Rules keyed by those ids: report 2, initiative 4,
  selected 10, a miss **deducts 1**. Chi cục Phát triển nông thôn (u-ccptnt) is merged into Chi cục Thủy lợi
  (u-cctl) on 01/10/2025: its council member c-06 does not review u-ccptnt's initiative scored after that, and
  participation counts u-ccptnt's assignments under u-cctl from that day.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared.settings import SERVICES
from tests.support.cantho import SEED_2025
from tests.support.submissions import events_of
from tests.support.system import SEED, System
from tests.support.wait import eventually_sync

ZERO = {"assigned": 0, "fulfilled": 0, "fulfilled_late": 0, "missed": 0, "extended": 0, "open": 0}


def counts(assigned: int, fulfilled: int = 0, missed: int = 0, open_: int = 0) -> dict[str, int]:
    return {**ZERO, "assigned": assigned, "fulfilled": fulfilled, "missed": missed, "open": open_}


@dataclass(frozen=True)
class Initiative:
    head: str  # the unit head who submits it
    title: str
    authors: list[tuple[str, int]]  # directory authors and shares; co-authors confirm themselves
    totals: dict[str, int]  # council member -> total score, by hand
    reviewers: list[str]  # who reviews it at scoring time
    excluded: list[tuple[str, str]]  # (member, reason) left out


@dataclass(frozen=True)
class Contest:
    name: str
    seed: Path
    tenant: str
    edition: str
    experience: str
    initiative: str
    procedures: list[str]
    used_on: str
    secretariat: str
    chair: str
    criteria: list[tuple[str, int]]  # (id, max), in the edition's order
    submit_at: str  # reports, initiatives, the extension's grant
    score_at: str  # after the initiative deadline (and, in 2025, after the merger)
    late_at: str  # after the report deadline, within the one extension
    end_at: str  # every deadline of the run passed
    on_time: str  # sends a report on time
    resubmits: str  # sends one, withdraws it, sends another
    extended: tuple[str, str]  # (person, new deadline): sends a report after the part's deadline
    late: str  # tries after the part's deadline, without an extension: refused
    initiatives: dict[str, Initiative]
    ranking: list[tuple[str, int, float]]  # (initiative, rank, score) on the edition's aggregate
    selected: list[str]
    points: dict[str, float]  # every person the priority list names -> points, by hand
    others: float | None  # the points of everyone else listed (a missed report), None: nobody else
    units: dict[str, dict[str, int]]  # participation per unit at end_at
    missed: dict[str, int]  # deadline.missed per part


SOCTRANG = Contest(
    name="soctrang-2023",
    seed=SEED,
    tenant="soctrang-stnmt",
    edition="2023",
    experience="experience",
    initiative="initiative",
    procedures=["1.004227", "1.000494", "1.001234", "2.000123", "1.011442"],
    used_on="2023-10-02",
    secretariat="p-0004",
    chair="p-0001",
    criteria=[("novelty", 30), ("applicability", 30), ("effectiveness", 40)],
    submit_at="2023-10-20T09:00:00+07:00",
    score_at="2023-10-26T09:00:00+07:00",
    late_at="2023-10-27T10:00:00+07:00",
    end_at="2023-10-31T08:00:00+07:00",
    on_time="p-0002",
    resubmits="p-0008",
    extended=("p-0019", "2023-10-28"),
    late="p-0011",
    initiatives={
        # council: p-0001 VP, p-0007 TNN-KS, p-0013 CCQLDD, p-0018 VPDKDD, p-0021 TTCNTT
        "J1": Initiative(
            "p-0010",
            "Bản đồ số vùng ven biển",
            [("p-0010", 50), ("p-0011", 50)],
            {"p-0001": 60, "p-0007": 70, "p-0013": 80, "p-0018": 90, "p-0021": 100},  # mean 80, median 80
            ["p-0001", "p-0007", "p-0013", "p-0018", "p-0021"],
            [],
        ),
        "J2": Initiative(
            "p-0015",
            "Tiếp nhận hồ sơ môi trường trực tuyến",
            [("p-0015", 100)],
            {"p-0001": 90, "p-0007": 90, "p-0013": 90, "p-0018": 50, "p-0021": 55},  # mean 75, median 90
            ["p-0001", "p-0007", "p-0013", "p-0018", "p-0021"],
            [],
        ),
        "J3": Initiative(
            "p-0018",
            "Trả kết quả đăng ký đất đai qua bưu chính",
            [("p-0018", 70), ("p-0020", 30)],
            {"p-0001": 70, "p-0007": 75, "p-0013": 80, "p-0021": 85},  # mean 77.5; p-0018 own unit
            ["p-0001", "p-0007", "p-0013", "p-0021"],
            [("p-0018", "own_unit")],
        ),
    },
    # mean: J1 80 > J3 77.5 > J2 75 (on the median J2's 90 would lead: the aggregate is the edition's)
    ranking=[("J1", 1, 80.0), ("J3", 2, 77.5), ("J2", 3, 75.0)],
    selected=["J1", "J3"],
    points={
        "p-0002": 1,  # report
        "p-0008": 1,  # the second report; the withdrawn one earns nothing
        "p-0019": 1,  # report under the extension
        "p-0010": 7,  # J1 received 2 + selected 5 (its own report missed: flagged, 0)
        "p-0011": 7,  # J1 co-author, confirmed: 2 + 5
        "p-0015": 2,  # J2 received, not selected
        "p-0018": 7,  # J3 2 + 5
        "p-0020": 7,  # J3 co-author 2 + 5
    },
    others=0,  # the 24 officials who sent no report: listed with the flag, 0 points
    units={
        # initiative (7 units) + reports of officials and heads (27 people) + online90 (6 units, still open)
        "u-vp": counts(5, missed=5),  # initiative, p-0001 p-0004 p-0005 p-0006
        "u-tnn-ks": counts(5, fulfilled=1, missed=3, open_=1),  # p-0008 sent; p-0007 p-0009 missed
        "u-tnb-bdkh": counts(4, fulfilled=1, missed=2, open_=1),  # J1; p-0010 p-0011 missed
        "u-ccqldd": counts(4, missed=3, open_=1),  # initiative, p-0012 p-0013
        "u-ccbvmt": counts(5, fulfilled=1, missed=3, open_=1),  # J2; p-0015 p-0016 p-0017
        "u-vpdkdd": counts(5, fulfilled=2, missed=2, open_=1),  # J3, p-0019; p-0018 p-0020
        "u-ttcntt": counts(5, missed=4, open_=1),  # initiative, p-0021 p-0022 p-0023
        "u-vpdkdd-cn1": counts(3, fulfilled=1, missed=2),  # p-0002; p-0024 p-0025
        "u-vpdkdd-cn2": counts(4, missed=4),  # p-0014 (moved there 01/07/2023) p-0026 p-0027 p-0028
    },
    missed={"experience": 24, "initiative": 4},
)

CANTHO = Contest(
    name="cantho-2025",
    seed=SEED_2025,
    tenant="cantho-snnmt",
    edition="2025",
    experience="tn-dvc-2025",
    initiative="sk-2025",
    procedures=["1.012345", "1.003456", "2.001234"],
    used_on="2025-09-05",
    secretariat="c-02",
    chair="c-01",
    criteria=[("tinh-moi", 40), ("hieu-qua", 60)],
    submit_at="2025-09-10T09:00:00+07:00",
    score_at="2025-10-02T09:00:00+07:00",
    late_at="2025-10-17T10:00:00+07:00",
    end_at="2025-10-21T08:00:00+07:00",
    on_time="c-05",
    resubmits="c-07",
    extended=("c-11", "2025-10-20"),
    late="c-01",
    initiatives={
        # council: c-01 VP, c-04 KHTC, c-06 CCTL (from 01/10 the successor of CCPTNT), c-10 VPDKDD
        "K1": Initiative(
            "c-10",
            "Cấp giấy chứng nhận quyền sử dụng đất trực tuyến",
            [("c-10", 50), ("c-11", 50)],
            {"c-01": 80, "c-04": 70, "c-06": 90},  # median 80
            ["c-01", "c-04", "c-06"],
            [("c-10", "own_unit")],
        ),
        "K2": Initiative(
            "c-08",
            "Cấp mã số vùng trồng trực tuyến",
            [("c-08", 60), ("c-09", 40)],
            {"c-01": 60, "c-04": 95, "c-10": 85},  # median 85 (mean 80)
            ["c-01", "c-04", "c-10"],
            [("c-06", "merged_unit")],  # u-cctl took u-ccptnt in on 01/10/2025
        ),
        "K3": Initiative(
            "c-04",
            "Giải ngân vốn đầu tư công qua dịch vụ công",
            [("c-04", 100)],
            {"c-01": 70, "c-06": 75, "c-10": 100},  # median 75 (mean 81.67: first on the mean)
            ["c-01", "c-06", "c-10"],
            [("c-04", "own_unit")],
        ),
    },
    ranking=[("K2", 1, 85.0), ("K1", 2, 80.0), ("K3", 3, 75.0)],
    selected=["K2", "K1"],
    points={
        "c-05": 2,  # report
        "c-07": 2,  # the second report
        "c-11": 16,  # report under the extension 2 + K1 received 4 + selected 10
        "c-10": 13,  # K1 4 + 10, own report missed -1
        "c-08": 13,  # K2 4 + 10 - 1
        "c-09": 13,  # K2 co-author 4 + 10 - 1
        "c-04": 3,  # K3 4 - 1
        "c-01": -1,  # missed report
        "c-02": -1,
        "c-06": -1,
    },
    others=None,  # c-03 (director) has no assignment: nobody else is listed
    units={
        # initiative (5 units, 30/09) + reports of officials and heads (10 people); u-ccptnt's under u-cctl
        "u-vp": counts(3, missed=3),  # initiative, c-01 c-02
        "u-khtc": counts(3, fulfilled=2, missed=1),  # K3, c-05; c-04
        "u-cctl": counts(6, fulfilled=2, missed=4),  # K2 (u-ccptnt's), c-07; own initiative, c-06 c-08 c-09
        "u-vpdkdd": counts(3, fulfilled=2, missed=1),  # K1, c-11 (extended); c-10
    },
    missed={"tn-dvc-2025": 7, "sk-2025": 2},
)


@pytest.fixture(scope="module", params=[SOCTRANG, CANTHO], ids=lambda c: c.name)
def contest(
    request: pytest.FixtureRequest, test_servers: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Contest, System]]:
    spec: Contest = request.param
    work = tmp_path_factory.mktemp(spec.name)
    sys_ = System(
        nats_url=test_servers.nats_url,
        prefix="w" + secrets.token_hex(4),
        workdir=work,
        database_urls={s: test_servers.create_database(s) for s in SERVICES},
        seed_dir=spec.seed,
    )
    sys_.set_clock(spec.submit_at, rate=0)
    try:
        sys_.start()
        yield spec, sys_
    finally:
        sys_.stop()


def _client(system: System, spec: Contest, service: str, person: str) -> httpx.Client:
    return system.client(service, person, tenant=spec.tenant)


def _base(spec: Contest) -> str:
    return f"/tenants/{spec.tenant}/editions/{spec.edition}"


def _report(system: System, spec: Contest, person: str, key: str) -> httpx.Response:
    body = {
        "procedures": [
            {
                "code": code,
                "used_on": spec.used_on,
                "portal": "Cổng Dịch vụ công quốc gia",
                "level": "toan_trinh",
                "rating": 4,
                "narrative": f"Nộp hồ sơ trực tuyến thủ tục {code}: nhanh, rõ ràng.",
            }
            for code in spec.procedures
        ]
    }
    with _client(system, spec, "submissions", person) as c:
        return c.post(f"{_base(spec)}/experience-reports", json=body, headers={"Idempotency-Key": key})


def _initiative_body(i: Initiative) -> dict[str, Any]:
    return {
        "title": i.title,
        "authors": [{"person_id": a, "share": s} for a, s in i.authors],
        "field_of_application": "Cải cách thủ tục hành chính",
        "first_applied_on": "2023-06-01",
        "existing_solution": "Tiếp nhận hồ sơ giấy tại Bộ phận Một cửa.",
        "existing_weaknesses": "Người dân phải đi lại nhiều lần.",
        "new_solution": f"{i.title}: toàn bộ trên môi trường điện tử.",
        "novelty": "Lần đầu áp dụng tại Sở.",
        "applicability": "Áp dụng được cho các đơn vị có thủ tục tương tự.",
        "benefits": "Giảm một nửa thời gian giải quyết hồ sơ.",
        "benefits_kind": "actual",
        "submit": True,
    }


def _split(total: int, criteria: list[tuple[str, int]]) -> dict[str, int]:
    out, left = {}, total
    for cid, top in criteria:
        out[cid] = min(top, left)
        left -= out[cid]
    assert left == 0
    return out


def test_the_whole_contest_with_hand_worked_figures(contest: tuple[Contest, System]) -> None:
    spec, system = contest
    base = _base(spec)
    assert "hợp lệ" in system.hoithi("edition", "validate", str(spec.seed / "edition.yaml"))

    # ---- intake, all on one day: reports, one withdrawn and sent again, an extension, initiatives
    r = _report(system, spec, spec.on_time, "on-time")
    assert r.status_code == 201, r.text
    first = _report(system, spec, spec.resubmits, "first")
    assert first.status_code == 201, first.text
    with _client(system, spec, "submissions", spec.resubmits) as c:
        w = c.post(
            f"{base}/experience-reports/{first.json()['submission_id']}/withdrawal",
            json={"reason": "Nộp nhầm"},
        )
    assert w.status_code == 200 and w.json()["status"] == "withdrawn", w.text
    second = _report(system, spec, spec.resubmits, "second")
    assert second.status_code == 201, second.text
    assert second.json()["receipt_number"] != first.json()["receipt_number"]

    person, new_deadline = spec.extended
    with _client(system, spec, "campaign", spec.secretariat) as c:
        (assignment,) = c.get(
            f"{base}/assignments", params={"assignee": person, "part": spec.experience}
        ).json()
        ext = c.post(
            f"{base}/assignments/{assignment['id']}/extensions",
            json={"new_deadline": new_deadline, "reason": "Đi công tác dài ngày"},
            headers={"Idempotency-Key": "ext-1"},
        )
    assert ext.status_code == 201, ext.text

    ids: dict[str, str] = {}
    for key, i in spec.initiatives.items():
        with _client(system, spec, "submissions", i.head) as c:
            r = c.post(f"{base}/initiatives", json=_initiative_body(i), headers={"Idempotency-Key": key})
        assert r.status_code == 201, (key, r.text)
        ids[key] = r.json()["submission_id"]
        for coauthor, _ in i.authors[1:]:
            with _client(system, spec, "submissions", coauthor) as c:
                ok = c.post(f"{base}/initiatives/{ids[key]}/authors/{coauthor}/confirmation")
            assert ok.status_code == 200, ok.text

    # ---- council: who reviews what (and why not), score sheets, the ranking, the selection
    system.set_clock(spec.score_at, rate=0)
    for key, i in spec.initiatives.items():
        with _client(system, spec, "submissions", spec.secretariat) as c:
            listing = c.get(f"{base}/initiatives/{ids[key]}/reviewers").json()
        assert [m["member_id"] for m in listing["reviewers"]] == i.reviewers, key
        assert [(e["member_id"], e["reason"]) for e in listing["excluded"]] == i.excluded, key
        for member, total in i.totals.items():
            with _client(system, spec, "submissions", member) as c:
                s = c.put(
                    f"{base}/initiatives/{ids[key]}/score-sheet",
                    json={"scores": _split(total, spec.criteria)},
                )
            assert s.status_code == 200, (key, member, s.text)
        for member, _ in i.excluded:
            with _client(system, spec, "submissions", member) as c:
                refused = c.put(
                    f"{base}/initiatives/{ids[key]}/score-sheet",
                    json={"scores": _split(60, spec.criteria)},
                )
            assert refused.status_code == 403, (key, member, refused.text)
    with _client(system, spec, "submissions", spec.secretariat) as c:
        ranking = c.get(f"{base}/ranking").json()
    by_id = {v: k for k, v in ids.items()}
    assert [
        (by_id[r["submission_id"]], r["rank"], r["score"]) for r in ranking["initiatives"]
    ] == spec.ranking
    with _client(system, spec, "submissions", spec.chair) as c:
        sel = c.post(
            f"{base}/selection",
            json={"selected": [ids[k] for k in spec.selected]},
            headers={"Idempotency-Key": "selection"},
        )
    assert sel.status_code == 201, sel.text
    eventually_sync(
        lambda: len(events_of(system, "initiative.selected")) == len(spec.selected),
        timeout=20,
        message="initiative.selected",
    )

    # ---- past the part's deadline: refused, except under the extension
    system.set_clock(spec.late_at, rate=0)
    late = _report(system, spec, spec.late, "late")
    assert late.status_code == 409, late.text
    extended = _report(system, spec, person, "extended")
    assert extended.status_code == 201, extended.text

    # ---- every deadline passed: misses, participation per unit, points per person
    system.set_clock(spec.end_at, rate=0)

    def misses() -> dict[str, int]:
        out: dict[str, int] = {}
        for e in events_of(system, "deadline.missed"):
            out[e["data"]["part"]] = out.get(e["data"]["part"], 0) + 1
        return out

    eventually_sync(lambda: misses() == spec.missed, timeout=60, message=f"deadline.missed {spec.missed}")

    def participation() -> dict[str, dict[str, int]]:
        with _client(system, spec, "campaign", spec.secretariat) as c:
            rows = c.get(f"{base}/participation").json()["units"]
        return {r["unit_id"]: {k: r[k] for k in ZERO} for r in rows}

    try:
        eventually_sync(lambda: participation() == spec.units, timeout=60, message="participation")
    except AssertionError:
        assert participation() == spec.units  # the difference, readably
        raise

    def points() -> dict[str, float]:
        with _client(system, spec, "rewards", spec.secretariat) as c:
            persons = c.get(f"{base}/priority-list").json()["persons"]
        return {p["person_id"]: p["points"] for p in persons}

    def expected(got: dict[str, float]) -> bool:
        named = {p: got.get(p) for p in spec.points}
        rest = {p: v for p, v in got.items() if p not in spec.points}
        return named == spec.points and all(v == spec.others for v in rest.values())

    try:
        eventually_sync(lambda: expected(points()), timeout=60, message="points per person")
    except AssertionError:
        got = points()
        assert {p: got.get(p) for p in spec.points} == spec.points
        assert {p: v for p, v in got.items() if p not in spec.points} == {}
        raise
    if spec.others is not None:
        assert len(points()) > len(spec.points)
