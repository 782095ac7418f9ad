"""Bounded inputs, free of any web framework (domain models use them too): a date, instant or version number
outside what the system can compute with is a 422 at the edge, never an overflow (a 500) deep inside."""

from __future__ import annotations

import re
from datetime import date, datetime, time
from typing import Annotated, Any

from annotated_types import Ge, Le
from pydantic import AfterValidator, AwareDatetime, BeforeValidator, WithJsonSchema

from shared.clock import VN
from shared.errors import bilingual_error

EARLIEST = date(1900, 1, 1)
LATEST = date(2199, 12, 31)


def in_range_date(d: date) -> date:
    if not EARLIEST <= d <= LATEST:
        raise bilingual_error(
            "date_out_of_range",
            "The date must be between 01/01/1900 and 31/12/2199.",
            "Ngày phải trong khoảng từ 01/01/1900 đến 31/12/2199.",
        )
    return d


def in_range_instant(at: datetime) -> datetime:
    """``at`` made aware (no offset = Vietnam time), its date inside ``in_range_date``'s years."""
    aware = at if at.tzinfo is not None and at.utcoffset() is not None else at.replace(tzinfo=VN)
    in_range_date(aware.date())  # in its own offset: converting year 1 or 9999 first would overflow
    return aware


# The same bounds as regular expressions, so the OpenAPI documents say exactly what the server takes (a
# client or fuzzer drawing from the schema is never refused) and the server takes nothing else: Pydantic alone
# would also read "0.5" or "1700000000" as a Unix time and "2023-10-20 09:00" with a space.
_YEAR = r"(19[0-9]{2}|2[01][0-9]{2})"
_MONTH_DAY = (
    r"((0[13578]|1[02])-(0[1-9]|[12][0-9]|3[01])|(0[469]|11)-(0[1-9]|[12][0-9]|30)|02-(0[1-9]|1[0-9]|2[0-8]))"
)
# 29 February of the leap years: every fourth year except 1900 and 2100 (not divisible by 400), and 2000.
_LEAP_DAY = r"((19|20|21)(0[48]|[2468][048]|[13579][26])|2000)-02-29"
_DAY = rf"({_YEAR}-{_MONTH_DAY}|{_LEAP_DAY})"
_TIME = r"T([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,6})?)?"
_OFFSET = r"(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])"
DATE_PATTERN = rf"^{_DAY}$"
"""YYYY-MM-DD, a real day of 1900–2199."""
INSTANT_PATTERN = rf"^{_DAY}{_TIME}{_OFFSET}?$"
"""YYYY-MM-DDTHH:MM[:SS[.ffffff]][Z|±HH:MM] on such a day (no offset = Vietnam time)."""
AWARE_INSTANT_PATTERN = rf"^{_DAY}{_TIME}{_OFFSET}$"


def _matching(pattern: str, example: str, en: str, vi: str) -> BeforeValidator:
    """A string must match ``pattern``; a value of the right Python type (from code, not JSON) passes on."""
    compiled = re.compile(pattern)

    def check(value: Any) -> Any:
        if isinstance(value, str) and compiled.fullmatch(value):
            return value
        if isinstance(value, (date, datetime)):
            return value
        raise bilingual_error("date_format", f"{en} (e.g. {example}).", f"{vi} (ví dụ {example}).")

    return BeforeValidator(check)


def _schema(fmt: str | None, pattern: str, example: str) -> WithJsonSchema:
    schema = {"type": "string", "pattern": pattern, "examples": [example]}
    return WithJsonSchema(schema | ({"format": fmt} if fmt else {}))


BusinessDate = Annotated[
    date,
    _matching(
        DATE_PATTERN,
        "2023-10-20",
        "Must be a date YYYY-MM-DD between 01/01/1900 and 31/12/2199",
        "Phải là ngày dạng YYYY-MM-DD từ 01/01/1900 đến 31/12/2199",
    ),
    AfterValidator(in_range_date),
    _schema("date", DATE_PATTERN, "2023-10-20"),
]
"""A calendar date a person means, 01/01/1900 – 31/12/2199."""

Instant = Annotated[
    datetime,
    _matching(
        INSTANT_PATTERN,
        "2023-10-20T09:00:00+07:00",
        "Must be an instant YYYY-MM-DDTHH:MM[:SS][±HH:MM] between 01/01/1900 and 31/12/2199",
        "Phải là thời điểm dạng YYYY-MM-DDTHH:MM[:SS][±HH:MM] từ 01/01/1900 đến 31/12/2199",
    ),
    AfterValidator(in_range_instant),
    # no "format": RFC 3339's date-time requires the seconds and the offset, which may be left out here
    _schema(None, INSTANT_PATTERN, "2023-10-20T09:00:00+07:00"),
]
"""An aware instant (no offset = Vietnam time) inside the same years as ``BusinessDate``."""

AwareInstant = Annotated[
    AwareDatetime,
    _matching(
        AWARE_INSTANT_PATTERN,
        "2023-10-20T09:00:00+07:00",
        "Must be an instant with its offset, YYYY-MM-DDTHH:MM[:SS]±HH:MM, between 01/01/1900 and 31/12/2199",
        "Phải là thời điểm có múi giờ, dạng YYYY-MM-DDTHH:MM[:SS]±HH:MM, từ 01/01/1900 đến 31/12/2199",
    ),
    AfterValidator(in_range_instant),
    _schema(None, AWARE_INSTANT_PATTERN, "2023-10-20T09:00:00+07:00"),
]
"""An instant that must carry its offset, inside the same years."""

Version = Annotated[int, Ge(1), Le(2_147_483_647)]
# A rebuild generation: the first is 0 (PostgreSQL ``integer`` above).
Generation = Annotated[int, Ge(0), Le(2_147_483_647)]
"""A version or generation number: positive and inside PostgreSQL's ``integer``."""


def end_of_day(d: date) -> datetime:
    """The last instant of ``d`` in Vietnam time."""
    return datetime.combine(d, time(23, 59, 59, 999999), VN)


PROCEDURE_CODE_PATTERN = r"^[0-9]\.[0-9]{6}(\.[0-9]{3}\.[0-9]{2}\.[0-9]{2}\.[A-Za-z][0-9]{2})?$"
"""An administrative procedure code as OpenAPI documents it: national ``1.004227`` or provincial
``1.011442.000.00.00.H38`` (``shared.edition.national_procedure_code`` is the check)."""
