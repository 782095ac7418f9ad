"""The HTTP edge against a real campaign process (uvicorn, PostgreSQL, NATS): what the attack run on main did to
memory and to the event loop, and what a client sees instead.

- four 30 MB POSTs without a token grew submissions from 118 MB to 471 MB: now 401s that leave memory alone;
- a body over the route's limit with a valid token is a 413 problem, announced or streamed;
- a YAML "billion laughs" took 7 s of CPU on the event loop: now a 422 with its line at once, and a large legal
  import is parsed off the event loop, so ``/health/live`` keeps answering meanwhile.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.attacks import BOMB
from tests.support.campaign import SECRETARIAT, CampaignSystem, running_campaign
from tests.support.system import EDITION, SEED, TENANT

T = f"/tenants/{TENANT}"
MB = 1024 * 1024


@pytest.fixture(scope="module")
def cs(test_servers: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[CampaignSystem]:
    with running_campaign(
        test_servers,
        tmp_path_factory.mktemp("http-edge"),
        "e" + secrets.token_hex(4),
        "2023-10-20T09:00:00+07:00",
        HOITHI_BODY_LIMIT_DIRECTORY_IMPORT=str(32 * MB),
    ) as system:
        yield system


def _rss(cs: CampaignSystem) -> int:
    """The campaign process's resident memory, in bytes."""
    status = Path(f"/proc/{cs.system.procs['campaign'].pid}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("VmRSS:")).split()[1]) * 1024


def test_four_30_mb_posts_without_a_token_are_401_and_memory_stays_put(cs: CampaignSystem) -> None:
    body = b'{"new_deadline": "' + b"9" * (30 * MB) + b'"}'
    url = f"{cs.system.url('campaign')}{T}/editions/{EDITION}/assignments/a-1/extensions"
    with httpx.Client(timeout=60) as c:
        c.get(f"{cs.system.url('campaign')}/health/live")
        before = _rss(cs)
        for _ in range(4):
            r = c.post(url, content=body, headers={"Content-Type": "application/json"})
            assert r.status_code == 401, r.text
            assert r.headers["content-type"] == "application/problem+json" and r.json()["detail_vi"]
        grown = _rss(cs) - before
    assert grown < 8 * MB, f"RSS grew by {grown / MB:.1f} MB"


def test_a_body_over_the_limit_with_a_token_is_413_announced_or_streamed(cs: CampaignSystem) -> None:
    with cs.system.client("campaign", SECRETARIAT) as c:
        url = f"{T}/editions/{EDITION}/assignments/a-1/extensions"
        r = c.post(url, content=b" " * (2 * MB), headers={"Content-Type": "application/json"})
        assert r.status_code == 413 and r.json()["detail_vi"], r.text

        def chunks() -> Iterator[bytes]:  # no Content-Length: only the count while streaming can stop it
            for _ in range(40):
                yield b" " * MB

        r = c.post(f"{T}/directory/import", content=chunks(), headers={"Content-Type": "application/yaml"})
        assert r.status_code == 413 and str(32 * MB) in r.json()["detail"], r.text
        assert c.get("/health/live").status_code == 200  # and the connection pool still works


def test_a_yaml_alias_bomb_is_refused_at_once_with_its_line(cs: CampaignSystem) -> None:
    with cs.system.client("campaign", SECRETARIAT) as c:
        started = time.monotonic()
        r = c.post(f"{T}/directory/import", content=BOMB, headers={"Content-Type": "application/yaml"})
        took = time.monotonic() - started
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["line"] == 6
    assert took < 2.0, f"{took:.1f} s"


def test_health_live_answers_while_a_large_legal_import_is_parsed(cs: CampaignSystem) -> None:
    # the seed directory (unchanged: nothing to publish) with 11 MB of HR's notes as comments: seconds of parsing
    notes = ("# " + "Ghi chú của phòng Tổ chức cán bộ. " * 3 + "\n") * 80_000
    document = ((SEED / "directory.yaml").read_text(encoding="utf-8") + notes).encode("utf-8")
    result: dict[str, Any] = {}

    def import_it() -> None:
        with cs.system.client("campaign", SECRETARIAT) as c:
            c.timeout = httpx.Timeout(120)
            result["response"] = c.post(
                f"{T}/directory/import", content=document, headers={"Content-Type": "application/yaml"}
            )

    worker = threading.Thread(target=import_it)
    worker.start()
    slowest, probes = 0.0, 0
    with httpx.Client(base_url=cs.system.url("campaign"), timeout=30) as live:
        while worker.is_alive():
            started = time.monotonic()
            assert live.get("/health/live").status_code == 200
            slowest, probes = max(slowest, time.monotonic() - started), probes + 1
    worker.join()
    assert result["response"].status_code == 200, result["response"].text
    assert probes >= 5, f"the import took only {probes} probes: not large enough to show anything"
    assert slowest < 1.0, f"/health/live took {slowest:.2f} s during the import"
