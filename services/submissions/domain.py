"""Submissions' rules, pure: what a valid experience report is, and when intake is open."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from shared.documents import Edition, ExperienceReportPart, format_datetime_vn, national_procedure_code
from shared.problems import Problem, bilingual_error, field_error


class ProcedureExperience(BaseModel):
    """One administrative procedure the official used online (thủ tục hành chính đã trải nghiệm)."""

    model_config = ConfigDict(extra="forbid")

    code: Annotated[
        str, Field(description="national code 1.004227, or the provincial form 1.011442.000.00.00.H38")
    ]
    used_on: date = Field(description="the date the service was used")
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


def check_intake_open(edition: Edition, part: ExperienceReportPart, now: datetime) -> None:
    closes = edition.intake_closes_at(part.id)
    if now >= closes:
        deadline = edition.deadline_of(part.id)
        raise Problem(
            409,
            f"Intake for this part is closed: submissions were due before {format_datetime_vn(deadline)}.",
            f"Đã hết hạn nhận bài phần thi này (hạn chót: trước {format_datetime_vn(deadline)}).",
            code="deadline_passed",
        )
    if now < edition.opens_at:
        raise Problem(
            409,
            "The edition is not open yet.",
            "Kỳ hội thi chưa mở.",
            code="not_open",
        )


def receipt_number(edition: str, n: int) -> str:
    return f"{edition}-TN-{n:06d}"
