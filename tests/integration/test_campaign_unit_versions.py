"""A unit may have any number of dated rows in a directory document — a rename under the same id, a merger into
an existing unit (its new row ``successor_of`` the unit merged in) — and an import that does not fit together
is refused row by row, with the file's line: overlapping periods of one unit, a link to a unit that does not
exist. Campaign as a real process on PostgreSQL and NATS, through its HTTP API."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.campaign import SECRETARIAT, CampaignSystem, running_campaign
from tests.support.system import SEED, TENANT

RENAMED = "Chi cục Quản lý đất đai và Đo đạc bản đồ"
MERGED = "Phòng Tài nguyên Biển, BĐKH, KTTV và Môi trường"


@pytest.fixture
def cs(test_servers: Any, tmp_path: Path, unique_prefix: str) -> Iterator[CampaignSystem]:
    with running_campaign(test_servers, tmp_path, unique_prefix, "2023-10-20T09:00:00+07:00") as made:
        yield made


def directory_with(replace: dict[str, str], extra_units: list[str]) -> tuple[str, dict[str, int]]:
    """The seed directory with some unit rows rewritten and rows added after the units; and the line each
    added row is on (by the first 30 characters of the row)."""
    text = (SEED / "directory.yaml").read_text(encoding="utf-8")
    for old, new in replace.items():
        assert old in text
        text = text.replace(old, new)
    head, tail = text.split("\nunions:", 1)
    head = head.rstrip("\n") + "\n" + "".join(f"  {row}\n" for row in extra_units)
    text = head + "\nunions:" + tail
    lines = {row[:30]: text.splitlines().index(f"  {row}") + 1 for row in extra_units}
    return text, lines


def units_on(c: Any, day: str) -> dict[str, str]:
    r = c.get(f"/tenants/{TENANT}/units", params={"as_of": day})
    r.raise_for_status()
    return {u["id"]: u["name"] for u in r.json()}


def test_a_rename_and_a_merger_into_an_existing_unit_are_dated_rows_of_one_unit(cs: CampaignSystem) -> None:
    text, _ = directory_with(
        {
            "name: Chi cục Quản lý đất đai, kind: sub_department, effective_from: 2015-01-01}": (
                "name: Chi cục Quản lý đất đai, kind: sub_department, effective_from: 2015-01-01, "
                "effective_to: 2023-10-31}"
            ),
            "kind: sub_department, effective_from: 2009-01-01}": (
                "kind: sub_department, effective_from: 2009-01-01, effective_to: 2023-11-14}"
            ),
            'BĐKH và KTTV", kind: division,\n     effective_from: 2003-01-01}': (
                'BĐKH và KTTV", kind: division,\n     effective_from: 2003-01-01, effective_to: 2023-11-14}'
            ),
        },
        [
            f"- {{id: u-ccqldd, code: CCQLDD, name: {RENAMED}, kind: sub_department, effective_from: 2023-11-01}}",
            (
                f'- {{id: u-tnb-bdkh, code: TNB-BDKH, name: "{MERGED}", kind: division, effective_from: 2023-11-15, '
                "successor_of: [u-ccbvmt]}"
            ),
        ],
    )
    with cs.system.client("campaign", SECRETARIAT) as c:
        r = c.post(f"/tenants/{TENANT}/directory/import", content=text.encode(), params={"format": "yaml"})
        assert r.status_code == 200, r.text
        before, renamed, merged = (
            units_on(c, "2023-10-30"),
            units_on(c, "2023-11-02"),
            units_on(c, "2023-11-16"),
        )
    assert before["u-ccqldd"] == "Chi cục Quản lý đất đai" and renamed["u-ccqldd"] == RENAMED
    assert "u-ccbvmt" in renamed and "u-ccbvmt" not in merged
    assert merged["u-tnb-bdkh"] == MERGED and renamed["u-tnb-bdkh"] == "Phòng Tài nguyên Biển, BĐKH và KTTV"


def test_overlapping_rows_and_dangling_links_are_refused_by_line(cs: CampaignSystem) -> None:
    overlapping = "- {id: u-ccqldd, code: CCQLDD, name: Chi cục Đất đai, kind: sub_department, effective_from: 2023-10-01}"
    dangling = (
        "- {id: u-tnmb, code: TN-MB, name: Phòng Tài nguyên Nước và Biển, kind: division, "
        "effective_from: 2023-11-01, successor_of: [u-tnn-ks, u-khong-co]}"
    )
    text, lines = directory_with({}, [overlapping, dangling])
    before = len(cs.outbox("directory.unit.changed"))
    with cs.system.client("campaign", SECRETARIAT) as c:
        r = c.post(f"/tenants/{TENANT}/directory/import", content=text.encode(), params={"format": "yaml"})
    assert r.status_code == 422, r.text
    errors = {(e["line"], e["field"]): e for e in r.json()["errors"]}
    assert set(errors) == {
        (lines[overlapping[:30]], "effective_from"),
        (lines[dangling[:30]], "successor_of"),
    }
    assert "u-ccqldd" in errors[(lines[overlapping[:30]], "effective_from")]["message_vi"]
    assert "trùng thời gian hiệu lực" in errors[(lines[overlapping[:30]], "effective_from")]["message_vi"]
    assert (
        "không có trong danh bạ: 'u-khong-co'" in errors[(lines[dangling[:30]], "successor_of")]["message_vi"]
    )
    assert len(cs.outbox("directory.unit.changed")) == before
