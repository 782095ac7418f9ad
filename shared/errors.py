"""Errors with English and Vietnamese text, free of any web framework, so domain rules can raise them.

A domain rule raises ``DomainError`` with the kind of ``Refusal`` it is (invalid, conflict, forbidden, too
large, unsupported type) — never an HTTP status. The HTTP edge (``shared.problems``) maps each kind to its
status and the error to RFC 9457 problem details; ``Problem`` is what routes themselves raise (it carries a
status: 404, 401, …).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic_core import PydanticCustomError


def bilingual_error(code: str, en: str, vi: str, **ctx: Any) -> PydanticCustomError:
    """An error for a Pydantic validator that keeps its Vietnamese message (``raise bilingual_error(…)``)."""
    return PydanticCustomError(code, en, {"vi": vi, **ctx})


class Refusal(StrEnum):
    """Why a rule refuses, in the domain's words (the API layer knows the status of each)."""

    INVALID = "invalid"  # the content breaks a rule (a field, a sum, a missing comment)
    CONFLICT = "conflict"  # the state forbids it now (withdrawn, decided, closed)
    FORBIDDEN = "forbidden"  # not this person's to do (own unit, not a member)
    TOO_LARGE = "too_large"  # more than the rules allow (a file's size)
    UNSUPPORTED = "unsupported"  # a kind of content not accepted (a file's type)


class DomainError(Exception):
    """A rule refused: the kind of refusal, the English and Vietnamese text, field errors if any."""

    def __init__(
        self,
        refusal: Refusal,
        detail: str,
        detail_vi: str,
        *,
        code: str = "",
        errors: list[dict[str, Any]] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.refusal = refusal
        self.detail = detail
        self.detail_vi = detail_vi
        self.code = code
        self.errors = errors or []
        self.extra = extra or {}


class Problem(Exception):
    """An HTTP answer a route gives (status, English and Vietnamese detail): the API layer's, not the domain's."""

    def __init__(
        self,
        status: int,
        detail: str,
        detail_vi: str,
        *,
        code: str = "",
        errors: list[dict[str, Any]] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.detail_vi = detail_vi
        self.code = code
        self.errors = errors or []
        self.extra = extra or {}


def field_error(field: str, en: str, vi: str, code: str = "invalid") -> dict[str, Any]:
    return {"field": field, "code": code, "message": en, "message_vi": vi}
