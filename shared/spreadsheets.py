"""CSV and XLSX exports, written one way by every service: a cell is never a formula.

A value a person typed (a title, a narrative, a name in the directory) can start with ``=``, ``+``, ``-``,
``@``, a tab or a CR; a spreadsheet program opening the export would run it as a formula (CSV/formula
injection). So a text cell that could be read as one is written as text: in CSV with a leading apostrophe
(the OWASP convention: the program shows the text), in XLSX as a string cell marked ``quotePrefix`` (openpyxl
would otherwise store ``=…`` as a formula). Numbers stay numbers. Characters XLSX cannot hold (control
characters stored before input refused them) are dropped rather than failing the whole export.

CSV is UTF-8 with a byte-order mark (spreadsheet programs then keep the diacritics), CRLF line ends.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

__all__ = ["FORMULA_START", "csv_bytes", "safe_text", "xlsx_bytes"]

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CSV_MEDIA_TYPE = "text/csv; charset=utf-8"

Row = Sequence[Any]


def _is_formula_like(value: str) -> bool:
    return value.startswith(FORMULA_START)


def safe_text(value: Any) -> Any:
    """The value for a CSV cell: a text that could be a formula gets a leading apostrophe."""
    if isinstance(value, str) and _is_formula_like(value):
        return "'" + value
    return value


def csv_bytes(rows: Iterable[Row]) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    for row in rows:
        w.writerow([safe_text(v) for v in row])
    return ("\ufeff" + buf.getvalue()).encode("utf-8")


def xlsx_bytes(
    sheets: Sequence[tuple[str, Sequence[Row]]],
    *,
    title: str | None = None,
    creator: str | None = None,
    subject: str | None = None,
    fixed_time: datetime | None = None,
    widths: bool = False,
) -> bytes:
    """One workbook, a sheet per ``(name, rows)``; the first row of each is its bold, frozen header.

    ``fixed_time`` sets the document's created/modified stamps (the same data then gives the same bytes);
    ``widths`` sizes columns to their content (up to 80).
    """
    from openpyxl import Workbook  # type: ignore[import-untyped]
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE  # type: ignore[import-untyped]
    from openpyxl.styles import Alignment, Font  # type: ignore[import-untyped]

    wb = Workbook()
    for i, (name, rows) in enumerate(sheets):
        ws = wb.active if i == 0 else wb.create_sheet()
        assert ws is not None
        ws.title = name[:31]
        for row in rows:
            ws.append([ILLEGAL_CHARACTERS_RE.sub("", v) if isinstance(v, str) else v for v in row])
        for cell in ws[1]:
            cell.font = Font(bold=True)
        for col in ws.columns:
            if widths:
                width = max(len(str(c.value or "").split("\n")[0]) for c in col)
                ws.column_dimensions[col[0].column_letter].width = min(max(10, width + 2), 80)
            for c in col:
                if isinstance(c.value, str) and _is_formula_like(c.value):
                    c.data_type = "s"  # openpyxl made "=…" a formula: store the text itself
                    c.quotePrefix = True  # and keep it text when someone edits the cell
                if c.row > 1 or not widths:
                    c.alignment = Alignment(wrap_text=True, vertical="top")
        ws.freeze_panes = "A2"
    if title is not None:
        wb.properties.title = title
    if creator is not None:
        wb.properties.creator = creator
    if subject is not None:
        wb.properties.subject = subject
    if fixed_time is not None:
        wb.properties.created = fixed_time
        wb.properties.modified = fixed_time
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()
