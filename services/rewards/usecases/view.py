"""The priority list as people read it (names, units, unions, reasons in Vietnamese and English), and its
exports: CSV and XLSX with Vietnamese headers, ready for the reward council (Hội đồng thi đua khen thưởng).

Everything here is derived from a ``projection.Computed`` and the directory copy; the same facts and rules
give the same bytes (no "generated at" stamp), so a rebuilt list can be compared with the live one.
"""

from __future__ import annotations

import csv
import io
import tempfile
from collections import defaultdict
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import IO, Any

from pydantic import BaseModel, computed_field

from services.rewards import domain
from shared import spreadsheets
from shared.clock import VN
from shared.collation import name_key
from shared.documents import Person, Union, Unit, format_datetime_vn
from shared.privacy import MASK, Viewer


class Reason(BaseModel):
    vi: str
    en: str
    event_id: str
    rule: str
    points: float
    time: datetime


class ReasonTotal(BaseModel):
    """What one rule earned in one part: the entries that count under it and their points, in a sentence."""

    part: str
    rule: str
    count: int
    points: float
    vi: str
    en: str


class EligibilityOut(BaseModel):
    key: str
    title_vi: str
    title_en: str
    reasons: list[dict[str, str]]


class PersonPriority(BaseModel):
    """``rank``, ``points`` and ``missed_deadlines`` are None (and eligibility and reasons empty) for a reader who
    may not see this person's participation (``shared.privacy``)."""

    rank: int | None
    person_id: str
    name: str | None
    title: str | None = None
    unit_id: str | None
    unit_name: str | None = None
    unions: list[str] = []
    roles: list[str] = []
    points: float | None
    missed_deadlines: int | None = 0
    eligibility: list[EligibilityOut] = []
    reasons: list[Reason]
    reason_totals: list[ReasonTotal] = []


class UnitPriority(BaseModel):
    """``reasons`` (every entry that counts) is empty on a page of the list unless its ledger is asked for: a
    unit's entries grow with its members; ``reason_totals`` says what each rule earned it, always."""

    rank: int
    unit_id: str
    name: str | None
    parent: str | None = None
    points: float
    rollup_points: float = 0
    missed_deadlines: int = 0
    eligibility: list[EligibilityOut] = []
    reasons: list[Reason]
    reason_totals: list[ReasonTotal] = []


class UnionRollup(BaseModel):
    union_id: str
    name: str | None
    parent: str | None = None
    members_listed: int
    points: float
    rollup_points: float


class LedgerRow(BaseModel):
    participant_kind: str
    participant_id: str
    name: str | None
    subject: str
    event_id: str
    rule: str
    points: float
    counted: bool
    time: datetime
    part: str
    reason_vi: str
    reason_en: str


class Page(BaseModel):
    """Which slice of the ranked lists this answer holds (``?limit=`` and ``offset``): persons and units alike,
    in list order; ``next_offset`` is None on the last page of both."""

    offset: int
    limit: int
    persons_total: int
    units_total: int

    @computed_field  # type: ignore[prop-decorator]
    @property
    def next_offset(self) -> int | None:
        following = self.offset + self.limit
        return following if following < max(self.persons_total, self.units_total) else None


class PriorityList(BaseModel):
    edition: str
    as_of: datetime | None
    generation: int
    edition_version: int | None
    rules_version: int | None
    persons: list[PersonPriority]
    units: list[UnitPriority]
    unions: list[UnionRollup]
    ledger: list[LedgerRow] = []
    page: Page | None = None  # set on a paginated answer (``limit``); its ``unions`` are then left out

    @computed_field  # type: ignore[prop-decorator]
    @property
    def rules_note(self) -> str:
        """Which rules the list was computed under (Vietnamese), also in the workbook's properties."""
        return rules_note(self)


def _reasons(r: domain.Ranked) -> list[Reason]:
    return [
        Reason(vi=e.reason_vi, en=e.reason_en, event_id=e.event_id, rule=e.rule, points=e.points, time=e.time)
        for e in r.entries
    ]


# What a rule rewards (or costs), by the fact type it prices: Vietnamese, English (a count precedes it).
RULE_NOUNS: dict[str, tuple[str, str]] = {
    domain.RECEIVED: ("bài dự thi được tiếp nhận", "submissions received"),
    domain.SELECTED: ("sáng kiến được Hội đồng chọn", "initiatives selected by the council"),
    domain.FULFILLED: ("nhiệm vụ hoàn thành", "assignments fulfilled"),
    domain.MISSED: ("lần trễ hạn", "missed deadlines"),
    domain.PROGRESS: ("báo cáo tiến độ chiến dịch 90 ngày", "90-day campaign progress reports"),
    domain.TARGET_REACHED: ("chỉ tiêu chiến dịch 90 ngày đạt", "90-day campaign targets reached"),
    domain.TARGET_MISSED: ("chỉ tiêu chiến dịch 90 ngày không đạt", "90-day campaign targets missed"),
}


def _points_vi(x: float) -> str:
    return f"{x:g}".replace(".", ",")


def _totals(r: domain.Ranked, part_titles: Mapping[str, str]) -> list[ReasonTotal]:
    out = []
    for s in r.sums:
        vi, en = RULE_NOUNS.get(
            s.rule.split("/", 1)[0], (f"mục theo quy tắc {s.rule}", f"entries under {s.rule}")
        )
        part = part_titles.get(s.part, s.part)
        where_vi, where_en = (f" — «{part}»", f" — “{part}”") if part else ("", "")
        out.append(
            ReasonTotal(
                part=s.part,
                rule=s.rule,
                count=s.count,
                points=s.points,
                vi=f"{s.count} {vi}{where_vi}: {_points_vi(s.points)} điểm",
                en=f"{s.count} {en}{where_en}: {s.points:g} points",
            )
        )
    return out


def _eligibility(r: domain.Ranked) -> list[EligibilityOut]:
    return [
        EligibilityOut(
            key=e.key,
            title_vi=e.title_vi,
            title_en=e.title_en,
            reasons=[{"vi": v, "en": n} for v, n in e.reasons],
        )
        for e in r.eligibility
    ]


def _subtree(root: str, parents: Mapping[str, str | None]) -> set[str]:
    out = {root}
    changed = True
    while changed:
        changed = False
        for child, parent in parents.items():
            if parent in out and child not in out:
                out.add(child)
                changed = True
    return out


def build(
    *,
    edition: str,
    as_of: datetime | None,
    persons: list[domain.Ranked],
    units: list[domain.Ranked],
    entries: tuple[domain.LedgerEntry, ...],
    generation: int,
    edition_version: int | None,
    rules_version: int | None,
    people: Mapping[str, Person],
    unit_docs: Mapping[str, Unit],
    union_docs: Mapping[str, Union],
    unit: str | None = None,
    union: str | None = None,
    role: str | None = None,
    unions: bool = True,
    unit_points: Mapping[str, float] | None = None,
    ledger: bool = True,
    unit_reasons: bool = True,
    part_titles: Mapping[str, str] | None = None,
) -> PriorityList:
    """The list with names, filtered (ranks stay those of the whole list) and rolled up by unit and union
    (``unions=False``: no union roll-up, for a page that does not hold every member); ``ledger=False``: without
    the ledger's rows (each row's reasons stay); ``unit_reasons=False``: a unit's reasons in brief only (its
    ``reason_totals``), as on a page."""
    titles = part_titles or {}
    unit_parents = {u.id: u.parent for u in unit_docs.values()}
    union_parents = {u.id: u.parent for u in union_docs.values()}
    unit_at_receipt = {
        e.participant_id: e.submission_id for e in entries if e.participant_kind == "person"
    }  # only a fallback key
    receipt_units: dict[str, str] = {}
    for e in sorted(entries, key=lambda e: (e.time, e.event_id)):
        if e.participant_kind == "unit":
            receipt_units[e.submission_id] = e.participant_id

    def person_unit(pid: str) -> str | None:
        p = people.get(pid)
        if p is not None:
            return p.unit
        return receipt_units.get(unit_at_receipt.get(pid, ""))

    units_wanted = _subtree(unit, unit_parents) if unit else None
    unions_wanted = _subtree(union, union_parents) if union else None
    person_rows = []
    for r in persons:
        p = people.get(r.participant_id)
        uid = person_unit(r.participant_id)
        if units_wanted is not None and uid not in units_wanted:
            continue
        if unions_wanted is not None and not (p and set(p.unions) & unions_wanted):
            continue
        if role is not None and not (p and role in p.roles):
            continue
        person_rows.append(
            PersonPriority(
                rank=r.rank,
                person_id=r.participant_id,
                name=p.name if p else None,
                title=p.title if p else None,
                unit_id=uid,
                unit_name=unit_docs[uid].name if uid is not None and uid in unit_docs else None,
                unions=list(p.unions) if p else [],
                roles=[str(x) for x in p.roles] if p else [],
                points=r.points,
                missed_deadlines=r.misses,
                eligibility=_eligibility(r),
                reasons=_reasons(r),
                reason_totals=_totals(r, titles),
            )
        )
    if unit_points is None:  # else every unit's points, given with a page of them
        unit_points = {r.participant_id: r.points for r in units}
    unit_rollup = domain.rollup(unit_points, unit_parents)
    unit_rows = [
        UnitPriority(
            rank=r.rank,
            unit_id=r.participant_id,
            name=unit_docs[r.participant_id].name if r.participant_id in unit_docs else None,
            parent=unit_parents.get(r.participant_id),
            points=r.points,
            rollup_points=unit_rollup.get(r.participant_id, r.points),
            missed_deadlines=r.misses,
            eligibility=_eligibility(r),
            reasons=_reasons(r) if unit_reasons else [],
            reason_totals=_totals(r, titles),
        )
        for r in units
        if units_wanted is None or r.participant_id in units_wanted
    ]
    # Unions: the points of their members on the (filtered) list, and of their sub-unions.
    union_points: dict[str, float] = defaultdict(float)
    members: dict[str, int] = defaultdict(int)
    for row in person_rows:
        for u in row.unions:
            union_points[u] += row.points
            members[u] += 1
    union_rollup = domain.rollup(union_points, union_parents)
    union_rows = [
        UnionRollup(
            union_id=uid,
            name=union_docs[uid].name if uid in union_docs else None,
            parent=union_parents.get(uid),
            members_listed=members.get(uid, 0),
            points=round(union_points.get(uid, 0.0), 2),
            rollup_points=union_rollup.get(uid, 0.0),
        )
        for uid in sorted(set(union_points) | set(union_docs))
        if unions and (unions_wanted is None or uid in unions_wanted)
    ]
    counted = {
        (e.participant_kind, e.participant_id, e.submission_id, e.rule)
        for r in (*persons, *units)
        for e in r.entries
    }
    listed = {("person", r.person_id) for r in person_rows} | {("unit", r.unit_id) for r in unit_rows}
    rows = [
        LedgerRow(
            participant_kind=e.participant_kind,
            participant_id=e.participant_id,
            name=(people[e.participant_id].name if e.participant_id in people else None)
            if e.participant_kind == "person"
            else (unit_docs[e.participant_id].name if e.participant_id in unit_docs else None),
            subject=e.submission_id,
            event_id=e.event_id,
            rule=e.rule,
            points=e.points,
            counted=(e.participant_kind, e.participant_id, e.submission_id, e.rule) in counted,
            time=e.time.astimezone(VN),
            part=e.part,
            reason_vi=e.reason_vi,
            reason_en=e.reason_en,
        )
        for e in sorted(
            entries if ledger else (),
            key=lambda e: (e.time, e.event_id, e.participant_kind, e.participant_id, e.rule),
        )
        if (e.participant_kind, e.participant_id) in listed
    ]
    return PriorityList(
        edition=edition,
        as_of=as_of.astimezone(VN) if as_of else None,
        generation=generation,
        edition_version=edition_version,
        rules_version=rules_version,
        persons=person_rows,
        units=unit_rows,
        unions=union_rows,
        ledger=rows,
    )


# ------------------------------------------------------------------------------------------------ exports

PERSON_HEADERS: list[object] = [
    "Hạng",
    "Mã cán bộ",
    "Họ và tên",
    "Chức vụ",
    "Đơn vị",
    "Điểm",
    "Số lần trễ hạn",
    "Danh hiệu đủ điều kiện",
    "Lý do",
]
UNIT_HEADERS: list[object] = [
    "Hạng",
    "Mã đơn vị",
    "Tên đơn vị",
    "Điểm",
    "Điểm gộp (kể cả đơn vị trực thuộc)",
    "Số lần trễ hạn",
    "Danh hiệu đủ điều kiện",
    "Lý do",
]
LEDGER_HEADERS: list[object] = [
    "Đối tượng",
    "Mã",
    "Tên",
    "Hồ sơ / nhiệm vụ",
    "Mã sự kiện",
    "Quy tắc",
    "Điểm",
    "Được tính",
    "Thời điểm (+07:00)",
    "Phần thi",
    "Lý do",
    "Reason (English)",
]
SHEETS = {"persons": "Cá nhân", "units": "Đơn vị", "ledger": "Sổ ghi nhận"}


def _pts(x: float | None) -> float | int | str:
    if x is None:
        return MASK  # the reader may not see it (shared.privacy)
    return int(x) if float(x).is_integer() else x


def seen_by(pl: PriorityList, viewer: Viewer) -> PriorityList:
    """The list as ``viewer`` may read it (``shared.privacy``): everyone's name, title and unit; points, misses,
    eligibility and reasons only of the people whose participation the viewer sees (the others after them, by
    name, so the order tells nothing either); ledger rows of those people only. Units and unions are
    aggregates and stay."""
    if viewer.sees_all_participation:
        return pl
    shown, masked = [], []
    for p in pl.persons:
        if viewer.sees_participation(p.person_id, p.unit_id):
            shown.append(p)
        else:
            update = {
                "rank": None,
                "points": None,
                "missed_deadlines": None,
                "eligibility": [],
                "reasons": [],
            }
            masked.append(p.model_copy(update=update))
    visible = {p.person_id for p in shown}
    ledger = [e for e in pl.ledger if e.participant_kind != "person" or e.participant_id in visible]
    masked.sort(key=lambda p: (name_key(p.name or ""), p.person_id))  # in Vietnamese order (shared.collation)
    return pl.model_copy(update={"persons": shown + masked, "ledger": ledger})


def sheet_rows(pl: PriorityList, sheet: str) -> list[list[Any]]:
    """One sheet's rows (headers first): ``persons``, ``units`` or ``ledger``."""
    return list(iter_rows(pl, sheet))


def iter_rows(pl: PriorityList, sheet: str) -> Iterator[list[Any]]:
    """One sheet's rows, one at a time (headers first)."""
    if sheet == "persons":
        yield PERSON_HEADERS
        yield from (
            [
                MASK if p.rank is None else p.rank,
                p.person_id,
                p.name or "",
                p.title or "",
                p.unit_name or p.unit_id or "",
                _pts(p.points),
                MASK if p.missed_deadlines is None else p.missed_deadlines,
                "; ".join(e.title_vi for e in p.eligibility),
                "\n".join(f"{r.vi} ({_pts(r.points):+g} điểm)" for r in p.reasons),
            ]
            for p in pl.persons
        )
        return
    if sheet == "units":
        yield UNIT_HEADERS
        yield from (
            [
                u.rank,
                u.unit_id,
                u.name or "",
                _pts(u.points),
                _pts(u.rollup_points),
                u.missed_deadlines,
                "; ".join(e.title_vi for e in u.eligibility),
                "\n".join(f"{r.vi} ({_pts(r.points):+g} điểm)" for r in u.reasons),
            ]
            for u in pl.units
        )
        return
    if sheet == "ledger":
        yield LEDGER_HEADERS
        yield from (
            [
                "Cá nhân" if e.participant_kind == "person" else "Đơn vị",
                e.participant_id,
                e.name or "",
                e.subject,
                e.event_id,
                e.rule,
                _pts(e.points),
                "Có" if e.counted else "Không",
                format_datetime_vn(e.time),
                e.part,
                e.reason_vi,
                e.reason_en,
            ]
            for e in pl.ledger
        )
        return
    raise KeyError(sheet)


def rules_note(pl: PriorityList) -> str:
    """Which rules the list was computed under, as the council reads it."""
    if pl.rules_version is None:
        return "Chưa nhận được quy tắc khen thưởng của kỳ hội thi: tính theo điểm mặc định (1 điểm mỗi hồ sơ)"
    return f"Tính theo quy tắc khen thưởng phiên bản {pl.rules_version} (kỳ hội thi phiên bản {pl.edition_version})"


def to_csv(pl: PriorityList, sheet: str) -> bytes:
    """UTF-8 with a byte-order mark (Excel opens it with its diacritics intact), CRLF line ends; no cell is a
    formula (``shared.spreadsheets``)."""
    return b"".join(csv_chunks(pl, sheet))


def csv_chunks(pl: PriorityList, sheet: str, *, rows_per_chunk: int = 500) -> Iterator[bytes]:
    """``to_csv`` as it streams: the byte-order mark, then a chunk every ``rows_per_chunk`` rows."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    yield "\ufeff".encode()
    for i, row in enumerate(iter_rows(pl, sheet), 1):
        w.writerow([spreadsheets.safe_text(v) for v in row])
        if i % rows_per_chunk == 0:
            yield buf.getvalue().encode("utf-8")
            buf.seek(0)
            buf.truncate()
    if buf.tell():
        yield buf.getvalue().encode("utf-8")


def to_xlsx(pl: PriorityList, *, title: str | None = None) -> bytes:
    """A workbook with three sheets — Cá nhân, Đơn vị, Sổ ghi nhận — headers in Vietnamese."""
    with xlsx_file(pl, title=title) as f:
        return f.read()


def xlsx_file(pl: PriorityList, *, title: str | None = None) -> IO[bytes]:
    """``to_xlsx`` written row by row (openpyxl's write-only mode: no sheet held in memory) into a temporary
    file (in memory up to 8 MiB, then on disk), rewound. Blocking: run it off the event loop."""
    from openpyxl import Workbook  # type: ignore[import-untyped]
    from openpyxl.cell import WriteOnlyCell  # type: ignore[import-untyped]
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE  # type: ignore[import-untyped]
    from openpyxl.styles import Alignment, Font  # type: ignore[import-untyped]
    from openpyxl.utils import get_column_letter  # type: ignore[import-untyped]

    wb = Workbook(write_only=True)
    bold, wrap = Font(bold=True), Alignment(wrap_text=True, vertical="top")
    for key, name in SHEETS.items():
        ws = wb.create_sheet(name[:31])
        widths: dict[int, int] = {}
        for row in iter_rows(pl, key):  # sized to the content first (up to 80), as the council is used to
            for i, v in enumerate(row, 1):
                widths[i] = max(widths.get(i, 0), len(str(v if v is not None else "").split("\n")[0]))
        for i, width in widths.items():
            ws.column_dimensions[get_column_letter(i)].width = min(max(10, width + 2), 80)
        ws.freeze_panes = "A2"
        for n, row in enumerate(iter_rows(pl, key)):
            cells = []
            for v in row:
                value = ILLEGAL_CHARACTERS_RE.sub("", v) if isinstance(v, str) else v
                c = WriteOnlyCell(ws, value=value)
                if isinstance(value, str) and value.startswith(spreadsheets.FORMULA_START):
                    c.data_type = "s"  # text, never a formula
                    c.quotePrefix = True
                if n == 0:
                    c.font = bold
                else:
                    c.alignment = wrap
                cells.append(c)
            ws.append(cells)
    wb.properties.title = title or f"Danh sách ưu tiên khen thưởng — kỳ {pl.edition}"
    wb.properties.creator = "hoithi rewards"
    wb.properties.subject = rules_note(pl)
    fixed = datetime(2000, 1, 1)  # the same list gives the same workbook
    wb.properties.created = fixed
    wb.properties.modified = fixed
    out: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=8 << 20)  # noqa: SIM115 (the response closes it)
    wb.save(out)
    out.seek(0)
    return out


def file_chunks(f: IO[bytes], size: int = 1 << 16) -> Iterator[bytes]:
    """A file's bytes in chunks, closing it at the end (a streamed response's body)."""
    try:
        while chunk := f.read(size):
            yield chunk
    finally:
        f.close()
