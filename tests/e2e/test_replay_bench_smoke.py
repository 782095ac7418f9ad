"""``bench/replay.py --smoke``: the replay benchmark end to end, short (issue 16). It proves the bench still runs on
SQLite and PostgreSQL and that ``hoithi rewards rebuild``'s code path, fed 2,000 realistic facts, gives the
generation they imply: every event read and applied, its inbox holding every fact once, its ledger and journal
exactly the entries the facts earn (``lost=0 extra=0``). Speed is not judged here (a shared CI machine's figures
mean nothing); bench/RESULTS.md records the measured runs."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.serial  # a rebuild as fast as it goes: it takes the machine's cores

ROOT = Path(__file__).resolve().parents[2]


def test_the_replay_bench_smoke_run_rebuilds_exactly_what_the_facts_earn(test_servers) -> None:  # type: ignore[no-untyped-def]
    cmd = [sys.executable, "bench/replay.py", "--smoke", "--postgres", test_servers.database_server_url]
    with subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as proc:
        try:
            out, _ = proc.communicate(timeout=900)
        except subprocess.TimeoutExpired:
            proc.send_signal(
                signal.SIGINT
            )  # the bench's finally stops its nats-server and drops its database
            out, _ = proc.communicate(timeout=60)
            pytest.fail(f"the bench smoke run did not finish in 15 minutes:\n{out[-4000:]}")
    assert proc.returncode == 0, out[-4000:]
    lines = re.findall(r"^replay: db=(\w+) .*$", out, re.MULTILINE)
    assert lines == ["sqlite", "postgresql"], out[-4000:]
    for line in re.findall(r"^replay: .*$", out, re.MULTILINE):
        fields = dict(kv.split("=", 1) for kv in line.split()[1:])
        assert fields["events"] == "2000", line
        assert fields["checks"] == "ok" and fields["lost"] == "0" and fields["extra"] == "0", line
        assert float(fields["raw_per_s"]) > 0 and float(fields["rebuild_per_s"]) > 0, line
        assert "vs_raw" in fields and float(fields["rss_mb"]) > 0, line
