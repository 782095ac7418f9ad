"""Lists read a page at a time: an opaque cursor naming a place in a list's order, its ``after`` query parameter
(a cursor the list did not give is a 422 naming the field, in English and Vietnamese) and the ``Link`` header
naming the next page (RFC 8288, ``rel="next"``), so a client follows pages without knowing how an order is keyed.

A cursor holds the values of the order's columns at the last row of a page, as strings: URL-safe base64 of a JSON
list (``encode("experience", "p-0002")``); ``decode`` gives the strings back. A use case checks a cursor has its
order's shape (``not_a_cursor`` otherwise) and reads the rows after it (keyset paging: a page costs its own rows however deep it is,
and a row added or removed meanwhile shifts nothing)."""

from __future__ import annotations

import base64
import json
from typing import Annotated
from urllib.parse import urlencode

from fastapi import Query, Request, Response
from pydantic import AfterValidator

from shared.errors import Problem, bilingual_error, field_error

__all__ = ["Cursor", "WholeOrPage", "decode", "encode", "link_next", "not_a_cursor", "place"]

_EN = "Not a cursor this list gave (take the next page's address from the Link header)."
_VI = "Không phải con trỏ trang do danh sách này cấp (hãy dùng địa chỉ trang sau trong tiêu đề Link)."


def encode(*values: str) -> str:
    """The cursor of a place in an order (the last row's values of its columns)."""
    raw = json.dumps(list(values), ensure_ascii=False, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(value: str | None) -> tuple[str, ...] | None:
    """The values of a cursor :func:`encode` made (None: no cursor); a ``Cursor`` parameter always decodes."""
    if value is None:
        return None
    try:
        found = json.loads(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)))
    except ValueError:
        return None
    ok = isinstance(found, list) and bool(found) and all(isinstance(x, str) for x in found)
    return tuple(found) if ok else None


def _checked(value: str | None) -> str | None:
    if value is not None and decode(value) is None:
        raise bilingual_error("cursor_invalid", _EN, _VI)
    return value


Cursor = Annotated[
    str | None,
    AfterValidator(_checked),
    Query(
        max_length=600,
        pattern=r"^[A-Za-z0-9_-]+$",
        description="where the page starts: the cursor the previous page's Link header gives",
    ),
]
"""The ``after`` query parameter of a paged list: a cursor :func:`decode` reads."""


WholeOrPage = Annotated[
    int | None,
    Query(ge=1, le=1000, description="a page of this many, in the list's order (default: the whole list)"),
]
"""The ``limit`` of a list that answers whole without one (kept so for the clients that read it whole)."""


def place(after: str | None, n: int) -> tuple[str, ...] | None:
    """The ``n`` values of an ``after`` cursor (None: no cursor); one of another shape is refused
    (:func:`not_a_cursor`)."""
    values = decode(after)
    if values is not None and len(values) != n:
        raise not_a_cursor()
    return values


def not_a_cursor() -> Problem:
    """The 422 for a cursor of another shape than the list's order (``raise not_a_cursor()``)."""
    return Problem(422, _EN, _VI, code="invalid", errors=[field_error("after", _EN, _VI, "cursor_invalid")])


def link_next(request: Request, response: Response, cursor: str | None) -> None:
    """Name the next page in the ``Link`` header: this request's address and query, ``after`` the cursor; no
    header when ``cursor`` is None (this page is the last)."""
    if cursor is None:
        return
    params = [(k, v) for k, v in request.query_params.multi_items() if k != "after"]
    response.headers["Link"] = f'<{request.url.path}?{urlencode([*params, ("after", cursor)])}>; rel="next"'
