"""Bounded inputs, free of any web framework (domain models use them too): a date, instant or version number
outside what the system can compute with is a 422 at the edge, never an overflow (a 500) deep inside."""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Annotated

from annotated_types import Ge, Le
from pydantic import AfterValidator

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


BusinessDate = Annotated[date, AfterValidator(in_range_date)]
"""A calendar date a person means, 01/01/1900 – 31/12/2199."""

Instant = Annotated[datetime, AfterValidator(in_range_instant)]
"""An aware instant (no offset = Vietnam time) inside the same years as ``BusinessDate``."""

Version = Annotated[int, Ge(1), Le(2_147_483_647)]
# A rebuild generation: the first is 0 (PostgreSQL ``integer`` above).
Generation = Annotated[int, Ge(0), Le(2_147_483_647)]
"""A version or generation number: positive and inside PostgreSQL's ``integer``."""


def end_of_day(d: date) -> datetime:
    """The last instant of ``d`` in Vietnam time."""
    return datetime.combine(d, time(23, 59, 59, 999999), VN)
