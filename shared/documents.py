"""The two documents the secretariat keeps: the directory (who exists) and the edition (what the contest asks).

Pure Pydantic v2 models plus YAML/JSON loading, the deadline rule, Vietnamese date formatting and the
procedure-code rule. Nothing here imports a web framework, a database or a broker.

Time rule (ARCHITECTURE.md "Time"): a bare date D as a deadline means "chậm nhất ngày D": the whole of D counts,
so the deadline instant is the exclusive end D+1 00:00:00 in the edition's timezone; a receipt is on time iff
``received_at < deadline``. A datetime given explicitly is used as is (a naive one is read in the edition tz).

Effective dating: ``effective_from`` and ``effective_to`` are both inclusive calendar days ("có hiệu lực đến hết
ngày ..."); ``None`` means open-ended. A successor row starts the day after its predecessor's ``effective_to``.

Run ``python -m shared.documents [DIR]`` to (re)write the JSON Schemas of both documents.
"""

from __future__ import annotations

import itertools
import json
import re
import sys
from collections import Counter
from collections.abc import Iterable
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal, Self, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

__all__ = [
    "DEFAULT_TIMEZONE",
    "ROLE_TITLES_VI",
    "SCHEMA_DIR",
    "UNIT_KIND_TITLES_VI",
    "VN_TZ",
    "Assignees",
    "Attachments",
    "CampaignTargets",
    "Council",
    "Criterion",
    "Deduct",
    "Directory",
    "DirectoryInconsistent",
    "DirectoryProblem",
    "Disagreement",
    "Edition",
    "ExperienceReportPart",
    "InitiativePart",
    "MobilisationLists",
    "OnlineServicesCampaignPart",
    "Part",
    "PeopleSelector",
    "Person",
    "Rewards",
    "Role",
    "Rubric",
    "RubricLevel",
    "SelectionPart",
    "Union",
    "UnionKind",
    "Unit",
    "UnitKind",
    "UnitSelector",
    "check_edition_against_directory",
    "deadline_instant",
    "directory_problems",
    "document_schemas",
    "dump_yaml",
    "format_date_vn",
    "format_datetime_vn",
    "load_directory",
    "load_document_data",
    "load_edition",
    "national_procedure_code",
    "parse_duration",
    "write_document_schemas",
]

DEFAULT_TIMEZONE = "Asia/Ho_Chi_Minh"
VN_TZ = ZoneInfo(DEFAULT_TIMEZONE)
SCHEMA_DIR = Path(__file__).parent / "schemas" / "documents"
JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


# ---------------------------------------------------------------------------------------------- enumerations


class Role(StrEnum):
    secretariat = "secretariat"
    unit_head = "unit_head"
    official = "official"
    union_secretary = "union_secretary"
    council_chair = "council_chair"
    council_member = "council_member"
    reward_council = "reward_council"
    director = "director"
    admin = "admin"


class UnitKind(StrEnum):
    office = "office"
    division = "division"
    sub_department = "sub_department"
    public_service_unit = "public_service_unit"
    branch = "branch"


class UnionKind(StrEnum):
    youth_union = "youth_union"
    trade_union = "trade_union"


ROLE_TITLES_VI: dict[Role, str] = {
    Role.secretariat: "Thường trực (Văn phòng Sở)",
    Role.unit_head: "Thủ trưởng phòng, đơn vị",
    Role.official: "Công chức, viên chức",
    Role.union_secretary: "Bí thư Chi đoàn, Chủ tịch Công đoàn",
    Role.council_chair: "Chủ tịch Hội đồng xét sáng kiến",
    Role.council_member: "Thành viên Hội đồng xét sáng kiến",
    Role.reward_council: "Thành viên Hội đồng thi đua khen thưởng",
    Role.director: "Giám đốc Sở",
    Role.admin: "Quản trị hệ thống",
}

UNIT_KIND_TITLES_VI: dict[UnitKind, str] = {
    UnitKind.office: "Văn phòng",
    UnitKind.division: "Phòng chuyên môn",
    UnitKind.sub_department: "Chi cục",
    UnitKind.public_service_unit: "Đơn vị sự nghiệp công lập",
    UnitKind.branch: "Chi nhánh",
}


# ---------------------------------------------------------------------------------------------- small types

_DURATION_RE = re.compile(
    r"^P(?:(?P<days>\d+)D)?(?:T(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?$"
)
_DURATION_PATTERN = re.sub(r"\?P<\w+>", "", _DURATION_RE.pattern)  # ECMA-262 has no (?P<name>)


def parse_duration(value: str) -> timedelta:
    """Parse the ISO-8601 durations editions use: days, hours, minutes, seconds (P7D, PT0S, P90D, PT12H)."""
    m = _DURATION_RE.match(value) if isinstance(value, str) else None
    if m is None or value in ("P", "PT") or value.endswith("T"):
        raise ValueError(
            f"{value!r} is not a supported ISO-8601 duration: use days/hours/minutes/seconds, "
            "e.g. P7D, P90D, PT12H, PT30M, PT0S (years, months and weeks are not accepted)"
        )
    parts = {k: float(v) if v else 0.0 for k, v in m.groupdict().items()}
    return timedelta(
        days=parts["days"], hours=parts["hours"], minutes=parts["minutes"], seconds=parts["seconds"]
    )


def _check_duration(value: str) -> str:
    parse_duration(value)
    return value


# An ISO-8601 duration, kept as written (so exports round-trip); use parse_duration() for the timedelta.
IsoDuration = Annotated[
    str,
    AfterValidator(_check_duration),
    Field(json_schema_extra={"pattern": _DURATION_PATTERN, "examples": ["P7D", "PT0S", "PT12H"]}),
]

_EMAIL_RE = re.compile(r"^[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}$")


def _check_email(value: str) -> str:
    value = value.strip()
    if not _EMAIL_RE.match(value):
        raise ValueError(f"{value!r} is not a valid e-mail address (expected name@domain.tld)")
    return value


Email = Annotated[str, AfterValidator(_check_email), Field(json_schema_extra={"format": "email"})]

_ID_PATTERN = r"^[a-z0-9][a-z0-9_.\-]*$"
Id = Annotated[str, Field(pattern=_ID_PATTERN, min_length=1, max_length=64)]
Code = Annotated[str, Field(pattern=r"^[A-Z0-9][A-Z0-9_\-]*$", min_length=1, max_length=32)]


def _deadline_before(value: Any) -> Any:
    """Keep a bare date a date and a date-time a datetime (pydantic's union would coerce either way)."""
    if isinstance(value, datetime | date):
        return value
    if isinstance(value, str):
        s = value.strip()
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", s):
            return date.fromisoformat(s)
        try:
            return datetime.fromisoformat(s)
        except ValueError:
            raise ValueError(
                f"{value!r} is neither a date (YYYY-MM-DD) nor a date-time (YYYY-MM-DDTHH:MM[:SS][+07:00])"
            ) from None
    return value


# A deadline: a bare date (the whole day counts) or an explicit date-time.
Deadline = Annotated[datetime | date, BeforeValidator(_deadline_before)]


def _edition_name_before(value: Any) -> Any:
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


def _zone(tz: str | ZoneInfo) -> ZoneInfo:
    return tz if isinstance(tz, ZoneInfo) else ZoneInfo(tz)


def deadline_instant(value: date | datetime, tz: str | ZoneInfo = DEFAULT_TIMEZONE) -> datetime:
    """The aware instant a deadline ends at (exclusive).

    A bare date D -> D+1 00:00:00 in ``tz`` (the whole of D counts). An aware datetime is returned as is; a naive
    one is read in ``tz``.
    """
    zone = _zone(tz)
    if isinstance(value, datetime):
        return (
            value
            if value.tzinfo is not None and value.utcoffset() is not None
            else value.replace(tzinfo=zone)
        )
    return datetime.combine(value + timedelta(days=1), time(0), tzinfo=zone)


def _start_instant(value: date | datetime, tz: str | ZoneInfo) -> datetime:
    """The aware instant something starts at: a bare date D -> D 00:00:00 in ``tz``."""
    zone = _zone(tz)
    if isinstance(value, datetime):
        return (
            value
            if value.tzinfo is not None and value.utcoffset() is not None
            else value.replace(tzinfo=zone)
        )
    return datetime.combine(value, time(0), tzinfo=zone)


def _effective(row_from: date | None, row_to: date | None, d: date) -> bool:
    return (row_from is None or row_from <= d) and (row_to is None or d <= row_to)


def _overlap(a_from: date | None, a_to: date | None, b_from: date | None, b_to: date | None) -> bool:
    lo_a, hi_a = a_from or date.min, a_to or date.max
    lo_b, hi_b = b_from or date.min, b_to or date.max
    return lo_a <= hi_b and lo_b <= hi_a


def _duplicates(values: list[str]) -> list[str]:
    return sorted(v for v, n in Counter(values).items() if n > 1)


class _Doc(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class _EffectiveDated(_Doc):
    effective_from: date | None = Field(default=None, description="first day this row applies (inclusive)")
    effective_to: date | None = Field(default=None, description="last day this row applies (inclusive)")

    @model_validator(mode="after")
    def _period_ordered(self) -> Self:
        if self.effective_from and self.effective_to and self.effective_to < self.effective_from:
            raise ValueError(
                f"effective_to ({self.effective_to}) is before effective_from ({self.effective_from})"
            )
        return self

    def effective_on(self, d: date) -> bool:
        return _effective(self.effective_from, self.effective_to, d)


# ---------------------------------------------------------------------------------------------- directory


class Unit(_EffectiveDated):
    """A division/unit of the agency (phòng, chi cục, đơn vị sự nghiệp, chi nhánh). Ids are stable forever."""

    id: Id
    code: Code
    name: str = Field(min_length=1, description="Vietnamese name, with diacritics")
    kind: UnitKind
    parent: Id | None = None
    successor_of: list[Id] = Field(default_factory=list, description="ids of the units this one replaces")


class Union(_Doc):
    """A mass organisation in the parallel tree: Chi đoàn (youth union) or Công đoàn cơ sở (trade union)."""

    id: Id
    code: Code | None = None
    name: str = Field(min_length=1)
    kind: UnionKind
    parent: Id | None = None
    secretary: Id | None = Field(
        default=None, description="person id of the Bí thư / Chủ tịch who mobilises the members"
    )


class Person(_EffectiveDated):
    """A person as of a period. A move or a role change is a new row with the same id from a date."""

    id: Id
    name: str = Field(min_length=1, description="full Vietnamese name, with diacritics")
    email: Email
    title: str = Field(min_length=1, description="chức vụ, e.g. Chuyên viên, Chánh Văn phòng")
    unit: Id
    roles: list[Role] = Field(default_factory=list)
    unions: list[Id] = Field(default_factory=list)
    date_of_birth: date | None = None
    qualification: str | None = None

    def has_role(self, role: Role | str) -> bool:
        return Role(role) in self.roles


class Directory(_Doc):
    """Who exists: the units, the unions and the people of one tenant, effective-dated."""

    model_config = ConfigDict(title="Danh bạ đơn vị và cán bộ (directory)")

    tenant: Id
    units: list[Unit] = Field(default_factory=list)
    unions: list[Union] = Field(default_factory=list)
    people: list[Person] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if problems := directory_problems(self):
            raise DirectoryInconsistent(problems)
        return self

    # -- look-ups

    def unit(self, unit_id: str, as_of: date | None = None) -> Unit:
        """The row of a unit effective on ``as_of``; without a date, the latest row (a unit may have several
        dated rows: a rename, a merger into it, a change of parent)."""
        rows = [u for u in self.units if u.id == unit_id]
        if as_of is not None:
            rows = [u for u in rows if u.effective_on(as_of)]
        if not rows:
            raise KeyError(f"unknown unit {unit_id!r}" + (f" as of {as_of}" if as_of else ""))
        return max(rows, key=lambda u: (u.effective_to or date.max, u.effective_from or date.min))

    def successors(self, unit_id: str) -> list[str]:
        """Ids of the units that replaced ``unit_id`` (merged it in, split it, renamed it to a new id)."""
        return sorted({u.id for u in self.units if unit_id in u.successor_of and u.id != unit_id})

    def predecessors(self, unit_id: str) -> list[str]:
        """Ids of the units ``unit_id`` replaced, over all its rows."""
        return sorted({s for u in self.units if u.id == unit_id for s in u.successor_of})

    def lineage(self, unit_id: str) -> dict[str, str]:
        """Every unit linked to ``unit_id`` by ``successor_of``, transitively (see ``unit_lineage``)."""
        return unit_lineage(self.units, unit_id)

    def unit_by_code(self, code: str, as_of: date | None = None) -> Unit:
        for u in self.units:
            if u.code == code and (as_of is None or u.effective_on(as_of)):
                return u
        raise KeyError(f"unknown unit code {code!r}" + (f" as of {as_of}" if as_of else ""))

    def union(self, union_id: str) -> Union:
        for u in self.unions:
            if u.id == union_id:
                return u
        raise KeyError(f"unknown union {union_id!r}")

    def person(self, person_id: str, as_of: date | None = None) -> Person:
        """The row of a person effective on ``as_of``; without a date, the latest row."""
        rows = [p for p in self.people if p.id == person_id]
        if as_of is not None:
            rows = [p for p in rows if p.effective_on(as_of)]
        if not rows:
            raise KeyError(f"unknown person {person_id!r}" + (f" as of {as_of}" if as_of else ""))
        return max(rows, key=lambda p: (p.effective_to or date.max, p.effective_from or date.min))

    def units_as_of(self, d: date) -> list[Unit]:
        return [u for u in self.units if u.effective_on(d)]

    def people_as_of(self, d: date) -> list[Person]:
        return [p for p in self.people if p.effective_on(d)]

    def children(self, unit_id: str, as_of: date | None = None) -> list[Unit]:
        return [u for u in self.units if u.parent == unit_id and (as_of is None or u.effective_on(as_of))]

    def select_units(self, selector: UnitSelector, as_of: date) -> list[Unit]:
        return [u for u in self.units_as_of(as_of) if selector.matches(u)]

    def select_people(self, selector: PeopleSelector, as_of: date) -> list[Person]:
        if selector.of_units == "all":
            unit_ids = {u.id for u in self.units_as_of(as_of)}
        else:
            unit_ids = {u.id for u in self.select_units(selector.of_units, as_of)}
        return [
            p
            for p in self.people_as_of(as_of)
            if p.unit in unit_ids
            and (not selector.roles or any(r in p.roles for r in selector.roles))
            and (not selector.ids or p.id in selector.ids)
        ]


def unit_lineage(units: Iterable[Unit], unit_id: str) -> dict[str, str]:
    """The units ``unit_id`` descends from or was carried into, over ``successor_of`` links followed
    transitively in one direction each: id -> "predecessor" (it replaced, directly or not) or "successor"
    (replaced ``unit_id``: a merger into it, a split, a rename). A sibling merged into the same successor is
    neither; ``unit_id`` itself is not listed."""
    before: dict[str, set[str]] = {}
    after: dict[str, set[str]] = {}
    for u in units:
        for s in u.successor_of:
            if s != u.id:
                before.setdefault(u.id, set()).add(s)
                after.setdefault(s, set()).add(u.id)
    out: dict[str, str] = {}
    for links, kind in ((before, "predecessor"), (after, "successor")):
        todo = [unit_id]
        while todo:
            for nxt in links.get(todo.pop(), ()):
                if nxt != unit_id and nxt not in out:
                    out[nxt] = kind
                    todo.append(nxt)
    return out


class DirectoryProblem(BaseModel):
    """One inconsistency of a directory: where (``units[3].successor_of``; "" for the whole), English and
    Vietnamese."""

    path: str
    en: str
    vi: str


class DirectoryInconsistent(ValueError):
    """The directory's rows do not fit together; ``problems`` says where, in English and Vietnamese (pydantic
    keeps this exception as ``ctx["error"]`` of its ``value_error``)."""

    def __init__(self, problems: list[DirectoryProblem]) -> None:
        super().__init__("; ".join(f"{p.path}: {p.en}" if p.path else p.en for p in problems))
        self.problems = problems


def _row_periods_overlap(rows: list[tuple[int, _EffectiveDated]]) -> list[tuple[int, int]]:
    """(earlier index, later index) of every two rows, of one id, whose periods overlap."""
    return [
        (i, j)
        for (i, a), (j, b) in itertools.combinations(rows, 2)
        if _overlap(a.effective_from, a.effective_to, b.effective_from, b.effective_to)
    ]


def _period_vi(row: _EffectiveDated) -> str:
    start = format_date_vn(row.effective_from) if row.effective_from else "trước đó"
    end = format_date_vn(row.effective_to) if row.effective_to else "nay"
    return f"{start}–{end}"


def directory_problems(d: Directory) -> list[DirectoryProblem]:
    """Every inconsistency of a directory (empty: consistent). A unit or a person may have any number of dated
    rows under one id, never overlapping in time; ``successor_of`` links (a merger, a split, a rename to a new
    id) must name units that exist and that started before the row that replaces them."""
    problems: list[DirectoryProblem] = []

    def add(path: str, en: str, vi: str) -> None:
        problems.append(DirectoryProblem(path=path, en=en, vi=vi))

    unit_rows: dict[str, list[tuple[int, Unit]]] = {}
    for i, u in enumerate(d.units):
        unit_rows.setdefault(u.id, []).append((i, u))
    for uid, rows in unit_rows.items():
        for _, j in _row_periods_overlap(rows):  # type: ignore[arg-type]
            add(
                f"units[{j}].effective_from",
                f"duplicate unit ids [{uid!r}] in overlapping periods (rows of one unit must not overlap in time; "
                "a change is a new row from a date)",
                f"đơn vị {uid!r} có hai dòng trùng thời gian hiệu lực ({_period_vi(d.units[j])}): mỗi thay đổi là "
                "một dòng mới có hiệu lực từ một ngày",
            )
    if dup := _duplicates([u.id for u in d.unions]):
        add("unions", f"duplicate union ids {dup}", f"mã đoàn thể bị trùng: {', '.join(dup)}")
    union_ids = {u.id for u in d.unions}
    for i, u in enumerate(d.units):
        if u.parent is not None and u.parent not in unit_rows:
            add(
                f"units[{i}].parent",
                f"unit {u.id!r} has unknown parent {u.parent!r}",
                f"đơn vị {u.id!r} trực thuộc đơn vị không có trong danh bạ: {u.parent!r}",
            )
        if u.parent == u.id:
            add(
                f"units[{i}].parent",
                f"unit {u.id!r} is its own parent",
                f"đơn vị {u.id!r} trực thuộc chính nó",
            )
        for s in u.successor_of:
            if s == u.id:
                add(
                    f"units[{i}].successor_of",
                    f"unit {u.id!r} replaces itself (a rename under the same id is a new row from a date)",
                    f"đơn vị {u.id!r} thay thế chính nó (đổi tên giữ nguyên mã là một dòng mới từ một ngày)",
                )
            elif s not in unit_rows:
                add(
                    f"units[{i}].successor_of",
                    f"unit {u.id!r} replaces unknown unit {s!r} (a dangling link)",
                    f"đơn vị {u.id!r} thay thế đơn vị không có trong danh bạ: {s!r}",
                )
            elif u.effective_from is not None and all(
                p.effective_from is not None and p.effective_from >= u.effective_from for _, p in unit_rows[s]
            ):
                add(
                    f"units[{i}].successor_of",
                    f"unit {u.id!r} replaces {s!r} from {u.effective_from}, but {s!r} only starts on or after "
                    "that day",
                    f"đơn vị {u.id!r} thay thế {s!r} từ ngày {format_date_vn(u.effective_from)}, nhưng {s!r} chỉ "
                    "bắt đầu từ ngày đó trở về sau",
                )
    for i, a in enumerate(d.units):
        for b in d.units[i + 1 :]:
            if (
                a.id != b.id
                and a.code == b.code
                and _overlap(a.effective_from, a.effective_to, b.effective_from, b.effective_to)
            ):
                add(
                    "units",
                    f"code {a.code!r} is used by both {a.id!r} and {b.id!r} in overlapping periods",
                    f"ký hiệu {a.code!r} được dùng cho cả {a.id!r} và {b.id!r} trong cùng thời gian",
                )
    for i, tree in enumerate(d.unions):
        if tree.parent is not None and tree.parent not in union_ids:
            add(
                f"unions[{i}].parent",
                f"union {tree.id!r} has unknown parent {tree.parent!r}",
                f"đoàn thể {tree.id!r} trực thuộc đoàn thể không có trong danh bạ: {tree.parent!r}",
            )
    rows_by_id: dict[str, list[Person]] = {}
    for i, p in enumerate(d.people):
        if p.unit not in unit_rows:
            add(
                f"people[{i}].unit",
                f"person {p.id!r} is in unknown unit {p.unit!r}",
                f"cán bộ {p.id!r} thuộc đơn vị không có trong danh bạ: {p.unit!r}",
            )
        for un in p.unions:
            if un not in union_ids:
                add(
                    f"people[{i}].unions",
                    f"person {p.id!r} is in unknown union {un!r}",
                    f"cán bộ {p.id!r} thuộc đoàn thể không có trong danh bạ: {un!r}",
                )
        for other in rows_by_id.get(p.id, []):
            if _overlap(p.effective_from, p.effective_to, other.effective_from, other.effective_to):
                add(
                    f"people[{i}].id",
                    f"duplicate person id {p.id!r} (rows of one person must not overlap in time; a move is a new "
                    "row from a date)",
                    f"cán bộ {p.id!r} có hai dòng trùng thời gian hiệu lực ({_period_vi(p)}): mỗi lần chuyển "
                    "đơn vị là một dòng mới từ một ngày",
                )
        rows_by_id.setdefault(p.id, []).append(p)
    for i, union in enumerate(d.unions):
        if union.secretary is not None:
            secretary_rows = rows_by_id.get(union.secretary)
            if not secretary_rows:
                add(
                    f"unions[{i}].secretary",
                    f"unknown person {union.secretary!r}",
                    f"không có cán bộ {union.secretary!r} trong danh bạ",
                )
            elif not any(union.id in r.unions for r in secretary_rows):
                add(
                    f"unions[{i}].secretary",
                    f"person {union.secretary!r} is not a member of {union.id!r}",
                    f"cán bộ {union.secretary!r} không phải đoàn viên của {union.id!r}",
                )
    return problems


# ---------------------------------------------------------------------------------------------- edition


class UnitSelector(_Doc):
    """Units matching any of the listed kinds, codes or ids."""

    kinds: list[UnitKind] | None = None
    codes: list[Code] | None = None
    ids: list[Id] | None = None

    @model_validator(mode="after")
    def _not_empty(self) -> Self:
        if not (self.kinds or self.codes or self.ids):
            raise ValueError("a unit selector needs at least one of kinds, codes or ids")
        return self

    def matches(self, unit: Unit) -> bool:
        return bool(
            (self.kinds and unit.kind in self.kinds)
            or (self.codes and unit.code in self.codes)
            or (self.ids and unit.id in self.ids)
        )


class PeopleSelector(_Doc):
    """People of the selected units (or all), having any of ``roles`` (if given), restricted to ``ids`` (if given)."""

    of_units: Literal["all"] | UnitSelector = "all"
    roles: list[Role] | None = None
    ids: list[Id] | None = None


class Assignees(_Doc):
    """Who a part is assigned to: units, people (one assignment each), or a council."""

    units: UnitSelector | None = None
    people: PeopleSelector | None = None
    council: Id | None = None
    mobilised_by: list[Role] = Field(
        default_factory=list, description="roles that receive 'not yet submitted' lists for their people"
    )

    @model_validator(mode="after")
    def _someone(self) -> Self:
        if self.units is None and self.people is None and self.council is None:
            raise ValueError("a part must be assigned to someone: give units, people or council")
        return self


class Attachments(_Doc):
    max_bytes: int = Field(gt=0, description="per file")
    types: list[str] = Field(min_length=1, description="allowed file types by extension, e.g. pdf, docx")
    max_files: int = Field(default=10, gt=0, description="files per submission")
    max_total_bytes: int | None = Field(
        default=None, gt=0, description="all files of a submission together; default max(50 MiB, max_bytes)"
    )

    @property
    def total_limit(self) -> int:
        return self.max_total_bytes or max(52_428_800, self.max_bytes)


class MobilisationLists(_Doc):
    """Daily 'not yet submitted' lists, from ``from_`` before the deadline, at ``at`` local time."""

    from_: IsoDuration = Field(alias="from")
    at: str = Field(default="08:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")


class Council(_Doc):
    name: str | None = Field(
        default=None,
        description="the council's Vietnamese name as messages show it, e.g. Hội đồng xét chọn sáng kiến",
    )
    chair: Id | None = None
    members: list[Id] = Field(min_length=1)

    @model_validator(mode="after")
    def _chair_is_member(self) -> Self:
        if dup := _duplicates(self.members):
            raise ValueError(f"members: listed twice: {dup}")
        if self.chair is not None and self.chair not in self.members:
            raise ValueError(f"chair {self.chair!r} must also be listed in members")
        return self


class RubricLevel(_Doc):
    min: int = Field(ge=0)
    max: int = Field(ge=0)
    label: str

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.max < self.min:
            raise ValueError(f"level {self.label!r}: max {self.max} is below min {self.min}")
        return self


class Criterion(_Doc):
    id: Id
    title: str
    max: int = Field(gt=0)
    levels: list[RubricLevel] = Field(default_factory=list, description="guidance; scores stay 0..max")

    @model_validator(mode="after")
    def _levels_within(self) -> Self:
        for lv in self.levels:
            if lv.max > self.max:
                raise ValueError(f"criterion {self.id!r}: level {lv.label!r} goes above max {self.max}")
        spans = sorted((lv.min, lv.max) for lv in self.levels)
        for (_, hi), (lo, _) in itertools.pairwise(spans):
            if lo <= hi:
                raise ValueError(f"criterion {self.id!r}: levels overlap")
        return self


class Disagreement(_Doc):
    measure: Literal["population_stdev", "sample_stdev", "range"] = "population_stdev"
    above: float = Field(ge=0)


class Rubric(_Doc):
    aggregate: Literal["mean", "median"] = "mean"
    disagreement: Disagreement | None = None
    comment_required_below: float | None = Field(default=None, ge=0)
    ties: list[Literal["higher_median", "higher_mean", "earlier_receipt"]] = Field(default_factory=list)
    criteria: list[Criterion] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> Self:
        if dup := _duplicates([c.id for c in self.criteria]):
            raise ValueError(f"criteria: duplicate criterion ids {dup}")
        return self

    @property
    def max_total(self) -> int:
        return sum(c.max for c in self.criteria)


class CampaignTargets(_Doc):
    full_process_share_of_eligible: float | None = Field(default=None, ge=0, le=1)
    online_dossier_share: float | None = Field(default=None, ge=0, le=1)
    on_time_share: float | None = Field(default=None, ge=0, le=1)


class _PartBase(_Doc):
    id: Id
    kind: str  # narrowed to a Literal by each part kind (the discriminator)
    title: str | None = Field(default=None, description="Vietnamese title shown to users")
    assignees: Assignees
    per_assignee: int = Field(default=1, ge=1)
    grace: IsoDuration = "PT0S"
    reminders: list[IsoDuration] = Field(
        default_factory=list, description="sent this long before the deadline"
    )
    attachments: Attachments | None = None

    def deadline_instant(self, tz: str | ZoneInfo = DEFAULT_TIMEZONE) -> datetime:
        """The exclusive end of the part, aware: a bare date D -> D+1 00:00 in ``tz``."""
        return deadline_instant(self.deadline, tz)  # type: ignore[attr-defined]

    def intake_closes_at(self, tz: str | ZoneInfo = DEFAULT_TIMEZONE) -> datetime:
        return self.deadline_instant(tz) + parse_duration(self.grace)

    @property
    def grace_delta(self) -> timedelta:
        return parse_duration(self.grace)

    @property
    def reminder_deltas(self) -> list[timedelta]:
        return [parse_duration(r) for r in self.reminders]


class InitiativePart(_PartBase):
    """Phần thi sáng kiến: each assigned unit submits ``per_assignee`` initiative(s)."""

    kind: Literal["initiative"] = "initiative"
    deadline: Deadline


class ExperienceReportPart(_PartBase):
    """Trải nghiệm dịch vụ công trực tuyến: each assigned person reports on distinct procedures."""

    kind: Literal["experience_report"] = "experience_report"
    deadline: Deadline
    min_distinct_procedures: int = Field(default=1, ge=1)
    mobilisation_lists: MobilisationLists | None = None


class SelectionPart(_PartBase):
    """The council scores the initiatives of part ``of`` and selects at least ``minimum_selected``."""

    kind: Literal["selection"] = "selection"
    of: Id = Field(description="id of the initiative part whose entries are scored")
    deadline: Deadline
    minimum_selected: int = Field(default=1, ge=1)
    rubric: Rubric
    destination: str | None = Field(
        default=None,
        description="where the selected initiatives are sent on, as it reads after 'gửi dự thi' "
        "(e.g. 'cấp tỉnh'); messages name no level when it is not set",
    )


class OnlineServicesCampaignPart(_PartBase):
    """Chiến dịch 90 ngày: assigned units reach targets within ``duration`` from ``starts``."""

    kind: Literal["online_services_campaign"] = "online_services_campaign"
    starts: Deadline = Field(description="a bare date is that day's 00:00 in the edition tz")
    duration: IsoDuration
    report_every: IsoDuration | None = None
    targets: CampaignTargets = Field(default_factory=CampaignTargets)
    deadline: Deadline | None = Field(default=None, description="defaults to starts + duration")

    def starts_at(self, tz: str | ZoneInfo = DEFAULT_TIMEZONE) -> datetime:
        return _start_instant(self.starts, tz)

    def deadline_instant(self, tz: str | ZoneInfo = DEFAULT_TIMEZONE) -> datetime:
        if self.deadline is not None:
            return deadline_instant(self.deadline, tz)
        return self.starts_at(tz) + parse_duration(self.duration)


Part = Annotated[
    InitiativePart | ExperienceReportPart | SelectionPart | OnlineServicesCampaignPart,
    Field(discriminator="kind"),
]


class Deduct(_Doc):
    deduct: int = Field(gt=0)


class Rewards(_Doc):
    rules_version: int = Field(default=1, ge=1)
    points: dict[str, int] = Field(
        default_factory=dict, description="fact kind (event type[/part]) -> points"
    )
    deadline_missed: Literal["flag"] | Deduct = "flag"
    caps: dict[str, int] = Field(default_factory=dict)
    eligibility: dict[str, list[str]] = Field(default_factory=dict)
    tie_breakers: list[str] = Field(default_factory=list)
    author_shares: bool = Field(
        default=False, description="split an initiative's points by the authors' contribution percentages"
    )


class Edition(_Doc):
    """What one edition of a tenant's contest asks: parts, assignees, deadlines, rubric, reward rules."""

    model_config = ConfigDict(title="Kỳ Hội thi (edition)")

    tenant: Id
    edition: Annotated[str, BeforeValidator(_edition_name_before), Field(min_length=1, max_length=32)]
    version: int = Field(default=1, ge=1)
    title: str = Field(min_length=1)
    timezone: str = DEFAULT_TIMEZONE
    legal_basis: list[str] = Field(default_factory=list)
    opens: date
    closes: date
    councils: dict[Id, Council] = Field(default_factory=dict)
    parts: list[Part] = Field(min_length=1)
    rewards: Rewards | None = None

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown timezone {v!r} (use an IANA name such as Asia/Ho_Chi_Minh)") from None
        return v

    @field_validator("closes")
    @classmethod
    def _closes_after_opens(cls, v: date, info: ValidationInfo) -> date:
        opens = info.data.get("opens")
        if opens is not None and v < opens:
            raise ValueError(f"the edition closes ({v}) before it opens ({opens})")
        return v

    @field_validator("parts")
    @classmethod
    def _parts_consistent(cls, parts: list[Any], info: ValidationInfo) -> list[Any]:
        problems: list[str] = []
        if dup := _duplicates([p.id for p in parts]):
            problems.append(f"duplicate part ids {dup}")
        by_id = {p.id: p for p in parts}
        tz: str | None = info.data.get("timezone")
        opens, closes = info.data.get("opens"), info.data.get("closes")
        councils = info.data.get("councils")
        for i, p in enumerate(parts):
            end = p.deadline_instant(tz) if tz else None
            if end is not None and tz and opens is not None and end <= _start_instant(opens, tz):
                problems.append(
                    f"parts[{i}].deadline: part {p.id!r} ends {end.isoformat()}, not after the edition opens "
                    f"({opens})"
                )
            if end is not None and tz and closes is not None and end > deadline_instant(closes, tz):
                problems.append(
                    f"parts[{i}].deadline: part {p.id!r} ends {end.isoformat()}, after the edition closes "
                    f"({closes})"
                )
            if (
                councils is not None
                and p.assignees.council is not None
                and p.assignees.council not in councils
            ):
                problems.append(
                    f"parts[{i}].assignees.council: part {p.id!r} refers to unknown council "
                    f"{p.assignees.council!r} (known: {sorted(councils)})"
                )
            if isinstance(p, SelectionPart) and not isinstance(by_id.get(p.of), InitiativePart):
                problems.append(
                    f"parts[{i}].of: selection {p.id!r} must refer to an initiative part, not {p.of!r}"
                )
        if problems:
            raise ValueError("; ".join(problems))
        return parts

    # -- time

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def opens_at(self) -> datetime:
        return _start_instant(self.opens, self.tz)

    @property
    def closes_at(self) -> datetime:
        """Exclusive end of the edition: the day after ``closes`` at 00:00."""
        return deadline_instant(self.closes, self.tz)

    def part(
        self, part_id: str
    ) -> InitiativePart | ExperienceReportPart | SelectionPart | OnlineServicesCampaignPart:
        for p in self.parts:
            if p.id == part_id:
                return p
        raise KeyError(f"unknown part {part_id!r} in edition {self.edition!r}")

    def deadline_of(self, part_id: str) -> datetime:
        """Aware exclusive deadline of a part; a receipt is on time iff received_at < deadline_of(part)."""
        return self.part(part_id).deadline_instant(self.tz)

    def intake_closes_at(self, part_id: str) -> datetime:
        """Deadline + grace: the last (exclusive) instant a submission is still accepted."""
        return self.part(part_id).intake_closes_at(self.tz)

    def is_on_time(self, part_id: str, received_at: datetime) -> bool:
        if received_at.tzinfo is None or received_at.utcoffset() is None:
            raise ValueError("received_at must be timezone-aware")
        return received_at < self.deadline_of(part_id)


# ---------------------------------------------------------------------------------------------- cross-checks


def check_edition_against_directory(
    edition: Edition, directory: Directory, as_of: date | None = None
) -> list[str]:
    """Problems between an edition and the directory it refers to (empty list = consistent)."""
    d = as_of or edition.opens
    problems: list[str] = []
    if edition.tenant != directory.tenant:
        problems.append(f"tenant: edition is for {edition.tenant!r}, directory for {directory.tenant!r}")
    people = {p.id for p in directory.people_as_of(d)}
    for cid, c in edition.councils.items():
        for m in c.members:
            if m not in people:
                problems.append(f"councils.{cid}.members: unknown person {m!r} as of {d}")
    codes = {u.code for u in directory.units_as_of(d)}
    unit_ids = {u.id for u in directory.units_as_of(d)}
    for p in edition.parts:
        selectors = [p.assignees.units]
        if p.assignees.people and p.assignees.people.of_units != "all":
            selectors.append(p.assignees.people.of_units)
        for s in filter(None, selectors):
            for code in s.codes or []:
                if code not in codes:
                    problems.append(f"parts.{p.id}.assignees: unknown unit code {code!r} as of {d}")
            for uid in s.ids or []:
                if uid not in unit_ids:
                    problems.append(f"parts.{p.id}.assignees: unknown unit id {uid!r} as of {d}")
            if not directory.select_units(s, d):
                problems.append(f"parts.{p.id}.assignees: the unit selector matches no unit as of {d}")
        if p.assignees.people and not directory.select_people(p.assignees.people, d):
            problems.append(f"parts.{p.id}.assignees.people: the selector matches nobody as of {d}")
    return problems


# ---------------------------------------------------------------------------------------------- procedure codes

_PROCEDURE_RE = re.compile(r"^(\d\.\d{6})(?:\.\d{3}\.\d{2}\.\d{2}\.[A-Z]\d{2})?$")


def national_procedure_code(code: str) -> str:
    """The national part ``d.dddddd`` of a procedure code given as ``1.004227`` or ``1.011442.000.00.00.H38``."""
    if not isinstance(code, str):
        raise TypeError(f"a procedure code must be a string, not {type(code).__name__}")
    m = _PROCEDURE_RE.match(code.strip().upper())
    if m is None:
        raise ValueError(
            f"{code!r} is not an administrative procedure code: expected the national form d.dddddd "
            "(e.g. 1.004227) or the provincial long form d.dddddd.ddd.dd.dd.Xdd (e.g. 1.011442.000.00.00.H38)"
        )
    return m.group(1)


# ---------------------------------------------------------------------------------------------- formatting


def format_date_vn(d: date | datetime) -> str:
    """dd/mm/yyyy; an aware datetime is first converted to Vietnam time."""
    if isinstance(d, datetime):
        if d.tzinfo is None or d.utcoffset() is None:
            raise ValueError("format_date_vn needs an aware datetime (or a plain date)")
        d = d.astimezone(VN_TZ).date()
    return d.strftime("%d/%m/%Y")


def format_datetime_vn(dt: datetime) -> str:
    """'25/10/2023 23:59:59 (+07:00)': the instant shown in Vietnam time."""
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError("format_datetime_vn needs an aware datetime")
    local = dt.astimezone(VN_TZ)
    off = local.strftime("%z")
    return f"{local.strftime('%d/%m/%Y %H:%M:%S')} ({off[:3]}:{off[3:]})"


def deadline_label_vi(deadline: datetime) -> str:
    """How a deadline reads to a user, everywhere: 'hết ngày 25/10/2023 (+07:00)' for an end-of-day deadline
    (the exclusive end 26/10/2023 00:00:00), otherwise 'trước 26/10/2023 17:00:00 (+07:00)'."""
    if deadline.tzinfo is None or deadline.utcoffset() is None:
        raise ValueError("deadline_label_vi needs an aware datetime")
    local = deadline.astimezone(VN_TZ)
    if local.time() == time(0):
        return f"hết ngày {format_date_vn(local.date() - timedelta(days=1))} (+07:00)"
    return f"trước {format_datetime_vn(deadline)}"


def deadline_label_en(deadline: datetime) -> str:
    """The English twin of ``deadline_label_vi``."""
    local = deadline.astimezone(VN_TZ)
    if local.time() == time(0):
        return f"the end of {format_date_vn(local.date() - timedelta(days=1))} (+07:00)"
    return f"before {format_datetime_vn(deadline)}"


def last_day_vn(deadline: datetime) -> str:
    """The last day that counts, dd/mm/yyyy: an exclusive end at 00:00 is the day before (hạn chót)."""
    local = deadline.astimezone(VN_TZ)
    if local.time() == time(0):
        return format_date_vn(local.date() - timedelta(days=1))
    return format_date_vn(local.date())


def time_left_vi(deadline: datetime, now: datetime) -> str:
    """The time really left before ``deadline`` at ``now``: 'còn 5 ngày 15 giờ', 'còn 3 giờ 20 phút',
    'còn 12 phút', 'còn dưới 1 phút', or 'đã hết hạn'."""
    left = deadline - now
    if left <= timedelta(0):
        return "đã hết hạn"
    minutes = int(left.total_seconds() // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        return f"còn {days} ngày {hours} giờ" if hours else f"còn {days} ngày"
    if hours:
        return f"còn {hours} giờ {mins} phút" if mins else f"còn {hours} giờ"
    return f"còn {mins} phút" if mins else "còn dưới 1 phút"


def time_left_en(deadline: datetime, now: datetime) -> str:
    """The English twin of ``time_left_vi``: '5 day(s) 15 hour(s) left'."""
    left = deadline - now
    if left <= timedelta(0):
        return "the deadline has passed"
    minutes = int(left.total_seconds() // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{days} day(s) {hours} hour(s) left" if hours else f"{days} day(s) left"
    if hours:
        return f"{hours} hour(s) {mins} minute(s) left" if mins else f"{hours} hour(s) left"
    return f"{mins} minute(s) left" if mins else "less than a minute left"


# ---------------------------------------------------------------------------------------------- loading / dumping


class _Loader(yaml.SafeLoader):
    """SafeLoader without implicit timestamps: dates stay strings and the models parse them (keeping tz)."""


class _Dumper(yaml.SafeDumper):
    pass


for _cls in (_Loader, _Dumper):
    _cls.yaml_implicit_resolvers = {
        k: [(tag, rx) for tag, rx in v if tag != "tag:yaml.org,2002:timestamp"]
        for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }

M = TypeVar("M", bound=BaseModel)


def load_document_data(path: str | Path) -> Any:
    """Read a YAML (.yaml/.yml, default) or JSON (.json) file into plain data."""
    p = Path(path)
    text = p.read_text(encoding="utf-8")
    if p.suffix.lower() == ".json":
        return json.loads(text)
    return yaml.load(text, Loader=_Loader)  # a SafeLoader subclass


def load_directory(path: str | Path) -> Directory:
    return Directory.model_validate(load_document_data(path))


def load_edition(path: str | Path) -> Edition:
    return Edition.model_validate(load_document_data(path))


def dump_yaml(model: BaseModel) -> str:
    """YAML of a document that loads back into an equal model (durations and dates kept as written)."""
    data = model.model_dump(mode="json", by_alias=True, exclude_none=True)
    return yaml.dump(data, Dumper=_Dumper, allow_unicode=True, sort_keys=False, width=110)


# ---------------------------------------------------------------------------------------------- JSON Schema


def document_schemas() -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for name, model in (("directory", Directory), ("edition", Edition)):
        schema = model.model_json_schema(by_alias=True, mode="validation")
        out[f"{name}.schema.json"] = {"$schema": JSON_SCHEMA_DIALECT, **schema}
    return out


def write_document_schemas(directory: str | Path = SCHEMA_DIR) -> list[Path]:
    """Write directory.schema.json and edition.schema.json into ``directory``; returns the paths written."""
    target = Path(directory)
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for filename, schema in document_schemas().items():
        path = target / filename
        path.write_text(json.dumps(schema, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        written.append(path)
    return written


if __name__ == "__main__":  # python -m shared.documents [DIR]
    for written_path in write_document_schemas(sys.argv[1] if len(sys.argv) > 1 else SCHEMA_DIR):
        print(written_path)
