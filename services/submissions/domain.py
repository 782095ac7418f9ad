"""Submissions' rules, pure: what a valid experience report is, and when intake is open."""

from __future__ import annotations

import io
import math
import zipfile
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from fractions import Fraction
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from shared.bounds import BusinessDate
from shared.documents import (
    VN_TZ,
    Edition,
    ExperienceReportPart,
    Rubric,
    _PartBase,
    format_date_vn,
    format_datetime_vn,
    national_procedure_code,
)
from shared.errors import Problem, bilingual_error, field_error


class ProcedureExperience(BaseModel):
    """One administrative procedure the official used online (thủ tục hành chính đã trải nghiệm)."""

    model_config = ConfigDict(extra="forbid")

    code: Annotated[
        str, Field(description="national code 1.004227, or the provincial form 1.011442.000.00.00.H38")
    ]
    used_on: BusinessDate = Field(description="the date the service was used")
    portal: str = Field(default="Cổng Dịch vụ công quốc gia", min_length=1, max_length=200)
    level: Literal["toan_trinh", "mot_phan"] = Field(
        description="toàn trình (full-process) or một phần (partial)"
    )
    rating: int = Field(ge=1, le=5, description="1 (very poor) … 5 (very good)")
    narrative: str = Field(min_length=1, max_length=10_000)
    problems: str | None = Field(default=None, max_length=10_000)

    @field_validator("code")
    @classmethod
    def _code(cls, v: str) -> str:
        try:
            national_procedure_code(v)
        except ValueError:
            raise bilingual_error(
                "procedure_code",
                f"{v!r} is not a procedure code (expected 1.004227 or 1.011442.000.00.00.H38)",
                f"{v!r} không phải mã thủ tục hành chính (dạng 1.004227 hoặc 1.011442.000.00.00.H38)",
            ) from None
        return v.strip()

    @property
    def national_code(self) -> str:
        return national_procedure_code(self.code)


class ExperienceReportCreate(BaseModel):
    """An experience report on online public services (trải nghiệm dịch vụ công trực tuyến)."""

    model_config = ConfigDict(extra="forbid")

    part: str | None = Field(
        default=None, description="the edition's experience-report part (default: the only one)"
    )
    procedures: list[ProcedureExperience] = Field(min_length=1, max_length=100)


def experience_part(edition: Edition, part_id: str | None) -> ExperienceReportPart:
    parts = [p for p in edition.parts if isinstance(p, ExperienceReportPart)]
    if part_id is not None:
        parts = [p for p in parts if p.id == part_id]
    if not parts:
        raise Problem(
            422,
            f"Edition {edition.edition} has no experience-report part {part_id or ''}".strip() + ".",
            f"Kỳ {edition.edition} không có phần thi trải nghiệm {part_id or ''}".strip() + ".",
            code="no_such_part",
            errors=[field_error("part", "No such experience-report part.", "Không có phần thi này.")],
        )
    return parts[0]


def check_report(report: ExperienceReportCreate, part: ExperienceReportPart, today: date) -> list[str]:
    """Validate against the edition; return the distinct national codes in order of first mention."""
    errors = []
    distinct: list[str] = []
    for i, p in enumerate(report.procedures):
        if p.national_code not in distinct:
            distinct.append(p.national_code)
        if p.used_on > today:
            errors.append(
                field_error(
                    f"procedures[{i}].used_on",
                    f"The date used ({p.used_on:%d/%m/%Y}) is in the future.",
                    f"Ngày sử dụng ({p.used_on:%d/%m/%Y}) ở tương lai.",
                    "future_date",
                )
            )
    need = part.min_distinct_procedures
    if len(distinct) < need:
        errors.insert(
            0,
            field_error(
                "procedures",
                f"At least {need} different procedures are required; {len(distinct)} given "
                "(two forms of one code are one procedure).",
                f"Cần ít nhất {need} thủ tục hành chính khác nhau; mới có {len(distinct)} "
                "(hai dạng của cùng một mã là một thủ tục).",
                "distinct_procedures",
            ),
        )
    if errors:
        raise Problem(
            422,
            "The experience report is invalid.",
            "Báo cáo trải nghiệm không hợp lệ.",
            code="validation",
            errors=errors,
        )
    return distinct


def deadline_in_force(part_deadline: datetime, extended_to: datetime | None) -> datetime:
    """The deadline that applies to one assignee: the part's, or their extension if it is later.

    An extension never shortens a deadline (a secretariat error cannot make an on-time receipt late)."""
    if extended_to is not None and extended_to > part_deadline:
        return extended_to
    return part_deadline


def deadline_label_vi(deadline: datetime) -> str:
    """How a deadline reads to a user: 'hết ngày 25/10/2023 (+07:00)' for an end-of-day deadline
    (exclusive 26/10/2023 00:00:00), otherwise 'trước 26/10/2023 17:00:00 (+07:00)'."""
    local = deadline.astimezone(VN_TZ)
    if local.time() == time(0):
        return f"hết ngày {format_date_vn(local.date() - timedelta(days=1))} (+07:00)"
    return f"trước {format_datetime_vn(deadline)}"


def deadline_label_en(deadline: datetime) -> str:
    local = deadline.astimezone(VN_TZ)
    if local.time() == time(0):
        return f"the end of {format_date_vn(local.date() - timedelta(days=1))} (+07:00)"
    return f"before {format_datetime_vn(deadline)}"


def check_intake_open(
    edition: Edition, part: _PartBase, now: datetime, extended_to: datetime | None = None
) -> datetime:
    """Refuse (409) a receipt or a change at ``now`` once the deadline in force plus the part's grace has
    passed; return the deadline in force (exclusive). ``now`` is the server's receipt time."""
    deadline = deadline_in_force(edition.deadline_of(part.id), extended_to)
    if now >= deadline + part.grace_delta:
        raise Problem(
            409,
            f"Intake for this part is closed: the deadline was {deadline_label_en(deadline)}.",
            f"Đã hết hạn nhận bài phần thi này: hạn chót là {deadline_label_vi(deadline)}.",
            code="deadline_passed",
        )
    if now < edition.opens_at:
        raise Problem(
            409,
            f"The edition opens on {format_date_vn(edition.opens)}.",
            f"Kỳ hội thi chưa mở (mở từ ngày {format_date_vn(edition.opens)}).",
            code="not_open",
        )
    return deadline


def check_catalogue(codes: list[str], known: set[str] | None) -> None:
    """Where a procedure catalogue is loaded, every reported national code must be in it (422)."""
    if known is None:
        return
    unknown = [c for c in codes if c not in known]
    if unknown:
        raise Problem(
            422,
            "The experience report is invalid.",
            "Báo cáo trải nghiệm không hợp lệ.",
            code="validation",
            errors=[
                field_error(
                    "procedures",
                    f"Not in the procedure catalogue: {', '.join(unknown)}.",
                    f"Không có trong danh mục thủ tục hành chính: {', '.join(unknown)}.",
                    "unknown_procedure",
                )
            ],
        )


def check_changeable(status: str, what_vi: str) -> None:
    """Only a submission still in force can be revised or withdrawn (409 otherwise)."""
    if status == "withdrawn":
        raise Problem(
            409,
            "This submission was withdrawn; it can no longer be changed.",
            f"{what_vi} đã được rút; không thể thay đổi nữa.",
            code="withdrawn",
        )
    if status == "rejected":
        raise Problem(
            409,
            "This submission was ruled ineligible; it can no longer be changed.",
            f"{what_vi} đã bị xác định không hợp lệ; không thể thay đổi nữa.",
            code="rejected",
        )


def same_content(stored: dict[str, Any], new: dict[str, Any]) -> bool:
    """Whether a revision changes nothing the submitter wrote (bookkeeping keys of the stored body aside)."""
    keys = set(new) | (set(stored) - _BOOKKEEPING)
    return all(stored.get(k) == new.get(k) for k in keys if k not in _BOOKKEEPING)


_BOOKKEEPING = frozenset({"national_codes", "unions", "revised_at", "unit_name"})


def receipt_number(edition: str, n: int) -> str:
    return f"{edition}-TN-{n:06d}"


# ============================================================================================== initiatives


class InitiativeAuthor(BaseModel):
    """An author of an initiative: a directory person by id, or an outside co-author named without an id
    (đồng tác giả ngoài đơn vị: listed, earns nothing in the reward ledger)."""

    model_config = ConfigDict(extra="forbid")

    person_id: str | None = Field(default=None, max_length=100, description="directory id; None: outside")
    name: str | None = Field(default=None, min_length=1, max_length=200, description="required when outside")
    date_of_birth: BusinessDate | None = None
    workplace: str | None = Field(default=None, max_length=300)
    title: str | None = Field(default=None, max_length=200)
    qualification: str | None = Field(default=None, max_length=200)
    share: float = Field(gt=0, le=100, description="tỷ lệ đóng góp, percent")


class InitiativeContent(BaseModel):
    """An initiative application (đơn yêu cầu công nhận sáng kiến, Decree 13/2012, Circular 18/2013)."""

    model_config = ConfigDict(extra="forbid")

    part: str | None = Field(
        default=None, description="the edition's initiative part (default: the only one)"
    )
    unit_id: str | None = Field(
        default=None, description="the unit (secretariat only; default: the caller's)"
    )
    title: str = Field(min_length=1, max_length=500, description="tên sáng kiến")
    authors: list[InitiativeAuthor] = Field(min_length=1, max_length=30)
    field_of_application: str = Field(min_length=1, max_length=500, description="lĩnh vực áp dụng")
    first_applied_on: BusinessDate | None = Field(
        default=None, description="ngày áp dụng lần đầu hoặc áp dụng thử"
    )
    existing_solution: str = Field(min_length=1, max_length=20_000, description="giải pháp đã biết")
    existing_weaknesses: str = Field(min_length=1, max_length=20_000, description="ưu, nhược điểm của nó")
    new_solution: str = Field(min_length=1, max_length=50_000, description="nội dung giải pháp mới")
    novelty: str = Field(min_length=1, max_length=20_000, description="tính mới")
    applicability: str = Field(min_length=1, max_length=20_000, description="khả năng áp dụng, phạm vi")
    benefits: str = Field(min_length=1, max_length=20_000, description="lợi ích thu được")
    benefits_kind: Literal["actual", "expected"] = Field(description="thực tế (applied) or dự kiến")
    confidential_information: str | None = Field(
        default=None, max_length=20_000, description="thông tin bảo mật"
    )


def check_authors(authors: list[InitiativeAuthor]) -> None:
    """Shares sum to 100 (to 0.01), an outside co-author has a name, nobody is listed twice (422)."""
    errors = []
    seen: set[str] = set()
    for i, a in enumerate(authors):
        if a.person_id is None and not a.name:
            errors.append(
                field_error(
                    f"authors[{i}].name",
                    "An outside co-author needs a name.",
                    "Đồng tác giả ngoài đơn vị cần có họ tên.",
                    "missing_name",
                )
            )
        if a.person_id is not None:
            if a.person_id in seen:
                errors.append(
                    field_error(
                        f"authors[{i}].person_id",
                        f"{a.person_id} is listed twice.",
                        f"{a.person_id} được kê khai hai lần.",
                        "duplicate_author",
                    )
                )
            seen.add(a.person_id)
    total = sum((Fraction(str(a.share)) for a in authors), Fraction(0))
    if abs(total - 100) > Fraction(1, 100):
        errors.append(
            field_error(
                "authors",
                f"Contribution shares must sum to 100%; they sum to {float(total):g}%.",
                f"Tổng tỷ lệ đóng góp của các tác giả phải bằng 100%; hiện là {float(total):g}%.",
                "shares_sum",
            )
        )
    if errors:
        raise Problem(
            422, "The initiative is invalid.", "Sáng kiến không hợp lệ.", code="validation", errors=errors
        )


def initiative_receipt_number(edition: str, n: int) -> str:
    return f"{edition}-SK-{n:06d}"


# ---------------------------------------------------------------------------------------------- attachments

MEDIA_TYPES: dict[str, str] = {
    "pdf": "application/pdf",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "png": "image/png",
    "jpeg": "image/jpeg",
}
_EXECUTABLE_MAGIC = (b"MZ", b"\x7fELF", b"\xcf\xfa\xed\xfe", b"\xce\xfa\xed\xfe", b"\xca\xfe\xba\xbe", b"#!")


def sniff_type(data: bytes) -> str | None:
    """The file type from its bytes (pdf, docx, xlsx, png, jpeg, executable), or None if unknown.

    The name is never trusted: a PDF renamed .docx is a PDF."""
    if data.startswith(b"%PDF-"):
        return "pdf"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data.startswith(_EXECUTABLE_MAGIC):
        return "executable"
    if data.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as z:
                names = set(z.namelist())
        except (zipfile.BadZipFile, ValueError):
            return None
        if "[Content_Types].xml" in names:
            if any(n.startswith("word/") for n in names):
                return "docx"
            if any(n.startswith("xl/") for n in names):
                return "xlsx"
    return None


def check_attachment(data: bytes, filename: str, allowed: list[str], max_bytes: int) -> tuple[str, str]:
    """Validate an upload against the part's rule; return (type, stored file name).

    Rule (documented in the API): the type is decided from the bytes; a file whose name says otherwise is
    kept as what it is and its extension corrected (``ho-so.docx`` holding a PDF → ``ho-so.pdf``).
    Empty → 422; over ``max_bytes`` → 413; an executable or a type the edition does not allow → 415."""
    if not data:
        raise Problem(
            422,
            "The file is empty.",
            "Tệp đính kèm rỗng.",
            code="empty_file",
            errors=[field_error("file", "The file is empty.", "Tệp rỗng.", "empty_file")],
        )
    if len(data) > max_bytes:
        raise Problem(
            413,
            f"The file is {len(data)} bytes; the limit is {max_bytes} bytes.",
            f"Tệp có dung lượng {len(data)} byte, vượt giới hạn {max_bytes} byte.",
            code="too_large",
        )
    kind = sniff_type(data)
    if kind == "executable":
        raise Problem(
            415,
            "Executable files are not accepted, whatever their name.",
            "Không nhận tệp chương trình thực thi, dù đặt tên gì.",
            code="executable",
        )
    allowed_norm = {"jpeg" if a.lower() in ("jpg", "jpeg") else a.lower() for a in allowed}
    if kind is None or kind not in allowed_norm:
        shown = ", ".join(sorted(t.upper() for t in allowed_norm))
        raise Problem(
            415,
            f"This file type is not accepted; accepted: {shown}.",
            f"Loại tệp này không được chấp nhận; chỉ nhận: {shown}.",
            code="unsupported_type",
        )
    stem = filename.rsplit("/", 1)[-1].rsplit("\\", 1)[-1].strip() or "tep-dinh-kem"
    base, dot, ext = stem.rpartition(".")
    if not dot:
        base = stem
    ext_norm = "jpeg" if ext.lower() in ("jpg", "jpeg") else ext.lower()
    name = stem if dot and ext_norm == kind else f"{base}.{'jpg' if kind == 'jpeg' else kind}"
    return kind, name[:255]


# ============================================================================================== council review


@dataclass(frozen=True)
class ScoreSheet:
    """One council member's scores for one initiative (phiếu chấm)."""

    member_id: str
    scores: dict[str, Fraction]

    @property
    def total(self) -> Fraction:
        return sum(self.scores.values(), Fraction(0))


def check_score_sheet(rubric: Rubric, scores: dict[str, float], comment: str | None) -> dict[str, Fraction]:
    """Every criterion of the rubric, each within 0..max, nothing else; a comment below the threshold (422)."""
    errors = []
    criteria = {c.id: c for c in rubric.criteria}
    for cid in scores:
        if cid not in criteria:
            errors.append(
                field_error(
                    f"scores.{cid}", "No such criterion.", "Không có tiêu chí này.", "unknown_criterion"
                )
            )
    out: dict[str, Fraction] = {}
    for c in rubric.criteria:
        if c.id not in scores:
            errors.append(
                field_error(
                    f"scores.{c.id}",
                    f"A score for '{c.title}' is required.",
                    f"Chưa chấm tiêu chí '{c.title}'.",
                    "missing_score",
                )
            )
            continue
        v = Fraction(str(scores[c.id]))
        if not 0 <= v <= c.max:
            errors.append(
                field_error(
                    f"scores.{c.id}",
                    f"'{c.title}' is scored 0 to {c.max}.",
                    f"Tiêu chí '{c.title}' chấm từ 0 đến {c.max} điểm.",
                    "out_of_range",
                )
            )
        out[c.id] = v
    if not errors and rubric.comment_required_below is not None:
        total = sum(out.values(), Fraction(0))
        if total < Fraction(str(rubric.comment_required_below)) and not (comment or "").strip():
            errors.append(
                field_error(
                    "comment",
                    f"A total below {rubric.comment_required_below:g} needs a written comment.",
                    f"Tổng điểm dưới {rubric.comment_required_below:g} phải có nhận xét bằng văn bản.",
                    "comment_required",
                )
            )
    if errors:
        raise Problem(
            422, "The score sheet is invalid.", "Phiếu chấm không hợp lệ.", code="validation", errors=errors
        )
    return out


def mean(values: list[Fraction]) -> Fraction:
    return sum(values, Fraction(0)) / len(values)


def median(values: list[Fraction]) -> Fraction:
    """The middle total; of an even count, the mean of the two middle totals."""
    s = sorted(values)
    n = len(s)
    mid = n // 2
    return s[mid] if n % 2 else (s[mid - 1] + s[mid]) / 2


def disagreement(values: list[Fraction], measure: str) -> float:
    """How far members' totals disagree: population or sample standard deviation, or the range."""
    if len(values) < 2:
        return 0.0
    if measure == "range":
        return float(max(values) - min(values))
    m = mean(values)
    ss = sum(((v - m) ** 2 for v in values), Fraction(0))
    n = len(values) if measure == "population_stdev" else len(values) - 1
    return math.sqrt(ss / n)


@dataclass(frozen=True)
class Entry:
    """An initiative in the ranking: its receipt time and the totals of its score sheets."""

    submission_id: str
    received_at: datetime
    totals: list[Fraction]


@dataclass(frozen=True)
class Ranked:
    submission_id: str
    score: Fraction | None  # the rubric's aggregate; None: not scored yet
    mean: Fraction | None
    median: Fraction | None
    disagreement: float | None
    disputed: bool  # disagreement above the rubric's limit: the council should discuss it
    sheets: int
    rank: int | None  # 1 = best; equal after every tie rule → equal rank ("1, 2, 2, 4")


def rank(entries: list[Entry], rubric: Rubric) -> list[Ranked]:
    """Aggregate each entry's totals as the rubric says (mean | median) and rank: higher score first, then
    the rubric's tie rules in order (higher_median, higher_mean, earlier_receipt). Unscored entries come
    last, unranked."""

    def key(e: Entry) -> tuple[Fraction | float, ...]:
        agg = mean(e.totals) if rubric.aggregate == "mean" else median(e.totals)
        parts: list[Fraction | float] = [-agg]
        for rule in rubric.ties:
            if rule == "higher_median":
                parts.append(-median(e.totals))
            elif rule == "higher_mean":
                parts.append(-mean(e.totals))
            else:  # earlier_receipt
                parts.append(e.received_at.timestamp())
        return tuple(parts)

    scored = sorted((e for e in entries if e.totals), key=lambda e: (key(e), e.submission_id))
    out: list[Ranked] = []
    previous: tuple[Fraction | float, ...] | None = None
    current = 0
    for i, e in enumerate(scored, start=1):
        k = key(e)
        if k != previous:
            current, previous = i, k
        d = disagreement(e.totals, rubric.disagreement.measure) if rubric.disagreement else None
        out.append(
            Ranked(
                submission_id=e.submission_id,
                score=mean(e.totals) if rubric.aggregate == "mean" else median(e.totals),
                mean=mean(e.totals),
                median=median(e.totals),
                disagreement=d,
                disputed=bool(rubric.disagreement and d is not None and d > rubric.disagreement.above),
                sheets=len(e.totals),
                rank=current,
            )
        )
    for e in sorted((e for e in entries if not e.totals), key=lambda e: e.received_at):
        out.append(Ranked(e.submission_id, None, None, None, None, False, 0, None))
    return out


def reviewers(
    members: list[str],
    member_units: dict[str, str | None],
    author_units: AbstractSet[str],
    conflicts: AbstractSet[str],
    added: AbstractSet[str] = frozenset(),
    removed: AbstractSet[str] = frozenset(),
) -> list[str]:
    """Who reviews an initiative: every council member except those of the authors' units (as of
    submission) and those who declared a conflict; the chair's reassignments on top, never overriding
    the own-unit or conflict rule."""
    excluded = {m for m in members if member_units.get(m) in author_units} | conflicts
    chosen = [m for m in members if m not in excluded and m not in removed]
    chosen += [m for m in members if m in added and m not in excluded and m not in chosen]
    return chosen


def own_unit_refusal() -> Problem:
    return Problem(
        403,
        "A council member never scores an initiative of their own unit.",
        "Thành viên Hội đồng không chấm sáng kiến của đơn vị mình.",
        code="own_unit",
    )
