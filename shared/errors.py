"""Errors with English and Vietnamese text, free of any web framework, so domain rules can raise them.

``shared.problems`` turns them into RFC 9457 problem details at the HTTP edge.
"""

from __future__ import annotations

from typing import Any

from pydantic_core import PydanticCustomError


def bilingual_error(code: str, en: str, vi: str, **ctx: Any) -> PydanticCustomError:
    """An error for a Pydantic validator that keeps its Vietnamese message (``raise bilingual_error(…)``)."""
    return PydanticCustomError(code, en, {"vi": vi, **ctx})


class Problem(Exception):
    def __init__(
        self,
        status: int,
        detail: str,
        detail_vi: str,
        *,
        code: str = "",
        errors: list[dict[str, Any]] | None = None,
        extra: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.detail_vi = detail_vi
        self.code = code
        self.errors = errors or []
        self.extra = extra or {}
        self.headers = headers or {}  # e.g. ``Retry-After`` on a 503


def field_error(field: str, en: str, vi: str, code: str = "invalid") -> dict[str, Any]:
    return {"field": field, "code": code, "message": en, "message_vi": vi}
