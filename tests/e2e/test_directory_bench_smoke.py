"""``bench/directory.py --smoke``: the directory-reads benchmark end to end, short (issue 16), on SQLite and
PostgreSQL. It proves the bench still runs and that what it reads is right: every read answered, each page full,
the searches finding whom they look for, the assignments' pages full. Latency is not judged here (a shared CI machine's figures mean nothing);
bench/RESULTS.md records the measured runs."""

from __future__ import annotations

import re

from tests.support.bench import result_lines, run_smoke


def test_the_directory_bench_smoke_run_answers_every_read(test_servers) -> None:  # type: ignore[no-untyped-def]
    out = run_smoke("directory.py", "--postgres", test_servers.database_server_url, minutes=10)
    lines = result_lines(out, "directory")
    assert list(lines) == ["sqlite", "postgresql"], out[-4000:]
    for db, fields in lines.items():
        found = dict(re.findall(rf"^\[{db}\] (\w+) .*\((\d+) rows\)$", out, re.MULTILINE))
        assert found["first_page"] == found["page_51"] == found["unit"] == "100", out[-4000:]
        assert found["search_id"] == "1" and found["search_none"] == "0", out[-4000:]
        assert int(found["search_few"]) >= 1 and found["search_many"] == "100", out[-4000:]
        assert 150 <= int(found["ids_200"]) <= 200, out[-4000:]
        assert found["assignments_page"] == found["assignments_deep"] == "100", out[-4000:]
        assert found["pending_page"] == "50", out[-4000:]
        assert float(fields["p99_ms"]) > 0 and float(fields["whole_list_ms"]) > 0, fields
        assert float(fields["assignments_unpaged_ms"]) > 0, fields
