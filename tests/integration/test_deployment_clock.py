"""Every command follows the deployment's clock, found from the deployment's configuration (its data directory,
``HOITHI_DATA_DIR``, where ``hoithi up`` keeps ``clock.json``), whatever directory it is run from; production
refuses a simulated clock. Real processes (``python -m shared.cli``) on a SQLite deployment."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
from pydantic import ValidationError

from shared.clock import VN, write_clock_file
from shared.settings import Settings
from tests.support.system import ROOT, SEED

DEMO = datetime(2023, 10, 20, 9, 0, tzinfo=VN)


def hoithi(*args: str, home: Path, cwd: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    """``hoithi`` as an operator runs it: from ``cwd``, configured only by the deployment's data directory."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOITHI_")}
    env.update({"HOITHI_DATA_DIR": str(home), "PYTHONPATH": str(ROOT), **extra})
    return subprocess.run(
        [sys.executable, "-m", "shared.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def deployment(tmp_path: Path) -> tuple[Path, Path]:
    """A demo deployment's home with its clock frozen at 20/10/2023 09:00, and an unrelated working directory."""
    home, elsewhere = tmp_path / "home", tmp_path / "elsewhere"
    elsewhere.mkdir()
    write_clock_file(home / "clock.json", DEMO, rate=0.0)
    return home, elsewhere


def test_seed_into_a_running_demo_stamps_records_with_the_demo_clock(deployment: tuple[Path, Path]) -> None:
    home, elsewhere = deployment
    assert hoithi("migrate", "campaign", home=home, cwd=elsewhere).returncode == 0
    seeded = hoithi("seed", str(SEED), home=home, cwd=elsewhere)
    assert seeded.returncode == 0, seeded.stderr

    db = sqlite3.connect(home / "campaign.db")
    try:
        created = {r[0][:16] for r in db.execute("SELECT created_at FROM assignments")}
        published = {r[0][:16] for r in db.execute("SELECT created_at FROM outbox")}
    finally:
        db.close()
    # The records say 20/10/2023 09:00 +07:00 (02:00 UTC), the demo's "now", not the machine's date.
    assert created == {"2023-10-20 02:00"}, created
    assert published == {"2023-10-20 02:00"}, published


def test_clock_show_from_any_directory_tells_the_deployments_time_and_where_it_comes_from(
    deployment: tuple[Path, Path],
) -> None:
    home, elsewhere = deployment
    shown = hoithi("clock", "show", home=home, cwd=elsewhere)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.startswith("20/10/2023 09:00:00 (+07:00)")
    assert f"đồng hồ mô phỏng theo {home / 'clock.json'}" in shown.stdout

    moved = hoithi("clock", "set", "2023-10-25T23:59:00+07:00", home=home, cwd=elsewhere)
    assert moved.returncode == 0 and moved.stdout.startswith("25/10/2023 23:59"), moved.stderr


def test_the_data_directory_does_not_depend_on_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HOITHI_DATA_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    home = Settings().data_dir
    assert home.is_absolute() and home == ROOT / ".hoithi"


def test_production_refuses_a_simulated_clock(deployment: tuple[Path, Path], tmp_path: Path) -> None:
    home, elsewhere = deployment
    secret = {"env": "production", "jwt_secret": "s" * 40}
    for setting, value in (
        ("clock_file", home / "clock.json"),
        ("clock_simulated_at", DEMO),
    ):
        with pytest.raises(ValidationError, match=f"HOITHI_{setting.upper()}: HOITHI_ENV=production refuses"):
            Settings(**secret, data_dir=tmp_path / "empty", **{setting: value})  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="HOITHI_DATA_DIR: HOITHI_ENV=production refuses the simulated"):
        Settings(**secret, data_dir=home)  # type: ignore[arg-type]

    # A command in production with a demo's clock file: refused, saying which setting.
    refused = hoithi(
        "clock",
        "show",
        home=tmp_path / "empty",
        cwd=elsewhere,
        HOITHI_ENV="production",
        HOITHI_JWT_SECRET="s" * 40,
        HOITHI_CLOCK_FILE=str(home / "clock.json"),
    )
    assert refused.returncode != 0 and "HOITHI_CLOCK_FILE" in refused.stderr
