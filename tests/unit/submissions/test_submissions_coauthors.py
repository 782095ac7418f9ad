"""A submitter cannot choose the reviewers: a listed co-author counts (and brings their unit into the
own-unit rule) only after confirming; every exclusion has a reason the secretariat can read."""

from __future__ import annotations

from services.submissions import domain
from services.submissions.usecases import access


def _author(pid: str | None, unit: str | None, name: str = "x") -> dict[str, object]:
    return {"person_id": pid, "unit_id": unit, "name": name, "share": 50}


def test_a_co_author_is_invited_and_counted_only_after_confirming() -> None:
    listed = [_author("p-sub", "u-a"), _author("p-member", "u-b"), _author(None, None, "Ngoài")]
    invited = domain.invite_authors(listed, "p-sub")
    assert [a["confirmed"] for a in invited] == [True, False, True]
    assert [a["person_id"] for a in domain.counted_authors(invited)] == ["p-sub", None]
    # a revision keeps a confirmation already given, and invites anyone new
    confirmed = [{**invited[1], "confirmed": True, "confirmed_at": "2023-10-20T09:00:00+07:00"}]
    again = domain.invite_authors([*listed, _author("p-new", "u-c")], "p-sub", [invited[0], *confirmed])
    assert [a["confirmed"] for a in again] == [True, True, True, False]
    assert again[1]["confirmed_at"] == "2023-10-20T09:00:00+07:00"


def test_the_own_unit_rule_looks_at_confirmed_authors_only() -> None:
    row = {
        "unit_id": "u-a",
        "body": {"authors": domain.invite_authors([_author("p-sub", "u-a"), _author("p-b", "u-b")], "p-sub")},
    }
    members, units = ["m-a", "m-b", "m-c"], {"m-a": "u-a", "m-b": "u-b", "m-c": "u-c"}
    assert access.author_units(row) == {"u-a"}
    assert domain.reviewers(members, units, access.author_units(row), set()) == ["m-b", "m-c"]
    row["body"]["authors"][1]["confirmed"] = True
    assert domain.reviewers(members, units, access.author_units(row), set()) == ["m-c"]


def test_exclusions_carry_their_reasons() -> None:
    out = domain.exclusions(
        ["m-a", "m-b", "m-c", "m-d"],
        {"m-a": "u-a", "m-b": "u-b", "m-c": "u-c", "m-d": "u-d"},
        {"u-a": ["đơn vị nộp"], "u-b": ["Lý Thị Mỹ Linh"]},
        {"m-c": "Vợ là đồng tác giả"},
        {"m-d"},
    )
    assert [(e.member_id, e.reason) for e in out] == [
        ("m-a", "own_unit"),
        ("m-b", "own_unit"),
        ("m-c", "conflict_declared"),
        ("m-d", "removed_by_chair"),
    ]
    assert "Lý Thị Mỹ Linh" in out[1].reason_vi and "Vợ là đồng tác giả" in out[2].reason_vi


def test_a_unit_merged_with_the_entrys_unit_is_excluded_with_its_reason() -> None:
    # u-b was merged into u-a (u-a successor_of u-b); u-b's initiative; m-a in u-a, m-c elsewhere; m-d moved
    # into the authors' unit after receipt (an author there at the time of scoring).
    out = domain.exclusions(
        ["m-a", "m-c", "m-d"],
        {"m-a": "u-a", "m-c": "u-c", "m-d": "u-d"},
        {"u-b": ["đơn vị nộp"]},
        {},
        entry_unit="u-b",
        lineage={"u-a": "successor"},
        units_now={"m-a": "u-a", "m-c": "u-c", "m-d": "u-e"},
        authors_now={"u-e": ["Ngô Thanh Minh"]},
    )
    assert [(e.member_id, e.reason) for e in out] == [("m-a", "merged_unit"), ("m-d", "own_unit")]
    assert "kế thừa" in out[0].reason_vi and "u-b" in out[0].reason_vi
    assert "Ngô Thanh Minh" in out[1].reason_vi
    barred = {e.member_id for e in out}
    assert domain.reviewers(["m-a", "m-c", "m-d"], {}, {"u-b"}, set(), added={"m-a"}, barred=barred) == [
        "m-c"
    ]
