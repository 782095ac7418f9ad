"""Exports: every submission the caller may see, every field, as XLSX (Vietnamese headers) or CSV; and the
score table per initiative per member. CSV is UTF-8 with a BOM so spreadsheet programs keep the diacritics.
The rows are the queries' of ``usecases/exports.py``; this module writes them as a file."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter
from fastapi.responses import Response

from services.submissions.usecases import exports
from services.submissions.usecases.exports import SUBMISSION_COLUMNS
from shared import spreadsheets
from shared.privacy import NO_STORE
from shared.service import CallerDep, RuntimeDep

__all__ = ["SUBMISSION_COLUMNS", "router"]  # the submissions' columns, beside the writers that use them

router = APIRouter(prefix="/tenants/{tenant}/editions/{edition}/exports", tags=["exports"])


def _xlsx(title: str, columns: list[tuple[str, str]], rows: list[dict[str, Any]]) -> bytes:
    return spreadsheets.xlsx_bytes([(title, _table(columns, rows))])


def _csv(columns: list[tuple[str, str]], rows: list[dict[str, Any]]) -> bytes:
    return spreadsheets.csv_bytes(_table(columns, rows))


def _table(columns: list[tuple[str, str]], rows: list[dict[str, Any]]) -> list[list[Any]]:
    return [[h for _, h in columns], *([r.get(k, "") for k, _ in columns] for r in rows)]


# What the 200 answer is, per format (FastAPI would say application/json).
SPREADSHEET_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "the spreadsheet, as the path's format says",
        "content": {spreadsheets.XLSX_MEDIA_TYPE: {}, "text/csv": {}},
    }
}


def _file(data: bytes, name: str, fmt: str) -> Response:
    media = spreadsheets.XLSX_MEDIA_TYPE if fmt == "xlsx" else spreadsheets.CSV_MEDIA_TYPE
    return Response(
        data,
        media_type=media,
        headers={"Content-Disposition": f'attachment; filename="{name}.{fmt}"', **NO_STORE},
    )


@router.get(
    "/submissions.{fmt}",
    responses=SPREADSHEET_RESPONSES,
    summary="Every submission the caller may see, every field (XLSX or CSV)",
)
async def export_submissions(
    tenant: str, edition: str, fmt: Literal["xlsx", "csv"], rt: RuntimeDep, caller: CallerDep
) -> Response:
    rows = await exports.submission_rows(rt, caller, tenant, edition)
    data = (
        _xlsx("Hồ sơ dự thi", SUBMISSION_COLUMNS, rows) if fmt == "xlsx" else _csv(SUBMISSION_COLUMNS, rows)
    )
    return _file(data, f"ho-so-{tenant}-{edition}", fmt)


@router.get(
    "/scores.{fmt}",
    responses=SPREADSHEET_RESPONSES,
    summary="The score table per initiative per member (XLSX or CSV)",
)
async def export_scores(
    tenant: str, edition: str, fmt: Literal["xlsx", "csv"], rt: RuntimeDep, caller: CallerDep
) -> Response:
    columns, rows = await exports.score_rows(rt, caller, tenant, edition)
    data = _xlsx("Bảng điểm", columns, rows) if fmt == "xlsx" else _csv(columns, rows)
    return _file(data, f"bang-diem-{tenant}-{edition}", fmt)
