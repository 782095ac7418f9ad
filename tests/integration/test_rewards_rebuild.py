"""The rewards service as a real process on real NATS JetStream and PostgreSQL, fed the 2023 fixture raw on the
stream: the list worked out by hand over HTTP; ``hoithi rewards rebuild`` during live traffic gives the same
list byte for byte (CSV); a rules change then a rebuild gives the list the new rule implies, labelled with the
new rules version; invalid rules are refused over HTTP and on the stream, changing nothing."""

from __future__ import annotations

import asyncio
import io
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import nats
import pytest
from openpyxl import load_workbook  # type: ignore[import-untyped]

from shared.events.envelope import Envelope
from shared.settings import SERVICES
from tests.support.rewards import (
    EDITION,
    EXPECTED_PERSONS,
    EXPECTED_UNITS,
    TENANT,
    all_facts,
    as_rows,
    edition_published,
)
from tests.support.servers import TestServers
from tests.support.system import ROOT, System
from tests.support.wait import eventually_sync

READER = "p-0001"  # Nguyễn Thị Lan, Chánh Văn phòng and a member of the reward council
BASE = f"/tenants/{TENANT}/editions/{EDITION}"


@pytest.fixture
def system(test_servers: TestServers, unique_prefix: str, tmp_path: Path) -> Iterator[System]:
    """rewards alone (the facts come raw on the stream), on PostgreSQL."""
    dbs = {s: f"sqlite+aiosqlite:///{tmp_path / f'{s}.db'}" for s in SERVICES}
    dbs["rewards"] = test_servers.create_database("rewards")
    sys_ = System(
        nats_url=test_servers.nats_url,
        prefix=unique_prefix,
        workdir=tmp_path,
        database_urls=dbs,
        services=("rewards",),
    )
    try:
        sys_.start()
        yield sys_
    finally:
        sys_.stop()


def publish(system: System, facts: Sequence[Envelope]) -> None:
    async def run() -> None:
        nc = await nats.connect(system.nats_url)
        try:
            js = nc.jetstream()
            for f in facts:
                await js.publish(
                    f"{system.prefix}.{f.tenant}.{f.type}", f.to_json(), stream=system.stream,
                    headers={"Nats-Msg-Id": f.id},
                )  # fmt: skip
        finally:
            await nc.close()

    asyncio.run(run())


def get(system: System, path: str, **params: Any) -> Any:
    with system.client("rewards", READER) as c:
        r = c.get(BASE + path, params=params)
        r.raise_for_status()
        return r


def listing(system: System) -> dict[str, Any]:
    return get(system, "/priority-list").json()  # type: ignore[no-any-return]


def csvs(system: System, **params: Any) -> dict[str, bytes]:
    return {
        s: get(system, "/priority-list.csv", sheet=s, **params).content
        for s in ("persons", "units", "ledger")
    }


def rebuild(system: System) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "shared.cli", "rewards", "rebuild", "--batch", "10"],
        cwd=ROOT,
        env=system.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def finished(proc: subprocess.Popen[str], timeout: float = 90) -> str:
    out, _ = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, out
    return out


def test_rebuild_during_live_traffic_then_after_a_rules_change(system: System) -> None:
    facts = all_facts()
    half = len(facts) * 2 // 3
    publish(system, facts[:half])
    eventually_sync(lambda: listing(system)["persons"], timeout=30, message="live list")

    # Rebuild while the rest of the scenario (and duplicates of the first part) arrives.
    proc = rebuild(system)
    rest = facts[half:] + facts[:10]
    for i in range(0, len(rest), 5):
        publish(system, rest[i : i + 5])
    out = finished(proc)
    assert "events read" in out and "swapped in (was 0)" in out and "soctrang-stnmt/2023 v1" in out

    def settled() -> bool:
        pl = listing(system)
        return (
            pl["generation"] == 1
            and as_rows(pl["persons"]) == EXPECTED_PERSONS
            and as_rows(pl["units"]) == EXPECTED_UNITS
        )

    eventually_sync(settled, timeout=30, message="the rebuilt list, fed by the live consumer")
    # The rebuilt generation and the live consumer's own record of the facts give the same bytes.
    rebuilt, live = csvs(system), csvs(system, generation=0)
    assert rebuilt == live
    assert "Trương Văn Đức".encode() in rebuilt["persons"]

    # Over HTTP: "as of" a moment between two receipts, and the workbook the council opens.
    between = {
        p["person_id"] for p in get(system, "/priority-list", as_of="2023-10-25T12:00:00").json()["persons"]
    }
    assert "p-0011" in between and "p-0016" not in between
    wb = load_workbook(io.BytesIO(get(system, "/priority-list.xlsx").content))
    assert wb.sheetnames == ["Cá nhân", "Đơn vị", "Sổ ghi nhận"]
    assert [r[1] for r in wb["Cá nhân"].iter_rows(min_row=2, values_only=True)] == [
        p for p, *_ in EXPECTED_PERSONS
    ]

    # Everyone on the list with a title was told, once per eligibility change, with deterministic ids; a rank
    # or points move alone is not told.
    def told() -> list[dict[str, Any]]:
        return [e for _, e in system.events() if e.get("type") == "reward.priority.changed"]

    titled = {p for p, _, _, titles, _ in EXPECTED_PERSONS if titles}
    changes = eventually_sync(
        lambda: (c := told()) and {e["subject"] for e in c} >= titled and c,
        timeout=30,
        message="reward.priority.changed for every participant with a title",
    )
    assert len({e["id"] for e in changes}) == len(changes)
    assert not {e["subject"] for e in changes} & {p for p, _, _, titles, _ in EXPECTED_PERSONS if not titles}

    # A new rules version: an experience report is now worth 3 points.
    points = {
        "submission.received/experience": 3,
        "submission.received/initiative": 2,
        "initiative.selected": 5,
        "onlineservice.target.reached": 3,
    }
    publish(system, [edition_published(2, points=points, rules_version=2)])
    eventually_sync(lambda: listing(system)["rules_version"] == 2, timeout=30, message="rules v2 in force")
    out = finished(rebuild(system))
    assert "swapped in (was 1)" in out and "soctrang-stnmt/2023 v2" in out
    pl = listing(system)
    assert pl["generation"] == 2 and pl["rules_version"] == 2
    persons = {p["person_id"]: (p["rank"], p["points"]) for p in pl["persons"]}
    # 3 for each report now: the five reporters (3rd to 7th, by receipt) pass p-0019's initiative (2).
    assert persons["p-0002"] == (3, 3) and persons["p-0025"] == (7, 3) and persons["p-0019"] == (8, 2)
    assert persons["p-0007"] == (1, 7)
    generations = system.hoithi("rewards", "generations")
    assert (
        '"soctrang-stnmt/2023": 2' in generations and "generation 2 (inbox rebuild-2): active" in generations
    )

    # A rules document with a negative cap: refused over HTTP and on the stream; nothing changes.
    before = csvs(system)
    with system.client("rewards", READER) as c:
        r = c.post(BASE + "/rules/validate", json={"caps": {"per_person_per_part": -1}, "points": points})
    assert r.status_code == 422
    assert [e["field"] for e in r.json()["errors"]] == ["rewards.caps.per_person_per_part"]
    assert r.json()["errors"][0]["message_vi"]
    publish(system, [edition_published(3, points=points, rules_version=3, caps={"per_person_per_part": -1})])
    versions = eventually_sync(
        lambda: [v for v in get(system, "/rules").json() if v["version"] == 3],
        timeout=30,
        message="v3 recorded",
    )
    assert (
        versions[0]["valid"] is False
        and versions[0]["errors"][0]["field"] == "rewards.caps.per_person_per_part"
    )
    assert csvs(system) == before
    assert listing(system)["rules_version"] == 2
