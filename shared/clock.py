"""The one clock every service reads "now" from.

Real time, or a simulated instant anchored to a real one and advancing at a set rate: the demo and the tests
run the 2023 edition as if it were October 2023. All instants are aware datetimes in UTC; convert to
Asia/Ho_Chi_Minh only to show or to read a business date.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

VN = ZoneInfo("Asia/Ho_Chi_Minh")


def _aware(dt: datetime) -> datetime:
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


class Clock:
    """``now()`` for every service.

    With ``clock_file`` set (``HOITHI_CLOCK_FILE``; ``hoithi up`` and the test harness set it), the simulated
    anchor is read from that JSON file (``{"simulated_at", "real_at", "rate"}``) whenever the file changes, so
    one ``hoithi clock set …`` moves every process of a deployment at once.
    """

    def __init__(
        self,
        simulated_at: datetime | None = None,
        real_at: datetime | None = None,
        rate: float = 1.0,
        clock_file: Path | None = None,
    ) -> None:
        self.simulated_at = _aware(simulated_at) if simulated_at else None
        self.real_at = _aware(real_at) if real_at else datetime.now(UTC)
        self.rate = rate
        self.clock_file = clock_file
        self._file_mtime: int | None = None
        self._reload()

    def _reload(self) -> None:
        if self.clock_file is None:
            return
        try:
            mtime = self.clock_file.stat().st_mtime_ns
        except FileNotFoundError:
            return
        if mtime == self._file_mtime:
            return
        try:
            anchor = json.loads(self.clock_file.read_text())
        except ValueError:
            return  # being rewritten: keep the previous anchor, read it next time
        self._file_mtime = mtime
        self.simulated_at = (
            _aware(datetime.fromisoformat(anchor["simulated_at"])) if anchor.get("simulated_at") else None
        )
        self.real_at = (
            _aware(datetime.fromisoformat(anchor["real_at"])) if anchor.get("real_at") else datetime.now(UTC)
        )
        self.rate = float(anchor.get("rate", 1.0))

    @property
    def simulated(self) -> bool:
        return self.simulated_at is not None

    def now(self) -> datetime:
        self._reload()
        real = datetime.now(UTC)
        if self.simulated_at is None:
            return real
        return (self.simulated_at + (real - self.real_at) * self.rate).astimezone(UTC)

    def set(self, simulated_at: datetime, rate: float | None = None) -> None:
        """Jump the simulated clock (demo and tests only); with a clock file, every process follows."""
        self.simulated_at = _aware(simulated_at)
        self.real_at = datetime.now(UTC)
        if rate is not None:
            self.rate = rate
        if self.clock_file is not None:
            write_clock_file(self.clock_file, self.simulated_at, self.real_at, self.rate)
            self._file_mtime = self.clock_file.stat().st_mtime_ns

    def advance(self, delta: timedelta) -> None:
        self.set(self.now() + delta)

    @classmethod
    def from_settings(cls, settings: object) -> Clock:
        """The deployment's clock: its anchor file (``HOITHI_CLOCK_FILE``, else ``<HOITHI_DATA_DIR>/clock.json``
        when the deployment has one), else a fixed simulated anchor, else the real clock. Every service and
        every command that writes builds its clock here, so all agree whatever directory they run from."""
        clock_file = getattr(settings, "deployment_clock_file", getattr(settings, "clock_file", None))
        return cls(
            getattr(settings, "clock_simulated_at", None),
            getattr(settings, "clock_real_at", None),
            getattr(settings, "clock_rate", 1.0),
            clock_file,
        )

    def describe(self) -> str:
        """Where "now" comes from, for an operator (Vietnamese)."""
        if self.clock_file is not None and self.simulated:
            return f"đồng hồ mô phỏng theo {self.clock_file}"
        if self.simulated:
            return "đồng hồ mô phỏng (HOITHI_CLOCK_SIMULATED_AT)"
        return "đồng hồ thật của máy"


def write_clock_file(
    path: Path, simulated_at: datetime, real_at: datetime | None = None, rate: float = 1.0
) -> None:
    """Atomically write a simulated-clock anchor that every process with ``HOITHI_CLOCK_FILE`` follows."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(
        json.dumps(
            {
                "simulated_at": _aware(simulated_at).isoformat(),
                "real_at": (real_at or datetime.now(UTC)).isoformat(),
                "rate": rate,
            }
        )
    )
    os.replace(tmp, path)


def vn_now(clock: Clock) -> datetime:
    return clock.now().astimezone(VN)
