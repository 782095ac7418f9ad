"""The one clock every service reads "now" from.

Real time, or a simulated instant anchored to a real one and advancing at a set rate: the demo and the tests
run the 2023 edition as if it were October 2023. All instants are aware datetimes in UTC; convert to
Asia/Ho_Chi_Minh only to show or to read a business date.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

VN = ZoneInfo("Asia/Ho_Chi_Minh")


def _aware(dt: datetime) -> datetime:
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


class Clock:
    def __init__(
        self, simulated_at: datetime | None = None, real_at: datetime | None = None, rate: float = 1.0
    ) -> None:
        self.simulated_at = _aware(simulated_at) if simulated_at else None
        self.real_at = _aware(real_at) if real_at else datetime.now(UTC)
        self.rate = rate

    @property
    def simulated(self) -> bool:
        return self.simulated_at is not None

    def now(self) -> datetime:
        real = datetime.now(UTC)
        if self.simulated_at is None:
            return real
        return (self.simulated_at + (real - self.real_at) * self.rate).astimezone(UTC)

    def set(self, simulated_at: datetime, rate: float | None = None) -> None:
        """Jump the simulated clock (tests and the demo's operator endpoint only)."""
        self.simulated_at = _aware(simulated_at)
        self.real_at = datetime.now(UTC)
        if rate is not None:
            self.rate = rate

    def advance(self, delta: timedelta) -> None:
        self.set(self.now() + delta)

    @classmethod
    def from_settings(cls, settings: object) -> Clock:
        return cls(
            getattr(settings, "clock_simulated_at", None),
            getattr(settings, "clock_real_at", None),
            getattr(settings, "clock_rate", 1.0),
        )


def vn_now(clock: Clock) -> datetime:
    return clock.now().astimezone(VN)
