"""Another agency's edition, written in the documented format with its own part ids: validated, published by
``hoithi seed`` and priced by rewards with its own points, through the real services (campaign, submissions,
rewards on real NATS). Rules naming a part the edition does not have are refused when the edition is validated,
naming the field, and campaign refuses to publish them."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shared.settings import SERVICES
from tests.support.editions import OWN_PART_IDS, edition_with_own_part_ids, seed_dir
from tests.support.servers import TestServers
from tests.support.system import EDITION, ROOT, TENANT, System
from tests.support.wait import eventually_sync

EXPERIENCE, INITIATIVE, SELECTION = (OWN_PART_IDS[p] for p in ("experience", "initiative", "selection"))
OWN_RULES: dict[str, Any] = {
    "rules_version": 3,
    "points": {  # the agency's own part ids, not the demo's "experience" / "initiative"
        f"submission.received/{EXPERIENCE}": 4,
        f"submission.received/{INITIATIVE}": 6,
        f"initiative.selected/{SELECTION}": 9,
    },
    "deadline_missed": "flag",
    "caps": {"per_person_per_part": 1},
    "eligibility": {"lao_dong_tien_tien_evidence": ["fulfilled_any_part"]},
}


def validate(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "shared.cli", "edition", "validate", str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def system(test_servers: TestServers, unique_prefix: str, tmp_path: Path) -> Iterator[System]:
    seed = seed_dir(tmp_path / "seed", edition_with_own_part_ids(OWN_RULES))
    sys_ = System(
        nats_url=test_servers.nats_url,
        prefix=unique_prefix,
        workdir=tmp_path,
        database_urls={s: f"sqlite+aiosqlite:///{tmp_path / f'{s}.db'}" for s in SERVICES},
        seed_dir=seed,
        services=("campaign", "submissions", "rewards"),
    )
    try:
        sys_.start()
        yield sys_
    finally:
        sys_.stop()


def test_edition_with_its_own_part_ids_is_priced_with_its_own_points(system: System) -> None:
    checked = validate(system.seed_dir / "edition.yaml")
    assert checked.returncode == 0 and "hợp lệ" in checked.stdout, checked.stderr

    r = system.submit_report("p-0002", key="own-ids")
    assert r.status_code == 201, r.text

    def p0002() -> dict[str, Any] | None:
        with system.client("rewards", "p-0001") as c:
            pl = c.get(f"/tenants/{TENANT}/editions/{EDITION}/priority-list").json()
        return next((p for p in pl["persons"] if p["person_id"] == "p-0002"), None) and pl

    pl = eventually_sync(p0002, timeout=60, message="p-0002 on the priority list")
    person = next(p for p in pl["persons"] if p["person_id"] == "p-0002")
    # 4 points, the edition's own price for its own part; the list says which rules it was computed under.
    assert person["points"] == 4, person
    assert pl["rules_version"] == 3 and pl["edition_version"] == 1
    assert pl["rules_note"] == "Tính theo quy tắc khen thưởng phiên bản 3 (kỳ hội thi phiên bản 1)"
    with system.client("rewards", "p-0001") as c:
        versions = c.get(f"/tenants/{TENANT}/editions/{EDITION}/rules").json()
    assert [(v["version"], v["valid"], v["in_force"]) for v in versions] == [(1, True, True)]


def test_rules_naming_a_part_the_edition_lacks_are_refused_at_validation_and_publishing(
    system: System, tmp_path: Path
) -> None:
    rules = {**OWN_RULES, "points": {**OWN_RULES["points"], "submission.received/experience-2024": 2}}
    bad = seed_dir(tmp_path / "bad", edition_with_own_part_ids(rules))
    field = "rewards.points.submission.received/experience-2024"

    checked = validate(bad / "edition.yaml")
    assert checked.returncode == 1 and "hợp lệ (valid)" not in checked.stdout
    assert field in checked.stderr
    assert "mã phần thi 'experience-2024' không có trong kỳ hội thi" in checked.stderr  # Vietnamese
    assert "unknown part id 'experience-2024'" in checked.stderr  # and English

    # campaign refuses to publish it, by seed or over HTTP: the field named, nothing written, no event.
    before = [e for _, e in system.events() if e.get("type") == "edition.published"]
    with system.client("campaign", "p-0004") as c:  # the secretariat
        r = c.post(
            f"/tenants/{TENANT}/editions",
            content=json.dumps(edition_with_own_part_ids(rules), default=str),
            headers={"Content-Type": "application/json"},
        )
    assert r.status_code == 422, r.text
    assert [e["field"] for e in r.json()["errors"]] == [field]
    assert "không có trong kỳ hội thi" in r.json()["errors"][0]["message_vi"]
    with pytest.raises(RuntimeError) as refused:
        system.hoithi("seed", str(bad))
    assert field in str(refused.value)
    assert [e for _, e in system.events() if e.get("type") == "edition.published"] == before
    with system.client("campaign", "p-0001") as c:
        versions = c.get(f"/tenants/{TENANT}/editions/{EDITION}/versions")
    assert [v["version"] for v in versions.json()] == [1], versions.text
