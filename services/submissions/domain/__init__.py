"""Submissions' rules, pure: what a valid experience report is, and when intake is open."""

from __future__ import annotations

import io
import math
import zipfile
import zlib
from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from datetime import date, datetime
from fractions import Fraction
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

from shared.bounds import PROCEDURE_CODE_PATTERN, BusinessDate
from shared.documents import (
    Edition,
    ExperienceReportPart,
    Rubric,
    _PartBase,
    deadline_label_en,
    deadline_label_vi,
    format_date_vn,
    national_procedure_code,
)
from shared.errors import DomainError, Refusal, bilingual_error, field_error
from shared.text import LongText, Text, clean_text


class ProcedureExperience(BaseModel):
    """One administrative procedure the official used online (thủ tục hành chính đã trải nghiệm)."""

    model_config = ConfigDict(extra="forbid")

    code: Annotated[
        Text,
        Field(
            description="national code 1.004227, or the provincial form 1.011442.000.00.00.H38",
            json_schema_extra={"pattern": PROCEDURE_CODE_PATTERN},
        ),
    ]
    used_on: BusinessDate = Field(description="the date the service was used")
    portal: Text = Field(default="Cổng Dịch vụ công quốc gia", min_length=1, max_length=200)
    level: Literal["toan_trinh", "mot_phan"] = Field(
        description="toàn trình (full-process) or một phần (partial)"
    )
    rating: int = Field(ge=1, le=5, description="1 (very poor) … 5 (very good)")
    narrative: LongText = Field(min_length=1, max_length=10_000)
    problems: LongText | None = Field(default=None, max_length=10_000)

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
        raise DomainError(
            Refusal.INVALID,
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
        raise DomainError(
            Refusal.INVALID,
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


def check_intake_open(
    edition: Edition, part: _PartBase, now: datetime, extended_to: datetime | None = None
) -> datetime:
    """Refuse (409) a receipt or a change at ``now`` once the deadline in force plus the part's grace has
    passed; return the deadline in force (exclusive). ``now`` is the server's receipt time."""
    deadline = deadline_in_force(edition.deadline_of(part.id), extended_to)
    if now >= deadline + part.grace_delta:
        raise DomainError(
            Refusal.CONFLICT,
            f"Intake for this part is closed: the deadline was {deadline_label_en(deadline)}.",
            f"Đã hết hạn nhận bài phần thi này: hạn chót là {deadline_label_vi(deadline)}.",
            code="deadline_passed",
        )
    if now < edition.opens_at:
        raise DomainError(
            Refusal.CONFLICT,
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
        raise DomainError(
            Refusal.INVALID,
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
        raise DomainError(
            Refusal.CONFLICT,
            "This submission was withdrawn; it can no longer be changed.",
            f"{what_vi} đã được rút; không thể thay đổi nữa.",
            code="withdrawn",
        )
    if status == "rejected":
        raise DomainError(
            Refusal.CONFLICT,
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
    name: Text | None = Field(default=None, min_length=1, max_length=200, description="required when outside")
    date_of_birth: BusinessDate | None = None
    workplace: Text | None = Field(default=None, max_length=300)
    title: Text | None = Field(default=None, max_length=200)
    qualification: Text | None = Field(default=None, max_length=200)
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
    title: Text = Field(min_length=1, max_length=500, description="tên sáng kiến")
    authors: list[InitiativeAuthor] = Field(min_length=1, max_length=30)
    field_of_application: Text = Field(min_length=1, max_length=500, description="lĩnh vực áp dụng")
    first_applied_on: BusinessDate | None = Field(
        default=None, description="ngày áp dụng lần đầu hoặc áp dụng thử"
    )
    existing_solution: LongText = Field(min_length=1, max_length=20_000, description="giải pháp đã biết")
    existing_weaknesses: LongText = Field(
        min_length=1, max_length=20_000, description="ưu, nhược điểm của nó"
    )
    new_solution: LongText = Field(min_length=1, max_length=50_000, description="nội dung giải pháp mới")
    novelty: LongText = Field(min_length=1, max_length=20_000, description="tính mới")
    applicability: LongText = Field(min_length=1, max_length=20_000, description="khả năng áp dụng, phạm vi")
    benefits: LongText = Field(min_length=1, max_length=20_000, description="lợi ích thu được")
    benefits_kind: Literal["actual", "expected"] = Field(description="thực tế (applied) or dự kiến")
    confidential_information: LongText | None = Field(
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
        raise DomainError(
            Refusal.INVALID,
            "The initiative is invalid.",
            "Sáng kiến không hợp lệ.",
            code="validation",
            errors=errors,
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


def check_filename(filename: str) -> str:
    """The name as given, in NFC; 422 on ``filename`` for a control character, a path separator or a name that
    is only dots — a stored name reaches Content-Disposition headers, exports and people's disks."""
    try:
        name = clean_text(filename, multiline=False).strip()
    except PydanticCustomError as exc:
        raise _bad_filename(exc.message(), str((exc.context or {}).get("vi", ""))) from None
    if any(ch in _BIDI_CONTROLS for ch in name):  # "hoa-don\u202efdp.exe" shows as "hoa-donexe.pdf"
        raise _bad_filename(
            "A file name may not contain text-direction controls.",
            "Tên tệp không được chứa ký tự điều khiển hướng văn bản.",
        )
    if "/" in name or "\\" in name:
        raise _bad_filename(
            "A file name may not contain / or \\.", "Tên tệp không được chứa ký tự / hoặc \\."
        )
    if not name.strip("."):
        raise _bad_filename("The file name is empty.", "Tên tệp không được để trống.")
    return name


_BIDI_CONTROLS = frozenset("\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
# ``check_filename`` as a JSON Schema pattern, for the OpenAPI document: none of the refused characters, and
# something besides dots and spaces.
_FILENAME_REFUSED = r"\u0000-\u001f\u007f-\u009f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069/\\"
FILENAME_PATTERN = rf"^[^{_FILENAME_REFUSED}]*[^{_FILENAME_REFUSED}\s.][^{_FILENAME_REFUSED}]*$"


def _bad_filename(en: str, vi: str) -> DomainError:
    return DomainError(
        Refusal.INVALID,
        f"The file name is not accepted: {en}",
        f"Tên tệp không được chấp nhận: {vi}",
        code="validation",
        errors=[field_error("filename", en, vi, "invalid_filename")],
    )


def check_attachment_quota(count: int, total: int, size: int, max_files: int, max_total: int) -> None:
    """413 when one more file (``size`` bytes) would exceed the part's count or total-size cap for one
    submission (``count`` files, ``total`` bytes already attached)."""
    if count + 1 > max_files:
        raise DomainError(
            Refusal.TOO_LARGE,
            f"A submission takes at most {max_files} files; it already has {count}.",
            f"Mỗi hồ sơ chỉ được đính kèm tối đa {max_files} tệp; hồ sơ đã có {count} tệp.",
            code="too_many_files",
        )
    if total + size > max_total:
        raise DomainError(
            Refusal.TOO_LARGE,
            f"All files of a submission together may not exceed {max_total} bytes; "
            f"{total} bytes are already attached.",
            f"Tổng dung lượng tệp đính kèm của một hồ sơ không được vượt {max_total} byte; "
            f"hồ sơ đã có {total} byte.",
            code="total_too_large",
        )


def _embedded_executable(data: bytes) -> bool:
    """An ELF or a Windows PE image anywhere in ``data`` (a polyglot: a valid header, a program behind it).

    Checked on the headers' own structure, not on two bytes, so compressed streams do not trip it."""
    at = data.find(b"\x7fELF")
    while at != -1:
        cls, order, version = data[at + 4 : at + 5], data[at + 5 : at + 6], data[at + 6 : at + 7]
        if cls in (b"\x01", b"\x02") and order in (b"\x01", b"\x02") and version == b"\x01":
            return True
        at = data.find(b"\x7fELF", at + 1)
    at = data.find(b"MZ")
    while at != -1:
        if len(data) >= at + 0x40:
            pe = int.from_bytes(data[at + 0x3C : at + 0x40], "little")
            if 0 < pe < 0x10000 and data[at + pe : at + pe + 4] == b"PE\x00\x00":
                return True
        at = data.find(b"MZ", at + 1)
    return False


_OOXML_MAIN = {
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml",
}
_ZIP_MAX_RATIO = 100  # declared uncompressed size per byte of the upload: beyond it, a zip bomb


def _structure_problem(kind: str, data: bytes) -> str | None:
    """Why ``data`` is not a well-formed file of ``kind`` (English), or None: enough structure to refuse
    a header glued to something else, without rendering the file."""
    if kind == "pdf":
        if b"%%EOF" not in data[-1024:]:
            return "no %%EOF trailer at the end"
        return "an executable inside" if _embedded_executable(data) else None
    if kind == "png":
        ihdr = data[8:33]
        if len(ihdr) < 25 or ihdr[:8] != b"\x00\x00\x00\rIHDR":
            return "no IHDR header"
        if zlib.crc32(ihdr[4:21]) != int.from_bytes(ihdr[21:25], "big"):
            return "a damaged IHDR header"
        width, height = int.from_bytes(ihdr[8:12], "big"), int.from_bytes(ihdr[12:16], "big")
        if not (0 < width <= 100_000 and 0 < height <= 100_000):
            return "an impossible image size"
        if not data.endswith(b"\x00\x00\x00\x00IEND\xaeB`\x82"):
            return "no IEND chunk at the end"
        return "an executable inside" if _embedded_executable(data) else None
    if kind == "jpeg":
        return _jpeg_problem(data) or ("an executable inside" if _embedded_executable(data) else None)
    if kind in _OOXML_MAIN:
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as z:
                infos = z.infolist()
                if sum(i.file_size for i in infos) > _ZIP_MAX_RATIO * max(len(data), 1024 * 1024):
                    return "an archive that unpacks to far more than its size"
                names = {i.filename for i in infos}
                if any(n.lower().endswith(("vbaproject.bin", ".exe", ".dll")) for n in names):
                    return "macros or programs inside"
                types = z.getinfo("[Content_Types].xml")
                if types.file_size > 1024 * 1024:
                    return "an oversized [Content_Types].xml"
                if _OOXML_MAIN[kind].encode() not in z.read(types):
                    return "not the content type of a " + kind.upper() + " document"
        except (zipfile.BadZipFile, KeyError, ValueError, OSError, NotImplementedError, EOFError):
            return "not a readable ZIP archive"
        return None
    return None


def _jpeg_problem(data: bytes) -> str | None:
    """Walks the JPEG markers from SOI to the start of scan: a frame header with a size must come first."""
    if not data.rstrip(b"\x00").endswith(b"\xff\xd9"):
        return "no end-of-image marker"
    at, frame = 2, False
    while at + 4 <= len(data):
        if data[at] != 0xFF:
            return "a damaged marker"
        marker = data[at + 1]
        if marker == 0xFF:  # fill byte
            at += 1
            continue
        if marker == 0xD8 or 0xD0 <= marker <= 0xD7 or marker == 0x01:
            at += 2
            continue
        length = int.from_bytes(data[at + 2 : at + 4], "big")
        if length < 2 or at + 2 + length > len(data):
            return "a damaged segment length"
        if marker in (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF):
            if length < 8:
                return "a damaged frame header"
            height = int.from_bytes(data[at + 5 : at + 7], "big")
            width = int.from_bytes(data[at + 7 : at + 9], "big")
            if width == 0 or height == 0:
                return "an impossible image size"
            frame = True
        if marker == 0xDA:  # start of scan: the headers are done
            return None if frame else "no frame header before the image data"
        at += 2 + length
    return "no image data"


def check_attachment(data: bytes, filename: str, allowed: list[str], max_bytes: int) -> tuple[str, str]:
    """Validate an upload against the part's rule; return (type, stored file name).

    Rule (documented in the API): the type is decided from the bytes, and the file must be well formed as that
    type (a PDF ends with ``%%EOF`` and carries no program; DOCX/XLSX are ZIPs with their content type and no
    macros; PNG/JPEG have sound image headers); a file whose name says otherwise is kept as what it is and its
    extension corrected (``ho-so.docx`` holding a PDF → ``ho-so.pdf``). A name with a control character or a
    path separator → 422; empty → 422; over ``max_bytes`` → 413; an executable, a type the edition does not
    allow or a malformed file → 415."""
    filename = check_filename(filename)
    if not data:
        raise DomainError(
            Refusal.INVALID,
            "The file is empty.",
            "Tệp đính kèm rỗng.",
            code="empty_file",
            errors=[field_error("file", "The file is empty.", "Tệp rỗng.", "empty_file")],
        )
    if len(data) > max_bytes:
        raise DomainError(
            Refusal.TOO_LARGE,
            f"The file is {len(data)} bytes; the limit is {max_bytes} bytes.",
            f"Tệp có dung lượng {len(data)} byte, vượt giới hạn {max_bytes} byte.",
            code="too_large",
        )
    kind = sniff_type(data)
    if kind == "executable":
        raise DomainError(
            Refusal.UNSUPPORTED,
            "Executable files are not accepted, whatever their name.",
            "Không nhận tệp chương trình thực thi, dù đặt tên gì.",
            code="executable",
        )
    allowed_norm = {"jpeg" if a.lower() in ("jpg", "jpeg") else a.lower() for a in allowed}
    if kind is None or kind not in allowed_norm:
        shown = ", ".join(sorted(t.upper() for t in allowed_norm))
        raise DomainError(
            Refusal.UNSUPPORTED,
            f"This file type is not accepted; accepted: {shown}.",
            f"Loại tệp này không được chấp nhận; chỉ nhận: {shown}.",
            code="unsupported_type",
        )
    why = _structure_problem(kind, data)
    if why is not None:
        shown = kind.upper()
        raise DomainError(
            Refusal.UNSUPPORTED,
            f"This is not a valid {shown} file: {why}.",
            f"Tệp không phải tệp {shown} hợp lệ (cấu trúc tệp bị hỏng hoặc có nội dung lạ bên trong).",
            code="malformed_file",
        )
    stem = filename
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
        raise DomainError(
            Refusal.INVALID,
            "The score sheet is invalid.",
            "Phiếu chấm không hợp lệ.",
            code="validation",
            errors=errors,
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
    barred: AbstractSet[str] = frozenset(),
) -> list[str]:
    """Who reviews an initiative: every council member except those of the authors' units (as of
    submission), those ``barred`` otherwise (a unit merged with the entry's, an author in their unit at the
    time of scoring: see ``exclusions``) and those who declared a conflict; the chair's reassignments on top,
    never overriding the own-unit or conflict rule."""
    excluded = {m for m in members if member_units.get(m) in author_units} | conflicts | barred
    chosen = [m for m in members if m not in excluded and m not in removed]
    chosen += [m for m in members if m in added and m not in excluded and m not in chosen]
    return chosen


def counted_authors(authors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The authors an initiative counts: the submitter, outside co-authors, and directory co-authors who
    confirmed their invitation (an author snapshot without the key predates invitations: counted)."""
    return [a for a in authors if a.get("confirmed", True)]


def invite_authors(
    authors: list[dict[str, Any]], submitter: str, before: list[dict[str, Any]] | None = None
) -> list[dict[str, Any]]:
    """Mark who must still confirm: a directory co-author other than the submitter is invited (unconfirmed)
    unless they already confirmed in the previous version (``before``)."""
    confirmed = {
        a["person_id"]: a.get("confirmed_at")
        for a in before or []
        if a.get("person_id") and a.get("confirmed", True)
    }
    out = []
    for a in authors:
        pid = a.get("person_id")
        if not pid or pid == submitter:
            out.append({**a, "confirmed": True})
        elif pid in confirmed:
            out.append({**a, "confirmed": True, "confirmed_at": confirmed[pid]})
        else:
            out.append({**a, "confirmed": False})
    return out


@dataclass(frozen=True)
class Exclusion:
    """Why a council member does not review an initiative (shown to the secretariat and the chair)."""

    member_id: str
    reason: Literal["own_unit", "merged_unit", "conflict_declared", "removed_by_chair"]
    detail: str | None
    reason_vi: str


def exclusions(
    members: list[str],
    member_units: dict[str, str | None],
    unit_authors: dict[str, list[str]],
    conflicts: dict[str, str | None],
    removed: AbstractSet[str] = frozenset(),
    *,
    entry_unit: str | None = None,
    lineage: Mapping[str, str] | None = None,
    units_now: Mapping[str, str | None] | None = None,
    authors_now: Mapping[str, list[str]] | None = None,
    unit_names: Mapping[str, str] | None = None,
) -> list[Exclusion]:
    """Every member left out of an initiative's review, with the reason; ``unit_authors`` maps each counted
    unit (the submitting unit and confirmed authors' units, as of receipt) to who brings it in.

    A member is also left out when, at the time of scoring, their unit (``units_now``; or as of receipt)
    is a predecessor or successor of ``entry_unit``, the unit recorded at receipt (``lineage``: a merger, a
    split, a rename; reason ``merged_unit``), or holds a counted author then (``authors_now``: an author's
    unit at the time of scoring -> who). ``unit_names`` names units in the Vietnamese reason (else their id)."""
    lineage, units_now, authors_now = lineage or {}, units_now or {}, authors_now or {}
    names = unit_names or {}
    out = []
    for m in members:
        unit = member_units.get(m)
        now = units_now.get(m, unit)
        related = next((u for u in (now, unit) if u is not None and u in lineage), None)
        if unit in unit_authors:
            who = ", ".join(unit_authors[unit])
            out.append(Exclusion(m, "own_unit", f"{unit}: {who}", f"Cùng đơn vị với tác giả ({unit}: {who})"))
        elif related is not None:
            kind = lineage[related]
            kind_vi = "tiền thân" if kind == "predecessor" else "kế thừa"
            out.append(
                Exclusion(
                    m,
                    "merged_unit",
                    f"{related}: {kind} of {entry_unit}",
                    f"{names.get(related, related)} là đơn vị {kind_vi} của đơn vị nộp "
                    f"{names.get(entry_unit or '', entry_unit)} (sáp nhập, chia tách hoặc đổi tên)",
                )
            )
        elif now is not None and (now in unit_authors or now in authors_now):
            who = ", ".join(authors_now.get(now) or unit_authors.get(now) or [])
            out.append(
                Exclusion(
                    m,
                    "own_unit",
                    f"{now}: {who}",
                    f"Cùng đơn vị với tác giả tại thời điểm chấm ({now}: {who})",
                )
            )
        elif m in conflicts:
            why = conflicts[m]
            vi = "Tự khai xung đột lợi ích" + (f": {why}" if why else "")
            out.append(Exclusion(m, "conflict_declared", why, vi))
        elif m in removed:
            out.append(Exclusion(m, "removed_by_chair", None, "Chủ tịch Hội đồng phân công lại"))
    return out


def barred_refusal(why: Exclusion) -> DomainError:
    """The refusal for a member who may never review an initiative: own unit, or a unit merged with it."""
    if why.reason != "merged_unit":
        return own_unit_refusal()
    return DomainError(
        Refusal.FORBIDDEN,
        f"A council member never scores an initiative of a unit merged with theirs ({why.detail}).",
        f"Thành viên Hội đồng không chấm sáng kiến của đơn vị đã sáp nhập, chia tách hoặc đổi tên liên quan "
        f"đến đơn vị mình ({why.reason_vi}).",
        code="merged_unit",
    )


def own_unit_refusal() -> DomainError:
    return DomainError(
        Refusal.FORBIDDEN,
        "A council member never scores an initiative of their own unit.",
        "Thành viên Hội đồng không chấm sáng kiến của đơn vị mình.",
        code="own_unit",
    )
