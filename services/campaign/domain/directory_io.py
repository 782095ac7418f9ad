"""Reading the directory from what HR offices keep: YAML/JSON documents and CSV/XLSX lists of units, unions
(Chi đoàn, Công đoàn) or people.

A list is merged into the directory campaign already holds: a row for a known id from a later date is a new
effective-dated row (a move, a promotion, a rename), and the row it follows is closed the day before; a unit
with ``successor_of`` closes the units it replaces the day before it starts. Nothing is deleted. Every row that
fails is reported with its line number and reason (English and Vietnamese), and then nothing is written.
"""

from __future__ import annotations

import csv
import io
import json
import re
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import yaml
from pydantic import ValidationError

from shared.bounds import in_range_date
from shared.documents import (
    UNIT_KIND_TITLES_VI,
    Directory,
    DirectoryInconsistent,
    Person,
    Union,
    UnionKind,
    Unit,
    YamlRefused,
    load_yaml,
)


@dataclass(frozen=True)
class RowError:
    line: int  # 1-based line of the file (the header is line 1); 0: the document as a whole
    field: str
    message: str
    message_vi: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "line": self.line,
            "field": self.field,
            "message": self.message,
            "message_vi": self.message_vi,
        }

    def __str__(self) -> str:
        where = f"dòng {self.line}" if self.line else "tài liệu"
        return f"{where}, {self.field}: {self.message_vi} ({self.message})"


class DirectoryImportError(Exception):
    def __init__(self, errors: list[RowError]) -> None:
        super().__init__("; ".join(str(e) for e in errors))
        self.errors = errors


def _key(header: str) -> str:
    """A header without diacritics, lowercased, spaces as underscores: ``Họ và tên`` → ``ho_va_ten``."""
    text = unicodedata.normalize("NFD", header.strip().lower()).replace("đ", "d")
    text = "".join(c for c in text if unicodedata.category(c) != "Mn")
    return "_".join(text.replace("-", " ").replace("/", " ").split())


# Headers HR offices use (Vietnamese, without diacritics after _key) → document field names.
HEADERS = {
    "id": "id",
    "ma": "id",
    "ma_can_bo": "id",
    "ma_don_vi": "id",
    "code": "code",
    "ky_hieu": "code",
    "ma_viet_tat": "code",
    "name": "name",
    "ho_ten": "name",
    "ho_va_ten": "name",
    "ten": "name",
    "ten_don_vi": "name",
    "email": "email",
    "thu_dien_tu": "email",
    "title": "title",
    "chuc_vu": "title",
    "unit": "unit",
    "don_vi": "unit",
    "kind": "kind",
    "loai": "kind",
    "loai_don_vi": "kind",
    "parent": "parent",
    "don_vi_cap_tren": "parent",
    "cap_tren": "parent",
    "truc_thuoc": "parent",
    "roles": "roles",
    "vai_tro": "roles",
    "unions": "unions",
    "doan_the": "unions",
    "effective_from": "effective_from",
    "hieu_luc_tu": "effective_from",
    "tu_ngay": "effective_from",
    "effective_to": "effective_to",
    "hieu_luc_den": "effective_to",
    "den_ngay": "effective_to",
    "successor_of": "successor_of",
    "thay_the": "successor_of",
    "date_of_birth": "date_of_birth",
    "ngay_sinh": "date_of_birth",
    "qualification": "qualification",
    "trinh_do": "qualification",
    "secretary": "secretary",
    "bi_thu": "secretary",
    "chu_tich": "secretary",
    "bi_thu_chu_tich": "secretary",
    "nguoi_van_dong": "secretary",
}
# Kinds as HR writes them (without diacritics after _key) → the directory's kinds; a list whose rows are all
# unions (Chi đoàn, Công đoàn) is a unions list.
KINDS = {
    **{_key(v): k.value for k, v in UNIT_KIND_TITLES_VI.items()},
    "phong": "division",
    "phong_chuyen_mon": "division",
    "chi_cuc": "sub_department",
    "don_vi_su_nghiep": "public_service_unit",
    "chi_nhanh": "branch",
    "chi_doan": "youth_union",
    "doan_thanh_nien": "youth_union",
    "doan_tncs_ho_chi_minh": "youth_union",
    "cong_doan": "trade_union",
    "cong_doan_co_so": "trade_union",
}
UNION_KINDS = {k.value for k in UnionKind}
LIST_FIELDS = {"roles", "unions", "successor_of"}
DATE_FIELDS = {"effective_from", "effective_to", "date_of_birth"}


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return str(value).strip()


def _date(text: str) -> str:
    """dd/mm/yyyy (as HR writes it) or ISO yyyy-mm-dd → ISO; 01/01/1900 – 31/12/2199 (else ValueError)."""
    if "/" in text:
        d, m, y = text.split("/")
        return in_range_date(date(int(y), int(m), int(d))).isoformat()
    return in_range_date(date.fromisoformat(text)).isoformat()


def read_rows(content: bytes, filename: str) -> list[tuple[int, dict[str, str]]]:
    """(line, {header: cell}) of a CSV (UTF-8, with or without BOM; comma or semicolon) or XLSX first sheet."""
    if filename.lower().endswith((".xlsx", ".xlsm")):
        from openpyxl import load_workbook

        sheet = load_workbook(io.BytesIO(content), read_only=True, data_only=True).worksheets[0]
        raw = [[_cell(c) for c in row] for row in sheet.iter_rows(values_only=True)]
    else:
        text = content.decode("utf-8-sig")
        dialect = csv.Sniffer().sniff(text.splitlines()[0] if text else ",", delimiters=",;\t")
        raw = [[c.strip() for c in row] for row in csv.reader(io.StringIO(text), dialect)]
    if not raw:
        return []
    headers = raw[0]
    return [
        (i + 2, dict(zip(headers, row, strict=False))) for i, row in enumerate(raw[1:]) if any(c for c in row)
    ]


def _normalise(line: int, row: dict[str, str], errors: list[RowError]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for header, value in row.items():
        field = HEADERS.get(_key(header or ""))
        if field is None or value == "":
            continue
        if field in LIST_FIELDS:
            out[field] = [v.strip() for v in value.replace(";", ",").split(",") if v.strip()]
        elif field in DATE_FIELDS:
            try:
                out[field] = _date(value)
            except ValueError:
                errors.append(
                    RowError(
                        line,
                        field,
                        f"{value!r} is not a date (dd/mm/yyyy)",
                        f"{value!r} không phải là ngày (dd/mm/yyyy)",
                    )
                )
        elif field == "kind":
            out[field] = KINDS.get(_key(value), value)
        else:
            out[field] = value
    return out


_VI = {
    "missing": "Thiếu thông tin bắt buộc",
    "value_error": "Giá trị không hợp lệ",
    "enum": "Giá trị không thuộc danh mục cho phép",
    "string_pattern_mismatch": "Sai định dạng mã",
}


def _row_errors(line: int, exc: ValidationError) -> list[RowError]:
    out = []
    for e in exc.errors():
        field = ".".join(str(p) for p in e["loc"]) or "row"
        msg = e["msg"]
        vi = _VI.get(e["type"], "Giá trị không hợp lệ")
        if field == "email":
            vi = "Địa chỉ thư điện tử không hợp lệ (dạng ten@ten-mien.vn)"
        out.append(RowError(line, field, msg, f"{vi}: {e.get('input')!r}" if e["type"] != "missing" else vi))
    return out


@dataclass
class Rows:
    """What one HR list holds, each with its line."""

    units: list[tuple[int, Unit]]
    people: list[tuple[int, Person]]
    unions: list[tuple[int, Union]]


def parse_list(content: bytes, filename: str, current: Directory) -> Rows:
    """Rows of a units list, a unions list (every row's kind a union: Chi đoàn, Công đoàn) or a people list
    (told apart by an ``email`` column). Raises with every row error."""
    rows = read_rows(content, filename)
    errors: list[RowError] = []
    units: list[tuple[int, Unit]] = []
    people: list[tuple[int, Person]] = []
    unions: list[tuple[int, Union]] = []
    if not rows:
        raise DirectoryImportError(
            [RowError(0, "file", "The file has no rows.", "Tệp không có dòng dữ liệu nào.")]
        )
    is_people = any(HEADERS.get(_key(h or "")) == "email" for h in rows[0][1])
    normalised = [(line, _normalise(line, row, errors)) for line, row in rows]
    is_unions = not is_people and all(d.get("kind") in UNION_KINDS for _, d in normalised)
    codes = {u.code: u.id for u in current.units}
    for line, data in normalised:
        if is_unions:
            if "id" not in data and "code" in data:
                data["id"] = data["code"].lower()
            try:
                unions.append((line, Union.model_validate(data)))
            except ValidationError as exc:
                errors += _row_errors(line, exc)
            continue
        if not is_people:
            if "id" not in data and "code" in data:
                data["id"] = data["code"].lower()
            try:
                unit = Unit.model_validate(data)
            except ValidationError as exc:
                errors += _row_errors(line, exc)
                continue
            codes[unit.code] = unit.id
            units.append((line, unit))
            continue
        if "unit" in data and data["unit"] in codes:
            data["unit"] = codes[data["unit"]]  # HR writes the unit's code; the directory keeps its id
        elif "unit" in data and data["unit"] not in set(codes.values()):
            errors.append(
                RowError(
                    line,
                    "unit",
                    f"Unknown unit {data['unit']!r} (give its code or id).",
                    f"Không có đơn vị {data['unit']!r} trong danh bạ (ghi mã hoặc ký hiệu đơn vị).",
                )
            )
            continue
        try:
            people.append((line, Person.model_validate(data)))
        except ValidationError as exc:
            errors += _row_errors(line, exc)
    if errors:
        raise DirectoryImportError(errors)
    return Rows(units, people, unions)


def _close_before(rows: list[Any], new: Any) -> list[Any]:
    """Rows of one id with ``new`` merged in: same start replaces, a later start closes the open row before it."""
    out = [r for r in rows if r.effective_from != new.effective_from]
    start = new.effective_from
    if start is not None:
        out = [
            r.model_copy(update={"effective_to": start - timedelta(days=1)})
            if (r.effective_from or date.min) < start and (r.effective_to is None or r.effective_to >= start)
            else r
            for r in out
        ]
    return [*out, new]


def merge(
    current: Directory, units: list[Unit], people: list[Person], unions: list[Union] | None = None
) -> Directory:
    """The directory with the new rows merged in (effective-dated; nothing deleted). Validates the whole."""
    return Directory.model_validate(merged_rows(current, units, people, unions))


def merged_rows(
    current: Directory, units: list[Unit], people: list[Person], unions: list[Union] | None = None
) -> dict[str, Any]:
    """The merged directory as data, not yet validated (its lists in the order validation reports them)."""
    all_units = list(current.units)
    for u in units:
        same = [r for r in all_units if r.id == u.id]
        all_units = [r for r in all_units if r.id != u.id] + _close_before(same, u)
        if u.successor_of and u.effective_from is not None:
            closing = u.effective_from - timedelta(days=1)
            all_units = [
                r.model_copy(update={"effective_to": closing})
                if r.id in u.successor_of
                and r.effective_to is None
                and (r.effective_from or date.min) <= closing
                else r
                for r in all_units
            ]
    all_people = list(current.people)
    for p in people:
        same_person = [r for r in all_people if r.id == p.id]
        all_people = [r for r in all_people if r.id != p.id] + _close_before(same_person, p)
    merged_unions = {u.id: u for u in current.unions}
    for un in unions or []:
        merged_unions[un.id] = un
    return {
        "tenant": current.tenant,
        "units": [u.model_dump() for u in all_units],
        "unions": [u.model_dump() for u in merged_unions.values()],
        "people": [p.model_dump() for p in all_people],
    }


# Where each row of an imported file is: (list, id, effective_from) → line of the file.
RowLines = dict[tuple[str, str, Any], int]


def document_lines(content: bytes) -> dict[str, list[int]]:
    """The 1-based line where each item of ``units``, ``people`` and ``unions`` starts in a YAML/JSON document
    (JSON is read as YAML, which it is)."""
    try:
        root = yaml.compose(content, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return {}
    out: dict[str, list[int]] = {}
    if isinstance(root, yaml.MappingNode):
        for key, value in root.value:
            if isinstance(value, yaml.SequenceNode) and key.value in ("units", "people", "unions"):
                out[str(key.value)] = [item.start_mark.line + 1 for item in value.value]
    return out


def _problem_errors(exc: ValidationError, where: Any) -> list[RowError]:
    """Row errors of a directory that failed validation: ``where(list, index)`` gives the line of a row (0 when
    it is not in the imported file) and the consistency problems keep their Vietnamese text."""
    out: list[RowError] = []
    for e in exc.errors():
        error = (e.get("ctx") or {}).get("error")
        if isinstance(error, DirectoryInconsistent):
            for p in error.problems:
                m = re.match(r"^(units|people|unions)\[(\d+)\](?:\.(.+))?$", p.path)
                line = where(m.group(1), int(m.group(2))) if m else 0
                field = (m.group(3) or m.group(1)) if m else (p.path or "directory")
                out.append(RowError(line, field, p.en, f"Danh bạ không nhất quán: {p.vi}"))
            continue
        loc = e["loc"]
        if len(loc) >= 2 and loc[0] in ("units", "people", "unions") and isinstance(loc[1], int):
            line = where(str(loc[0]), loc[1])
            field = ".".join(str(x) for x in loc[2:]) or str(loc[0])
        else:
            line, field = 0, ".".join(str(x) for x in loc) or "directory"
        msg = str(e["msg"]).removeprefix("Value error, ")
        vi = "Thiếu thông tin bắt buộc" if e["type"] == "missing" else f"Giá trị không hợp lệ: {msg}"
        out.append(RowError(line, field, msg, vi))
    return out


def parse_data(content: bytes | str, filename: str) -> Any:
    """Plain data from a JSON or YAML document, the YAML bounded (``shared.documents.load_yaml``: no alias
    bombs); raises ``DirectoryImportError`` with the line of the problem."""
    try:
        if filename.lower().endswith(".json"):
            return json.loads(content)
        return load_yaml(content)
    except YamlRefused as exc:
        raise DirectoryImportError([RowError(exc.line, "file", exc.en, exc.vi)]) from None
    except json.JSONDecodeError as exc:
        raise DirectoryImportError(
            [RowError(exc.lineno, "file", f"Not valid JSON: {exc.msg}.", "Tệp không phải JSON hợp lệ.")]
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise DirectoryImportError(
            [
                RowError(
                    mark.line + 1 if mark is not None else 0,
                    "file",
                    f"Not valid YAML: {getattr(exc, 'problem', None) or exc}.",
                    "Tệp không phải YAML hợp lệ.",
                )
            ]
        ) from None
    except (ValueError, RecursionError) as exc:  # undecodable bytes; nesting deeper than Python's stack
        raise DirectoryImportError(
            [RowError(0, "file", f"Not a readable document: {type(exc).__name__}.", "Không đọc được tệp.")]
        ) from None


def load_document(content: bytes, filename: str) -> Directory:
    data = parse_data(content, filename)
    lines = document_lines(content)
    try:
        return Directory.model_validate(data)
    except ValidationError as exc:

        def where(kind: str, index: int) -> int:
            at = lines.get(kind, [])
            return at[index] if index < len(at) else 0

        raise DirectoryImportError(_problem_errors(exc, where)) from None


def read(content: bytes, filename: str, current: Directory) -> Directory:
    """The directory after importing a file, validated whole; raises ``DirectoryImportError`` listing every
    failing row. A YAML/JSON document is merged row by row like a list."""
    if filename.lower().endswith((".yaml", ".yml", ".json")):
        doc = load_document(content, filename)
        if doc.tenant != current.tenant:
            raise DirectoryImportError(
                [
                    RowError(
                        0,
                        "tenant",
                        f"The document is for {doc.tenant!r}, not {current.tenant!r}.",
                        f"Tài liệu thuộc {doc.tenant!r}, không phải {current.tenant!r}.",
                    )
                ]
            )
        units, people, unions = doc.units, doc.people, doc.unions
        lines = document_lines(content)
        row_lines: RowLines = {}
        listed: tuple[tuple[str, list[Any]], ...] = (("units", units), ("people", people), ("unions", unions))
        for kind, rows_of_kind in listed:
            for i, row in enumerate(rows_of_kind):
                if i < len(lines.get(kind, [])):
                    row_lines[(kind, row.id, getattr(row, "effective_from", None))] = lines[kind][i]
    else:
        rows = parse_list(content, filename, current)
        units = [u for _, u in rows.units]
        people = [p for _, p in rows.people]
        unions = [u for _, u in rows.unions]
        row_lines = {
            (kind, row.id, getattr(row, "effective_from", None)): line
            for kind, listed in (("units", rows.units), ("people", rows.people), ("unions", rows.unions))
            for line, row in listed
        }
    try:
        data = merged_rows(current, units, people, unions)
    except (
        OverflowError
    ):  # a date at the edge of the calendar in a document (year 1, 9999): history arithmetic
        raise DirectoryImportError(
            [RowError(0, "effective_from", "A date is out of range.", "Có ngày nằm ngoài phạm vi cho phép.")]
        ) from None
    try:
        return Directory.model_validate(data)
    except ValidationError as exc:

        def where(kind: str, index: int) -> int:
            """The file's line of the merged directory's row (0: a row already stored, not in the file)."""
            row = data[kind][index] if index < len(data[kind]) else {}
            return row_lines.get((kind, str(row.get("id")), row.get("effective_from")), 0)

        raise DirectoryImportError(_problem_errors(exc, where)) from None
