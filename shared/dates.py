"""Dates and durations of the documents: the deadline rule, effective dating, ISO-8601 durations, and how
dates, deadlines and the time left read in Vietnamese (and English).

Time rule (ARCHITECTURE.md "Time"): a bare date D as a deadline means "chậm nhất ngày D": the whole of D counts,
so the deadline instant is the exclusive end D+1 00:00:00 in the edition's timezone; a receipt is on time iff
``received_at < deadline``. A datetime given explicitly is used as is (a naive one is read in the edition tz).

Effective dating: ``effective_from`` and ``effective_to`` are both inclusive calendar days ("có hiệu lực đến hết
ngày ..."); ``None`` means open-ended. A successor row starts the day after its predecessor's ``effective_to``.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
)

DEFAULT_TIMEZONE = "Asia/Ho_Chi_Minh"
VN_TZ = ZoneInfo(DEFAULT_TIMEZONE)


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


def _zone(tz: str | ZoneInfo) -> ZoneInfo:
    return tz if isinstance(tz, ZoneInfo) else ZoneInfo(tz)


def _read_in(value: datetime, zone: ZoneInfo) -> datetime:
    """An aware datetime as is; a naive one read in ``zone``."""
    return value if value.tzinfo is not None and value.utcoffset() is not None else value.replace(tzinfo=zone)


def deadline_instant(value: date | datetime, tz: str | ZoneInfo = DEFAULT_TIMEZONE) -> datetime:
    """The aware instant a deadline ends at (exclusive).

    A bare date D -> D+1 00:00:00 in ``tz`` (the whole of D counts). An aware datetime is returned as is; a naive
    one is read in ``tz``.
    """
    zone = _zone(tz)
    if isinstance(value, datetime):
        return _read_in(value, zone)
    return datetime.combine(value + timedelta(days=1), time(0), tzinfo=zone)


def _start_instant(value: date | datetime, tz: str | ZoneInfo) -> datetime:
    """The aware instant something starts at: a bare date D -> D 00:00:00 in ``tz``."""
    zone = _zone(tz)
    if isinstance(value, datetime):
        return _read_in(value, zone)
    return datetime.combine(value, time(0), tzinfo=zone)


def _effective(row_from: date | None, row_to: date | None, d: date) -> bool:
    return (row_from is None or row_from <= d) and (row_to is None or d <= row_to)


def _overlap(a_from: date | None, a_to: date | None, b_from: date | None, b_to: date | None) -> bool:
    lo_a, hi_a = a_from or date.min, a_to or date.max
    lo_b, hi_b = b_from or date.min, b_to or date.max
    return lo_a <= hi_b and lo_b <= hi_a


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


# How the time left reads: passed; days and hours; whole days; hours and minutes; whole hours; minutes; under one.
_TIME_LEFT_VI = (
    "đã hết hạn",
    "còn {d} ngày {h} giờ",
    "còn {d} ngày",
    "còn {h} giờ {m} phút",
    "còn {h} giờ",
    "còn {m} phút",
    "còn dưới 1 phút",
)
_TIME_LEFT_EN = (
    "the deadline has passed",
    "{d} day(s) {h} hour(s) left",
    "{d} day(s) left",
    "{h} hour(s) {m} minute(s) left",
    "{h} hour(s) left",
    "{m} minute(s) left",
    "less than a minute left",
)


def _time_left(deadline: datetime, now: datetime, words: tuple[str, ...]) -> str:
    """Whole days and hours, else hours and minutes, else minutes left before ``deadline`` at ``now``, in
    ``words`` (see ``_TIME_LEFT_VI``): never "0 days"."""
    left = deadline - now
    if left <= timedelta(0):
        return words[0]
    minutes = int(left.total_seconds() // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        text = words[1] if hours else words[2]
    elif hours:
        text = words[3] if mins else words[4]
    else:
        text = words[5] if mins else words[6]
    return text.format(d=days, h=hours, m=mins)


def time_left_vi(deadline: datetime, now: datetime) -> str:
    """The time really left before ``deadline`` at ``now``: 'còn 5 ngày 15 giờ', 'còn 3 giờ 20 phút',
    'còn 12 phút', 'còn dưới 1 phút', or 'đã hết hạn'."""
    return _time_left(deadline, now, _TIME_LEFT_VI)


def time_left_en(deadline: datetime, now: datetime) -> str:
    """The English twin of ``time_left_vi``: '5 day(s) 15 hour(s) left'."""
    return _time_left(deadline, now, _TIME_LEFT_EN)
