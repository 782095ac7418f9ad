"""``bench/rush.py --smoke``: the national-scale rush benchmark end to end, short (issue 16). It proves the bench
still runs against the whole system on SQLite and PostgreSQL and that what it checks holds under wrk's load with
reads interleaved: every accepted report reaches rewards' ledger and its receipt is handed to SMTP, none twice,
every read answers, and campaign's participation counts as many assignments fulfilled as there are reports. Speed is not judged here (a shared CI machine's figures mean nothing); bench/RESULTS.md
records the measured runs."""

from __future__ import annotations

import shutil

import pytest

from tests.support.bench import result_lines, run_smoke

pytestmark = pytest.mark.serial  # wrk loads the whole machine


def test_the_rush_bench_smoke_run_loses_nothing_and_doubles_nothing(test_servers) -> None:  # type: ignore[no-untyped-def]
    if shutil.which("wrk") is None:
        pytest.skip("wrk is missing (apt-get install wrk; .ci/run installs it)")
    out = run_smoke("rush.py", "--postgres", test_servers.database_server_url, minutes=30)
    lines = result_lines(out, "rush")
    assert list(lines) == ["sqlite", "postgresql"], out[-4000:]
    for fields in lines.values():
        assert fields["lost"] == "0" and fields["doubled"] == "0", fields
        assert fields["failed_reads"] == "0", fields
        assert fields["participation_off"] == "0", (
            fields
        )  # campaign counts every report's assignment fulfilled
        assert fields["officials"] == fields["accepted"] == "200", fields  # every official once, each a 201
        assert float(fields["ledger_p99_ms"]) > 0 and float(fields["email_p99_ms"]) > 0, fields
