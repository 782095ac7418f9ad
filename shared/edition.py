"""The edition (what one contest asks): parts, assignees, councils and rubrics, deadlines, reward rules;
its cross-check against the directory, and the procedure-code rule. Pure Pydantic v2 models."""

from __future__ import annotations

import itertools
import re
from datetime import date, datetime, timedelta
from typing import Annotated, Any, Literal, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from shared.dates import (
    DEFAULT_TIMEZONE,
    Deadline,
    IsoDuration,
    _start_instant,
    deadline_instant,
    parse_duration,
)
from shared.directory import Directory, Id, PeopleSelector, Role, UnitSelector, _Doc, _duplicates


def _edition_name_before(value: Any) -> Any:
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


# ---------------------------------------------------------------------------------------------- edition


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
