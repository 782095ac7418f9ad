"""The directory (who exists): units, unions and people of one tenant, effective-dated, with the check of
its consistency (overlapping rows of one unit, dangling ``successor_of`` links) and the units linked by
mergers, splits and renames. Pure Pydantic v2 models."""

from __future__ import annotations

import itertools
import re
from collections import Counter
from collections.abc import Iterable
from datetime import date
from enum import StrEnum
from typing import Annotated, Any, Literal, Self, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    model_validator,
)

from shared.dates import _effective, _overlap, format_date_vn

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


_EMAIL_RE = re.compile(r"^[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}$")


def _check_email(value: str) -> str:
    value = value.strip()
    if not _EMAIL_RE.match(value):
        raise ValueError(f"{value!r} is not a valid e-mail address (expected name@domain.tld)")
    return value


Email = Annotated[str, AfterValidator(_check_email), Field(json_schema_extra={"format": "email"})]

ID_PATTERN = r"^[a-z0-9][a-z0-9_.\-]*$"
Id = Annotated[str, Field(pattern=ID_PATTERN, min_length=1, max_length=64)]
Code = Annotated[str, Field(pattern=r"^[A-Z0-9][A-Z0-9_\-]*$", min_length=1, max_length=32)]


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


_Dated = TypeVar("_Dated", bound=_EffectiveDated)


def _dated_row(rows: list[_Dated], as_of: date | None, what: str) -> _Dated:
    """Of one id's dated ``rows``, the one effective on ``as_of``; without a date, the latest. ``what`` names the
    id in the KeyError when there is none."""
    if as_of is not None:
        rows = [r for r in rows if r.effective_on(as_of)]
    if not rows:
        raise KeyError(f"unknown {what}" + (f" as of {as_of}" if as_of else ""))
    return max(rows, key=lambda r: (r.effective_to or date.max, r.effective_from or date.min))


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


# What only campaign's directory keeps (never an event, never a consumer's copy): see shared/privacy.py.
PERSON_SENSITIVE_FIELDS: tuple[str, ...] = ("date_of_birth", "qualification")


_Row = TypeVar("_Row", "Unit", "Person")


class Directory(_Doc):
    """Who exists: the units, the unions and the people of one tenant, effective-dated."""

    model_config = ConfigDict(title="Danh bạ đơn vị và cán bộ (directory)")

    tenant: Id
    units: list[Unit] = Field(default_factory=list)
    unions: list[Union] = Field(default_factory=list)
    people: list[Person] = Field(default_factory=list)
    # Rows by id, per list (held with the list it indexes: a copy with other rows, or a list grown since, is
    # indexed anew), so a look-up costs one id's rows, not a scan of the directory.
    _indexes: list[tuple[list[Any], int, dict[str, list[Any]]]] = PrivateAttr(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if problems := directory_problems(self):
            raise DirectoryInconsistent(problems)
        return self

    def __eq__(self, other: object) -> bool:
        """Equal rows are equal directories: the look-up index is a cache, not part of the value."""
        if not isinstance(other, Directory):
            return NotImplemented
        return self.__dict__ == other.__dict__

    __hash__ = None  # type: ignore[assignment]  # as any BaseModel: mutable, compared by value

    # -- look-ups

    def _rows_of(self, rows: list[_Row], row_id: str) -> list[_Row]:
        for held, n, found in self._indexes:
            if held is rows and n == len(rows):
                return found.get(row_id, [])
        index: dict[str, list[_Row]] = {}
        for r in rows:
            index.setdefault(r.id, []).append(r)
        self._indexes = [e for e in self._indexes if e[0] is not rows] + [(rows, len(rows), index)]
        return index.get(row_id, [])

    def unit(self, unit_id: str, as_of: date | None = None) -> Unit:
        """The row of a unit effective on ``as_of``; without a date, the latest row (a unit may have several
        dated rows: a rename, a merger into it, a change of parent)."""
        return _dated_row(self._rows_of(self.units, unit_id), as_of, f"unit {unit_id!r}")

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
        return _dated_row(self._rows_of(self.people, person_id), as_of, f"person {person_id!r}")

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


# ---------------------------------------------------------------------------------------------- selectors


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
