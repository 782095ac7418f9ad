"""Errors with English and Vietnamese text, free of any web framework, so domain rules can raise them.

A domain rule raises ``DomainError`` with the kind of ``Refusal`` it is (invalid, conflict, forbidden, not found,
too large, unsupported type) — never an HTTP status. The HTTP edge (``shared.problems``) maps each kind to its
status and the error to RFC 9457 problem details; ``Problem`` is what routes themselves raise (it carries a
status: 404, 401, …).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, TypedDict, Unpack

from pydantic_core import PydanticCustomError


def bilingual_error(code: str, en: str, vi: str, **ctx: Any) -> PydanticCustomError:
    """An error for a Pydantic validator that keeps its Vietnamese message (``raise bilingual_error(…)``)."""
    return PydanticCustomError(code, en, {"vi": vi, **ctx})


class Refusal(StrEnum):
    """Why a rule refuses, in the domain's words (the API layer knows the status of each)."""

    INVALID = "invalid"  # the content breaks a rule (a field, a sum, a missing comment)
    CONFLICT = "conflict"  # the state forbids it now (withdrawn, decided, closed)
    FORBIDDEN = "forbidden"  # not this person's to do (own unit, not a member)
    NOT_FOUND = "not_found"  # no such thing (or not this person's to know of)
    TOO_LARGE = "too_large"  # more than the rules allow (a file's size)
    UNSUPPORTED = "unsupported"  # a kind of content not accepted (a file's type)
    UNAVAILABLE = "unavailable"  # something it needs is away for now: nothing was done, try again later


class Details(TypedDict, total=False):
    code: str  # a stable name of the error (the problem type's last segment)
    errors: list[dict[str, Any]]  # one per field: ``field_error(…)``
    extra: dict[str, Any]  # more members of the problem details
    headers: dict[str, str]  # HTTP headers of the answer, e.g. ``Retry-After`` on a 503


class BilingualError(Exception):
    """English and Vietnamese detail, a code, field errors: what every refusal tells a person."""

    def __init__(self, detail: str, detail_vi: str, **details: Unpack[Details]) -> None:
        super().__init__(detail)
        self.detail = detail
        self.detail_vi = detail_vi
        self.code = details.get("code", "")
        self.errors = details.get("errors") or []
        self.extra = details.get("extra") or {}
        self.headers = details.get("headers") or {}


class DomainError(BilingualError):
    """A rule refused: the kind of refusal, and what to tell the person."""

    def __init__(self, refusal: Refusal, detail: str, detail_vi: str, **details: Unpack[Details]) -> None:
        super().__init__(detail, detail_vi, **details)
        self.refusal = refusal


class Problem(BilingualError):
    """An HTTP answer a route gives (status, English and Vietnamese detail): the API layer's, not the domain's."""

    def __init__(self, status: int, detail: str, detail_vi: str, **details: Unpack[Details]) -> None:
        super().__init__(detail, detail_vi, **details)
        self.status = status


def field_error(field: str, en: str, vi: str, code: str = "invalid") -> dict[str, Any]:
    return {"field": field, "code": code, "message": en, "message_vi": vi}
