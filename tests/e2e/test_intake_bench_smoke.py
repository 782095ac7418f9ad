"""``bench/intake.py --smoke``: the intake benchmark end to end, short (issue 15). It proves the bench still runs
against the whole system on SQLite and PostgreSQL and that what it checks holds under wrk's load: durability
settings as required, every 201 a row and an event, receipts gapless. Throughput is not judged here (a shared CI
machine's figures mean nothing); bench/RESULTS.md records the measured runs."""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.serial  # wrk loads the whole machine

ROOT = Path(__file__).resolve().parents[2]


def test_the_intake_bench_smoke_run_is_gapless_and_loses_nothing(test_servers) -> None:  # type: ignore[no-untyped-def]
    if shutil.which("wrk") is None:
        pytest.skip("wrk is missing (apt-get install wrk; .ci/run installs it)")
    cmd = [sys.executable, "bench/intake.py", "--smoke", "2", "--rates", "100"]
    cmd += ["--postgres", test_servers.database_server_url]
    # Bounded: two whole systems start and seed; on a machine shared by many runs that alone takes minutes.
    with subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as proc:
        try:
            out, _ = proc.communicate(timeout=1800)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGINT)  # the bench's finally stops the system it started
            out, _ = proc.communicate(timeout=60)
            pytest.fail(f"the bench smoke run did not finish in 30 minutes:\n{out[-4000:]}")
    assert proc.returncode == 0, out[-4000:]
    assert "PRAGMA synchronous=2 (FULL)" in out
    assert "synchronous_commit=on" in out
    lines = re.findall(r"^intake: db=(\w+) .*$", out, re.MULTILINE)
    assert lines == ["sqlite", "postgresql"], out[-4000:]
    for line in re.findall(r"^intake: .*$", out, re.MULTILINE):
        fields = dict(kv.split("=", 1) for kv in line.split()[1:])
        assert fields["gapless"] == "yes" and fields["lost"] == "0", line
        assert float(fields["hoithi_per_s"]) > 0, line
