"""The one clock: real, or simulated from an anchor (settings or a shared file) at a rate."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from shared.clock import VN, Clock, write_clock_file

START = datetime(2023, 10, 20, 9, 0, tzinfo=VN)


def test_the_real_clock_is_aware_utc() -> None:
    now = Clock().now()
    assert now.tzinfo is not None and abs(now - datetime.now(UTC)) < timedelta(seconds=5)


def test_a_simulated_clock_advances_from_its_anchor_at_its_rate() -> None:
    real_at = datetime.now(UTC) - timedelta(seconds=10)
    assert abs(Clock(START, real_at).now() - (START + timedelta(seconds=10))) < timedelta(seconds=2)
    assert abs(Clock(START, real_at, rate=60).now() - (START + timedelta(minutes=10))) < timedelta(seconds=90)


def test_every_clock_following_a_file_moves_when_it_changes(tmp_path: Path) -> None:
    f = tmp_path / "clock.json"
    a, b = Clock(clock_file=f), Clock(clock_file=f)
    assert not a.simulated
    b.set(datetime(2023, 10, 25, 23, 59, 59, 999999, tzinfo=VN))
    assert a.now() >= datetime(2023, 10, 25, 23, 59, 59, 999999, tzinfo=VN)
    assert a.now() < datetime(2023, 10, 26, 0, 0, 5, tzinfo=VN)
    write_clock_file(f, datetime(2023, 10, 27, tzinfo=VN))
    assert a.now().astimezone(VN).date().isoformat() == "2023-10-27"
