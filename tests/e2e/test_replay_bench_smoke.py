"""``bench/replay.py --smoke``: the replay benchmark end to end, short (issue 16). It proves the bench still runs on
SQLite and PostgreSQL and that ``hoithi rewards rebuild``'s code path, fed 2,000 realistic facts, gives the
generation they imply: every event read and applied, its inbox holding every fact once, its ledger and journal
exactly the entries the facts earn (``lost=0 extra=0``). Speed is not judged here (a shared CI machine's figures
mean nothing); bench/RESULTS.md records the measured runs."""

from __future__ import annotations

import pytest

from tests.support.bench import result_lines, run_smoke

pytestmark = pytest.mark.serial  # a rebuild as fast as it goes: it takes the machine's cores


def test_the_replay_bench_smoke_run_rebuilds_exactly_what_the_facts_earn(test_servers) -> None:  # type: ignore[no-untyped-def]
    out = run_smoke("replay.py", "--postgres", test_servers.database_server_url, minutes=15)
    lines = result_lines(out, "replay")
    assert list(lines) == ["sqlite", "postgresql"], out[-4000:]
    for fields in lines.values():
        assert fields["events"] == "2000", fields
        assert fields["checks"] == "ok" and fields["lost"] == "0" and fields["extra"] == "0", fields
        assert float(fields["raw_per_s"]) > 0 and float(fields["rebuild_per_s"]) > 0, fields
        assert "vs_raw" in fields and float(fields["rss_mb"]) > 0, fields
