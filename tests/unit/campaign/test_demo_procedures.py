"""The demo's procedure catalogue (what `hoithi up` loads so the picker shows names) reads against the seed's
directory by unit code: every entry valid, one national code per procedure, a long form kept as local_code."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.campaign.seed import DEMO_PROCEDURES, read_procedures
from shared.documents import load_directory

SEED = Path(__file__).resolve().parents[3] / "deploy" / "seed" / "soctrang-stnmt-2023"


def test_the_demo_catalogue_reads_by_unit_code_and_merges_two_forms_of_one_code() -> None:
    directory = load_directory(SEED / "directory.yaml")
    catalogues = read_procedures(SEED / DEMO_PROCEDURES, directory)
    unit_ids = {u.id for u in directory.units}
    assert set(catalogues) <= unit_ids
    entries = [p for listed in catalogues.values() for p in listed]
    assert all(p["name"] and "." in p["code"] and len(p["code"]) == 8 for p in entries)
    assert len({p["code"] for p in entries}) >= 12
    long_forms = [p for p in entries if p.get("local_code")]
    assert [p["code"] for p in long_forms] == [long_forms[0]["local_code"].split(".000.")[0]]


def test_a_unit_code_the_directory_does_not_have_is_refused_before_anything_is_written(
    tmp_path: Path,
) -> None:
    bad = tmp_path / DEMO_PROCEDURES
    bad.write_text(
        "units:\n  KHONG-CO:\n    - {code: '1.004227', name: Thủ tục, level: partial, eligible_full_process: true}\n",
        encoding="utf-8",
    )
    with pytest.raises(SystemExit, match="KHONG-CO"):
        read_procedures(bad, load_directory(SEED / "directory.yaml"))
