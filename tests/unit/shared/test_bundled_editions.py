"""Both bundled example editions (deploy/seed/*) are valid as an operator checks them, consistent with their
own directory, and the second differs from the 2023 demo in each respect a new agency's edition may: tenant,
part ids, deadlines, procedures required, rubric aggregate, reward rules, a merger inside the edition (issue 13,
item 6). The e2e tier runs the whole contest on both (tests/e2e/test_whole_contest.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from shared.documents import (
    ExperienceReportPart,
    SelectionPart,
    check_edition_against_directory,
    load_directory,
    load_edition,
)
from shared.reward_rules import edition_rule_errors

ROOT = Path(__file__).resolve().parents[3]
SEEDS = sorted((ROOT / "deploy" / "seed").iterdir())


def test_two_editions_are_bundled() -> None:
    assert [s.name for s in SEEDS] == ["cantho-snnmt-2025", "soctrang-stnmt-2023"]


@pytest.mark.parametrize("seed", SEEDS, ids=lambda p: p.name)
def test_each_bundled_edition_passes_validation(seed: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "shared.cli", "edition", "validate", str(seed / "edition.yaml")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 0 and "hợp lệ (valid)" in run.stdout, run.stderr
    edition, directory = load_edition(seed / "edition.yaml"), load_directory(seed / "directory.yaml")
    assert check_edition_against_directory(edition, directory) == []
    assert edition_rule_errors(edition) == []


def test_the_2025_edition_differs_from_2023_in_every_respect() -> None:
    old = load_edition(ROOT / "deploy/seed/soctrang-stnmt-2023/edition.yaml")
    new = load_edition(ROOT / "deploy/seed/cantho-snnmt-2025/edition.yaml")
    directory = load_directory(ROOT / "deploy/seed/cantho-snnmt-2025/directory.yaml")
    assert new.tenant != old.tenant
    assert not {p.id for p in new.parts} & {p.id for p in old.parts}
    assert not {p.deadline_instant() for p in new.parts} & {p.deadline_instant() for p in old.parts}

    def one(edition, kind):  # type: ignore[no-untyped-def]
        (part,) = [p for p in edition.parts if isinstance(p, kind)]
        return part

    assert one(new, ExperienceReportPart).min_distinct_procedures == 3
    assert one(old, ExperienceReportPart).min_distinct_procedures == 5
    assert (one(new, SelectionPart).rubric.aggregate, one(old, SelectionPart).rubric.aggregate) == (
        "median",
        "mean",
    )
    # rules keyed by its own part ids (every qualified key names one of its parts), and priced differently
    own = {p.id for p in new.parts}
    assert all(k.partition("/")[2] in own for k in new.rewards.points if "/" in k)
    assert new.rewards.points != old.rewards.points and new.rewards.deadline_missed != "flag"
    # a merger inside the edition: a unit row that is successor_of another, starting between opens and closes
    mergers = [u for u in directory.units if u.successor_of and u.effective_from]
    assert any(new.opens < u.effective_from <= new.closes for u in mergers)  # type: ignore[operator]
    (merged,) = mergers
    assert directory.lineage("u-ccptnt") == {merged.id: "successor"}
