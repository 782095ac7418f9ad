"""``bench/intake.py --smoke``: the intake benchmark end to end, short (issue 15). It proves the bench still runs
against the whole system on SQLite and PostgreSQL and that what it checks holds under wrk's load: durability
settings as required, every 201 a row and an event, receipts gapless. Throughput is not judged here (a shared CI
machine's figures mean nothing); bench/RESULTS.md records the measured runs."""

from __future__ import annotations

import shutil

import pytest

from tests.support.bench import result_lines, run_smoke

pytestmark = pytest.mark.serial  # wrk loads the whole machine


def test_the_intake_bench_smoke_run_is_gapless_and_loses_nothing(test_servers) -> None:  # type: ignore[no-untyped-def]
    if shutil.which("wrk") is None:
        pytest.skip("wrk is missing (apt-get install wrk; .ci/run installs it)")
    # Bounded: two whole systems start and seed; on a machine shared by many runs that alone takes minutes.
    out = run_smoke(
        "intake.py", "2", "--rates", "100", "--postgres", test_servers.database_server_url, minutes=30
    )
    assert "PRAGMA synchronous=2 (FULL)" in out
    assert "synchronous_commit=on" in out
    lines = result_lines(out, "intake")
    assert list(lines) == ["sqlite", "postgresql"], out[-4000:]
    for fields in lines.values():
        assert fields["gapless"] == "yes" and fields["lost"] == "0", fields
        assert float(fields["hoithi_per_s"]) > 0, fields
