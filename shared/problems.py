"""RFC 9457 problem details, with every message in English and Vietnamese.

``Problem`` is raised by routes; request-validation errors become 422 with one entry per field. A field error
carries ``message`` (English) and ``message_vi``; domain validators raise ``bilingual_error`` so their own
Vietnamese text survives Pydantic.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from shared.errors import Problem, bilingual_error, field_error

__all__ = ["Problem", "bilingual_error", "field_error", "install", "problem_body"]

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
    500: ("Internal error", "Lỗi hệ thống"),
    503: ("Service unavailable", "Dịch vụ tạm thời không sẵn sàng"),
}

# Vietnamese for Pydantic's error types (the English comes from Pydantic itself).
_VI: dict[str, str] = {
    "missing": "Trường này là bắt buộc",
    "string_type": "Phải là chuỗi ký tự",
    "string_too_short": "Quá ngắn: tối thiểu {min_length} ký tự",
    "string_too_long": "Quá dài: tối đa {max_length} ký tự",
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
        return template.format(**ctx)
    except (KeyError, IndexError):
        return template


def _field_name(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    out = ""
    for p in parts:
        out += f"[{p}]" if p.isdigit() else (f".{p}" if out else p)
    return out or "body"


def install(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> JSONResponse:
        body = problem_body(
            exc.status, exc.detail, exc.detail_vi, code=exc.code, instance=request.url.path, errors=exc.errors
        )
        body.update(exc.extra)
        return JSONResponse(
            body, status_code=exc.status, media_type=PROBLEM_JSON, headers=exc.headers or None
        )

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
        return JSONResponse(body, status_code=exc.status_code, media_type=PROBLEM_JSON, headers=exc.headers)
