"""The secretariat's documents, pure: reading an edition document, the rules any service would refuse in it,
and a document's problems as one refusal (one entry per problem, English and Vietnamese, with its line)."""

from __future__ import annotations

from pydantic import ValidationError

from services.campaign.domain import directory_io
from services.campaign.domain.directory_io import DirectoryImportError, RowError
from shared.documents import Edition
from shared.errors import DomainError, Refusal
from shared.reward_rules import edition_rule_errors

DocumentError = DirectoryImportError


def edition_errors(exc: ValidationError) -> list[RowError]:
    out = []
    for e in exc.errors():
        field = ".".join(str(p) for p in e["loc"]) or "edition"
        for part in str(e["msg"]).removeprefix("Value error, ").split("; "):
            vi = "Thiếu thông tin bắt buộc" if e["type"] == "missing" else f"Kỳ hội thi không hợp lệ: {part}"
            if "not after the edition opens" in part:
                vi = "Hạn chót của phần thi phải sau ngày mở kỳ hội thi"
            elif "must be assigned to someone" in part:
                vi = "Phần thi phải có đối tượng được giao (đơn vị, cá nhân hoặc hội đồng)"
            out.append(RowError(0, field, part, vi))
    return out


def refuse_what_any_service_would(edition: Edition) -> None:
    """Raise ``DirectoryImportError`` (one entry per field, English and Vietnamese) when a service would refuse
    part of the edition once published: today, rewards' rules (``shared.reward_rules``, the check rewards
    itself makes), so they are refused here instead of silently later."""
    errors = edition_rule_errors(edition)
    if errors:
        raise DirectoryImportError(
            [RowError(0, e.field, e.en, f"Quy tắc khen thưởng không hợp lệ: {e.vi}") for e in errors]
        )


def parse_edition(content: bytes | str, filename: str = "edition.yaml") -> Edition:
    """An edition document from YAML or JSON (the YAML bounded: no alias bombs); raises ``DocumentError`` (or
    ``DirectoryImportError`` for an unreadable file) listing every problem, the reward rules any service would
    refuse included."""
    data = directory_io.parse_data(content, filename)
    try:
        edition = Edition.model_validate(data)
    except ValidationError as exc:
        raise DocumentError(edition_errors(exc)) from None
    refuse_what_any_service_would(edition)
    return edition


def invalid(exc: DirectoryImportError) -> DomainError:
    """A document's problems as one refusal: nothing was written."""
    return DomainError(
        Refusal.INVALID,
        f"{len(exc.errors)} problem(s); nothing was written.",
        f"Có {len(exc.errors)} lỗi; chưa ghi gì.",
        code="invalid_document",
        errors=[
            {
                "field": e.field,
                "line": e.line or None,
                "code": "invalid",
                "message": e.message,
                "message_vi": e.message_vi,
            }
            for e in exc.errors
        ],
    )
