"""RFC 9457 problem details, with every message in English and Vietnamese.

``Problem`` is raised by routes; a domain rule's ``DomainError`` is mapped here to its status
(``STATUS_OF_REFUSAL``); request-validation errors become 422 with one entry per field. A field error carries
``message`` (English) and ``message_vi``; domain validators raise ``bilingual_error`` so their own Vietnamese
text survives Pydantic.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from shared.errors import DomainError, Problem, Refusal, bilingual_error, field_error

__all__ = [
    "STATUS_OF_REFUSAL",
    "DomainError",
    "Problem",
    "Refusal",
    "bilingual_error",
    "field_error",
    "install",
    "problem_body",
    "problem_of",
]

# The one place a domain refusal becomes an HTTP status.
STATUS_OF_REFUSAL: dict[Refusal, int] = {
    Refusal.INVALID: 422,
    Refusal.CONFLICT: 409,
    Refusal.FORBIDDEN: 403,
    Refusal.NOT_FOUND: 404,
    Refusal.TOO_LARGE: 413,
    Refusal.UNSUPPORTED: 415,
    Refusal.UNAVAILABLE: 503,
}


def problem_of(exc: DomainError) -> Problem:
    """The HTTP answer to a domain refusal."""
    return Problem(
        STATUS_OF_REFUSAL[exc.refusal],
        exc.detail,
        exc.detail_vi,
        code=exc.code,
        errors=exc.errors,
        extra=exc.extra,
        headers=exc.headers,  # e.g. an unavailable thing's Retry-After
    )

__all__ = [
    "Problem",
    "bilingual_error",
    "document_problems",
    "field_error",
    "install",
    "problem_body",
    "problem_responses",
]

PROBLEM_JSON = "application/problem+json"

_STATUS_TITLES: dict[int, tuple[str, str]] = {
    400: ("Bad request", "Yêu cầu không hợp lệ"),
    401: ("Not authenticated", "Chưa đăng nhập"),
    403: ("Forbidden", "Không có quyền"),
    404: ("Not found", "Không tìm thấy"),
    405: ("Method not allowed", "Phương thức không được hỗ trợ"),
    409: ("Conflict", "Xung đột dữ liệu"),
    413: ("Content too large", "Nội dung quá lớn"),
    415: ("Unsupported media type", "Định dạng không được hỗ trợ"),
    422: ("Invalid input", "Dữ liệu không hợp lệ"),
    429: ("Too many requests", "Quá nhiều yêu cầu"),
    500: ("Internal error", "Lỗi hệ thống"),
    503: ("Service unavailable", "Dịch vụ tạm thời không sẵn sàng"),
}

# Vietnamese for Pydantic's error types (the English comes from Pydantic itself).
_VI: dict[str, str] = {
    "missing": "Trường này là bắt buộc",
    "string_type": "Phải là chuỗi ký tự",
    "string_too_short": "Quá ngắn: tối thiểu {min_length} ký tự",
    "string_too_long": "Quá dài: tối đa {max_length} ký tự",
    "string_pattern_mismatch": "Không đúng định dạng yêu cầu",
    "int_parsing": "Phải là số nguyên",
    "int_type": "Phải là số nguyên",
    "float_parsing": "Phải là số",
    "bool_parsing": "Phải là đúng/sai",
    "greater_than_equal": "Phải lớn hơn hoặc bằng {ge}",
    "less_than_equal": "Phải nhỏ hơn hoặc bằng {le}",
    "greater_than": "Phải lớn hơn {gt}",
    "less_than": "Phải nhỏ hơn {lt}",
    "too_short": "Cần ít nhất {min_length} mục",
    "too_long": "Tối đa {max_length} mục",
    "date_parsing": "Ngày không hợp lệ (định dạng YYYY-MM-DD)",
    "date_from_datetime_parsing": "Ngày không hợp lệ (định dạng YYYY-MM-DD)",
    "datetime_parsing": "Thời điểm không hợp lệ",
    "literal_error": "Giá trị phải là một trong: {expected}",
    "enum": "Giá trị phải là một trong: {expected}",
    "extra_forbidden": "Trường này không được phép",
    "json_invalid": "JSON không hợp lệ",
    "model_attributes_type": "Phải là một đối tượng",
    "dict_type": "Phải là một đối tượng",
    "list_type": "Phải là một danh sách",
    "value_error": "Giá trị không hợp lệ",
    "url_too_long": "Quá dài: tối đa {max_length} ký tự",
}


def problem_body(
    status: int,
    detail: str,
    detail_vi: str,
    *,
    code: str = "",
    instance: str = "",
    errors: list[Any] | None = None,
) -> dict[str, Any]:
    title, title_vi = _STATUS_TITLES.get(status, ("Error", "Lỗi"))
    body: dict[str, Any] = {
        "type": f"https://hoithi.vn/problems/{code or status}",
        "title": title,
        "title_vi": title_vi,
        "status": status,
        "detail": detail,
        "detail_vi": detail_vi,
    }
    if instance:
        body["instance"] = instance
    if errors:
        body["errors"] = errors
    return body


def _vi_message(err: dict[str, Any]) -> str:
    ctx = err.get("ctx") or {}
    if "vi" in ctx:
        return str(ctx["vi"])
    template = _VI.get(err.get("type", ""), "Giá trị không hợp lệ")
    try:
        return template.format(**{k: _vi_value(v) for k, v in ctx.items()})
    except (KeyError, IndexError):
        return template


def _vi_value(value: Any) -> Any:
    """Pydantic joins the allowed values in English ("'a', 'b' or 'c'"): the Vietnamese says "hoặc"."""
    return value.replace(" or ", " hoặc ") if isinstance(value, str) else value


def _field_name(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    out = ""
    for p in parts:
        out += f"[{p}]" if p.isdigit() else (f".{p}" if out else p)
    return out or "body"


def install(app: FastAPI) -> None:
    """Problem details for every error, and an OpenAPI document that says so (``document_problems``)."""

    def openapi() -> dict[str, Any]:
        if not app.openapi_schema:
            app.openapi_schema = document_problems(FastAPI.openapi(app))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> JSONResponse:
        body = problem_body(
            exc.status, exc.detail, exc.detail_vi, code=exc.code, instance=request.url.path, errors=exc.errors
        )
        body.update(exc.extra)
        return JSONResponse(
            body, status_code=exc.status, media_type=PROBLEM_JSON, headers=exc.headers or None
        )

    @app.exception_handler(DomainError)
    async def _refused(request: Request, exc: DomainError) -> JSONResponse:
        return await _problem(request, problem_of(exc))

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {
                "field": _field_name(tuple(e.get("loc", ()))),
                "code": e.get("type", "invalid"),
                "message": e.get("msg", ""),
                "message_vi": _vi_message(e),
            }
            for e in exc.errors()
        ]
        body = problem_body(
            422,
            "The request has invalid fields: " + ", ".join(e["field"] for e in errors),
            "Yêu cầu có trường không hợp lệ: " + ", ".join(e["field"] for e in errors),
            code="validation",
            instance=request.url.path,
            errors=errors,
        )
        return JSONResponse(body, status_code=422, media_type=PROBLEM_JSON)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        title, title_vi = _STATUS_TITLES.get(exc.status_code, ("Error", "Lỗi"))
        body = problem_body(exc.status_code, str(exc.detail or title), title_vi, instance=request.url.path)
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            headers["Allow"] = ", ".join(allowed_methods(request))
        return JSONResponse(body, status_code=exc.status_code, media_type=PROBLEM_JSON, headers=headers or None)


def allowed_methods(request: Request) -> list[str]:
    """Every method some route of the app takes on this path. Starlette's 405 names only the methods of the
    first route matching the path, though routes for GET and PUT of one path are two routes."""
    methods: set[str] = set()
    for route in request.app.router.routes:
        if getattr(route, "methods", None) and route.matches(request.scope)[0] != Match.NONE:
            methods |= set(route.methods)
    return sorted(methods)


# ---------------------------------------------------------------------------------------------- OpenAPI

_DESCRIPTIONS: dict[int, str] = {
    400: "the body cannot be read as its content type says (JSON that is not UTF-8 or not JSON at all)",
    401: "no valid bearer token (checked before the body is read)",
    403: "the token's tenant is not the path's, or the caller's role does not allow it",
    404: "no such edition, record or version (or not the caller's: its existence is not disclosed)",
    409: "conflicts with the current state (closed, already done, one per person…): nothing written",
    413: "the body is over this route's limit",
    415: "a content type or file type this route does not take",
    422: "invalid fields, one entry per field in English and Vietnamese: nothing written",
    429: "too many failed authentications from this address, or too many writes by this person",
}


def problem_responses(*statuses: int, **descriptions: str) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for error statuses, each an ``application/problem+json`` ``Problem``; a route
    passes its own statuses with a description (``problem_responses(409, s409="one per person")``)."""
    return {
        status: {
            "description": descriptions.get(f"s{status}") or _DESCRIPTIONS.get(status, "error"),
            "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for status in statuses
    }


PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "RFC 9457 problem details, every message in English and Vietnamese.",
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "title_vi": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "detail_vi": {"type": "string"},
        "instance": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "field": {"type": "string"},
                    "code": {"type": "string"},
                    "message": {"type": "string"},
                    "message_vi": {"type": "string"},
                    "line": {"type": ["integer", "null"]},
                },
            },
        },
    },
    "additionalProperties": True,
}


# shared.guard refuses a NUL in the path or any query parameter (422, field named): said on every string
# parameter that has no pattern of its own.
NO_NUL_PATTERN = r"^[^\u0000]*$"


def _no_nul(schema: dict[str, Any]) -> None:
    for branch in schema.get("anyOf", [schema]):
        if branch.get("type") == "string" and "pattern" not in branch and "enum" not in branch:
            branch["pattern"] = NO_NUL_PATTERN


def document_problems(openapi: dict[str, Any]) -> dict[str, Any]:
    """Every operation lists the errors it can give, as ``application/problem+json`` (no ``default``):

    - under ``/tenants/`` (a token is required): 401, 403, 404 and 429;
    - with parameters or a body: 422 (replacing FastAPI's ``application/json`` ``HTTPValidationError``);
    - with a body (POST, PUT, PATCH): 409, 413 and 415, and 400 when the body cannot be parsed at all;
    - and whatever the route declared itself, its content made a ``Problem``.
    """
    schemas = openapi.setdefault("components", {}).setdefault("schemas", {})
    schemas["Problem"] = PROBLEM_SCHEMA
    for path, operations in openapi.get("paths", {}).items():
        for method, op in operations.items():
            if not isinstance(op, dict) or "responses" not in op:
                continue
            wanted: set[int] = set()
            if path.startswith("/tenants/"):
                wanted |= {401, 403, 404, 429}
            if op.get("parameters") or "requestBody" in op:
                wanted.add(422)
            if method in ("post", "put", "patch"):
                wanted |= {409, 413, 415, 422}
            if "requestBody" in op:
                wanted.add(400)
            for parameter in op.get("parameters", []):
                if parameter.get("in") in ("path", "query"):
                    _no_nul(parameter.get("schema", {}))
            responses = op["responses"]
            responses.pop("default", None)
            for code in list(responses):
                if code.isdigit() and int(code) >= 400:
                    wanted.add(int(code))
            for status, response in problem_responses(*sorted(wanted)).items():
                declared = responses.get(str(status), {})
                if declared.get("description") and status != 422:
                    response["description"] = declared["description"]
                responses[str(status)] = response
            op["responses"] = dict(sorted(responses.items()))
    for unused in ("HTTPValidationError", "ValidationError"):
        if unused in schemas and unused not in json.dumps(openapi.get("paths", {})):
            del schemas[unused]
    return openapi
