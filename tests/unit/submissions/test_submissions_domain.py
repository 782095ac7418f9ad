"""Submissions' pure rules, checked against figures computed by hand."""

from __future__ import annotations

import io
import math
import zipfile
from datetime import datetime
from fractions import Fraction

import pytest

from services.submissions import domain
from shared.documents import Rubric
from shared.problems import DomainError, problem_of

VN = "+07:00"


def _at(hhmm: str) -> datetime:
    return datetime.fromisoformat(f"2023-10-20T{hhmm}:00{VN}")


def _rubric(**kw: object) -> Rubric:
    return Rubric.model_validate(
        {
            "criteria": [
                {"id": "novelty", "title": "Tính mới", "max": 30},
                {"id": "applicability", "title": "Khả năng áp dụng và nhân rộng", "max": 30},
                {"id": "effectiveness", "title": "Hiệu quả và lợi ích thiết thực", "max": 40},
            ],
            **kw,
        }
    )


def _totals(*xs: int) -> list[Fraction]:
    return [Fraction(x) for x in xs]


# ------------------------------------------------------------------------------------------------ deadlines


def test_deadline_label_names_the_last_day_of_an_end_of_day_deadline() -> None:
    deadline = datetime.fromisoformat("2023-10-26T00:00:00+07:00")
    assert domain.deadline_label_vi(deadline) == "hết ngày 25/10/2023 (+07:00)"
    assert domain.deadline_label_en(deadline) == "the end of 25/10/2023 (+07:00)"
    assert domain.deadline_label_vi(datetime.fromisoformat("2023-10-25T17:00:00+07:00")) == (
        "trước 25/10/2023 17:00:00 (+07:00)"
    )


def test_an_extension_moves_the_deadline_only_later() -> None:
    part = datetime.fromisoformat("2023-10-26T00:00:00+07:00")
    later = datetime.fromisoformat("2023-10-29T00:00:00+07:00")
    earlier = datetime.fromisoformat("2023-10-24T00:00:00+07:00")
    assert domain.deadline_in_force(part, None) == part
    assert domain.deadline_in_force(part, later) == later
    assert domain.deadline_in_force(part, earlier) == part


# ------------------------------------------------------------------------------------------------ authors


def _author(share: float, pid: str | None = "p-0007", name: str | None = None) -> domain.InitiativeAuthor:
    return domain.InitiativeAuthor(person_id=pid, name=name, share=share)


def test_shares_summing_to_100_pass_and_otherwise_are_refused_in_both_languages() -> None:
    domain.check_authors([_author(33.33), _author(33.33, "p-0008"), _author(33.34, None, "Nguyễn Văn Ngoài")])
    with pytest.raises(DomainError) as exc:
        domain.check_authors([_author(60), _author(30, "p-0008")])
    assert problem_of(exc.value).status == 422
    err = exc.value.errors[0]
    assert err["field"] == "authors" and "90" in err["message"] and "100%" in err["message_vi"]


def test_an_outside_co_author_needs_a_name_and_nobody_is_listed_twice() -> None:
    with pytest.raises(DomainError) as exc:
        domain.check_authors([_author(50), _author(25, None), _author(25)])
    fields = {e["field"] for e in exc.value.errors}
    assert fields == {"authors[1].name", "authors[2].person_id"}


# ------------------------------------------------------------------------------------------------ attachments

PDF = b"%PDF-1.7\n1 0 obj\n<<>>\nendobj\n%%EOF\n"


def _office(folder: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr(f"{folder}/document.xml", "<x/>")
    return buf.getvalue()


def test_the_type_comes_from_the_bytes_not_the_name() -> None:
    assert domain.sniff_type(PDF) == "pdf"
    assert domain.sniff_type(_office("word")) == "docx"
    assert domain.sniff_type(_office("xl")) == "xlsx"
    assert domain.sniff_type(b"\x89PNG\r\n\x1a\n....") == "png"
    assert domain.sniff_type(b"\xff\xd8\xff\xe0....") == "jpeg"
    assert domain.sniff_type(b"MZ\x90\x00") == "executable"
    assert domain.sniff_type(b"hello") is None
    # A PDF named .docx is kept as a PDF, its extension corrected.
    assert domain.check_attachment(PDF, "ho-so.docx", ["pdf", "docx"], 100) == ("pdf", "ho-so.pdf")
    assert domain.check_attachment(PDF, "Báo cáo.pdf", ["pdf"], 100) == ("pdf", "Báo cáo.pdf")


@pytest.mark.parametrize(
    ("data", "status"),
    [(b"", 422), (b"MZ" + b"\0" * 10, 415), (b"plain text", 415), (PDF + b"x" * (100 - len(PDF) + 1), 413)],
)
def test_bad_uploads_are_refused_with_the_right_status(data: bytes, status: int) -> None:
    with pytest.raises(DomainError) as exc:
        domain.check_attachment(data, "x.pdf", ["pdf"], 100)
    assert problem_of(exc.value).status == status
    assert exc.value.detail_vi


def test_exactly_the_limit_is_accepted() -> None:
    data = PDF + b"x" * (100 - len(PDF))
    assert len(data) == 100
    assert domain.check_attachment(data, "a.pdf", ["pdf"], 100)[0] == "pdf"


# ------------------------------------------------------------------------------------------------ score sheets


def test_a_score_sheet_covers_each_criterion_within_its_range() -> None:
    rubric = _rubric(comment_required_below=50)
    assert domain.check_score_sheet(
        rubric, {"novelty": 25, "applicability": 20.5, "effectiveness": 30}, None
    ) == {
        "novelty": 25,
        "applicability": Fraction(41, 2),
        "effectiveness": 30,
    }
    with pytest.raises(DomainError) as exc:
        domain.check_score_sheet(rubric, {"novelty": 31, "applicability": -1, "speed": 3}, None)
    assert {e["field"] for e in exc.value.errors} == {
        "scores.novelty",
        "scores.applicability",
        "scores.effectiveness",
        "scores.speed",
    }


def test_a_total_below_the_threshold_needs_a_comment() -> None:
    rubric = _rubric(comment_required_below=50)
    low = {"novelty": 10, "applicability": 10, "effectiveness": 29}  # 49
    with pytest.raises(DomainError) as exc:
        domain.check_score_sheet(rubric, low, "  ")
    assert exc.value.errors[0]["field"] == "comment"
    domain.check_score_sheet(rubric, low, "Chưa có số liệu hiệu quả.")
    domain.check_score_sheet(rubric, {"novelty": 10, "applicability": 10, "effectiveness": 30}, None)  # 50


# ------------------------------------------------------------------------------------------------ aggregation


def test_median_of_an_even_count_is_the_mean_of_the_two_middle_totals() -> None:
    assert domain.median(_totals(90, 60, 80, 70)) == 75
    assert domain.median(_totals(61, 70, 80)) == 70
    assert domain.median(_totals(70, 71)) == Fraction(141, 2)
    assert domain.mean(_totals(60, 70, 80, 91)) == Fraction(301, 4)


def test_disagreement_measures_by_hand() -> None:
    # totals 60 70 80 90: mean 75; squared deviations 225+25+25+225 = 500
    t = _totals(60, 70, 80, 90)
    assert domain.disagreement(t, "population_stdev") == pytest.approx(math.sqrt(125))  # 11.18
    assert domain.disagreement(t, "sample_stdev") == pytest.approx(math.sqrt(500 / 3))  # 12.91
    assert domain.disagreement(t, "range") == 30
    assert domain.disagreement(_totals(70), "population_stdev") == 0


def test_ranking_by_median_with_ties_broken_as_the_edition_states() -> None:
    rubric = _rubric(
        aggregate="median",
        ties=["higher_mean", "earlier_receipt"],
        disagreement={"measure": "population_stdev", "above": 15},
    )
    entries = [
        domain.Entry("A", _at("10:00"), _totals(60, 70, 80, 90)),  # median 75, mean 75
        domain.Entry("B", _at("09:00"), _totals(75, 75, 75)),  # median 75, mean 75, earlier receipt
        domain.Entry("C", _at("08:00"), _totals(40, 50, 90, 100)),  # median 70; stdev sqrt(650) = 25.5
        domain.Entry("D", _at("07:00"), _totals(70, 80, 76)),  # median 76, mean 75.33
        domain.Entry("E", _at("06:00"), []),  # not scored
    ]
    ranked = {r.submission_id: r for r in domain.rank(entries, rubric)}
    assert [(r.submission_id, r.rank) for r in domain.rank(entries, rubric)] == [
        ("D", 1),
        ("B", 2),
        ("A", 3),
        ("C", 4),
        ("E", None),
    ]
    assert ranked["A"].score == 75 and ranked["A"].mean == 75
    assert ranked["D"].score == 76 and ranked["D"].mean == Fraction(226, 3)
    assert ranked["C"].disputed and ranked["C"].disagreement == pytest.approx(math.sqrt(650))
    assert not ranked["A"].disputed
    assert ranked["E"].score is None and ranked["E"].sheets == 0


def test_ranking_by_mean_uses_the_median_then_shares_a_rank_when_still_tied() -> None:
    rubric = _rubric(aggregate="mean", ties=["higher_median"])
    entries = [
        domain.Entry("F", _at("10:00"), _totals(90, 55, 65)),  # mean 70, median 65
        domain.Entry("G", _at("09:00"), _totals(80, 60, 70)),  # mean 70, median 70
        domain.Entry("H", _at("08:00"), _totals(70, 70)),  # mean 70, median 70: tied with G
        domain.Entry("I", _at("07:00"), _totals(50)),
    ]
    assert [(r.submission_id, r.rank) for r in domain.rank(entries, rubric)] == [
        ("G", 1),
        ("H", 1),
        ("F", 3),
        ("I", 4),
    ]


# ------------------------------------------------------------------------------------------------ reviewers


def test_reviewers_exclude_the_authors_units_and_declared_conflicts() -> None:
    members = ["p-0001", "p-0007", "p-0013", "p-0018", "p-0021"]
    units = {
        "p-0001": "u-vp",
        "p-0007": "u-tnn-ks",
        "p-0013": "u-ccqldd",
        "p-0018": "u-vpdkdd",
        "p-0021": "u-ttcntt",
    }
    assert domain.reviewers(members, units, {"u-tnn-ks", "u-vp"}, set()) == ["p-0013", "p-0018", "p-0021"]
    assert domain.reviewers(members, units, {"u-tnn-ks"}, {"p-0018"}) == ["p-0001", "p-0013", "p-0021"]
    # The chair's reassignment removes one and cannot bring back an own-unit member.
    assert domain.reviewers(members, units, {"u-tnn-ks"}, set(), added={"p-0007"}, removed={"p-0021"}) == [
        "p-0001",
        "p-0013",
        "p-0018",
    ]


def test_procedures_are_checked_against_the_catalogue_only_when_one_is_loaded() -> None:
    domain.check_catalogue(["1.004227", "1.999999"], None)
    domain.check_catalogue(["1.004227"], {"1.004227", "1.000494"})
    with pytest.raises(DomainError) as exc:
        domain.check_catalogue(["1.004227", "1.999999"], {"1.004227"})
    assert problem_of(exc.value).status == 422 and "1.999999" in exc.value.errors[0]["message_vi"]


def test_only_a_submission_in_force_can_change() -> None:
    domain.check_changeable("submitted", "Báo cáo")
    domain.check_changeable("draft", "Sáng kiến")
    for status in ("withdrawn", "rejected"):
        with pytest.raises(DomainError) as exc:
            domain.check_changeable(status, "Báo cáo")
        assert problem_of(exc.value).status == 409
