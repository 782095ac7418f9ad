"""The rewards acceptance fixture through the real consumer (inbox + handlers, one transaction per batch) on
SQLite: the 2023 scenario gives the list worked out by hand; duplicates and any arrival order give the same
list, now and "as of" moments in between; exports; the rules check; reward.priority.changed."""

from __future__ import annotations

import csv
import io
import random
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from openpyxl import load_workbook  # type: ignore[import-untyped]

from services.rewards import models
from services.rewards.usecases import projection, view
from tests.support.rewards import (
    EDITION,
    EXPECTED_PERSONS,
    EXPECTED_ROLLUP,
    EXPECTED_UNITS,
    NOW,
    TENANT,
    Rewards,
    all_facts,
    as_rows,
    at,
    directory_facts,
    edition_published,
    rewards_on_sqlite,
)

MOMENTS = [at(22, 12), at(26, 12), at(31, 0)]


@pytest.fixture
async def rewards(tmp_path: Path) -> AsyncIterator[Rewards]:
    r = await rewards_on_sqlite(tmp_path / "rewards.db")
    yield r
    await r.engine.dispose()


def _json(pl: view.PriorityList) -> str:
    return pl.model_dump_json()


async def test_the_2023_scenario_gives_the_list_worked_out_by_hand(rewards: Rewards) -> None:
    await rewards.deliver(all_facts())
    pl = await rewards.listing()
    assert as_rows([p.model_dump() for p in pl.persons]) == EXPECTED_PERSONS
    assert as_rows([u.model_dump() for u in pl.units]) == EXPECTED_UNITS
    assert {u.unit_id: u.rollup_points for u in pl.units if u.unit_id in EXPECTED_ROLLUP} == EXPECTED_ROLLUP
    assert pl.rules_version == 1 and pl.edition_version == 1

    # Reasons: the facts and rules behind each point, in Vietnamese and English.
    duc = next(p for p in pl.persons if p.person_id == "p-0007")
    assert duc.name == "Trương Văn Đức" and duc.unit_name == "Phòng Tài nguyên Nước, Khoáng sản"
    assert [(r.rule, r.points) for r in duc.reasons] == [
        ("submission.received/initiative", 2),
        ("initiative.selected", 5),
    ]
    assert "Phần thi sáng kiến cải cách hành chính" in duc.reasons[0].vi
    assert "23/10/2023 09:00:00 (+07:00)" in duc.reasons[0].vi
    assert "selected by the council" in duc.reasons[1].en
    (cstdcs,) = duc.eligibility
    assert cstdcs.title_vi == "Chiến sĩ thi đua cơ sở"
    assert "Số hoá hồ sơ cấp phép tài nguyên nước" in cstdcs.reasons[0]["vi"]
    miss = next(p for p in pl.persons if p.person_id == "p-0022")
    assert miss.reasons[0].rule == "deadline.missed" and "26/10/2023 00:00:00" in miss.reasons[0].vi
    assert "không trừ điểm" in miss.reasons[0].vi
    tu = next(p for p in pl.persons if p.person_id == "p-0019")
    assert [r.rule for r in tu.reasons].count("deadline.missed") == 1  # two deadlines missed, one cost

    # The union tree: the trade union gathers every member's points.
    cdcs = next(u for u in pl.unions if u.union_id == "cdcs")
    assert cdcs.name == "Công đoàn cơ sở Sở Tài nguyên và Môi trường"
    assert cdcs.points == sum(p[2] for p in EXPECTED_PERSONS)  # every listed person is a member


async def test_duplicates_and_any_order_give_the_same_list_now_and_as_of(tmp_path: Path) -> None:
    facts = all_facts()
    in_order = await rewards_on_sqlite(tmp_path / "a.db")
    await in_order.deliver(facts)
    want = [_json(await in_order.listing())] + [_json(await in_order.listing(m)) for m in MOMENTS]
    await in_order.engine.dispose()

    for seed in (1, 2):
        shuffled = facts * 2  # every fact delivered twice
        random.Random(seed).shuffle(shuffled)
        # Make sure one person's facts arrive out of order: the withdrawal before the receipt.
        withdrawal = next(f for f in facts if f.type == "submission.withdrawn")
        shuffled.remove(withdrawal)
        shuffled.insert(0, withdrawal)
        other = await rewards_on_sqlite(tmp_path / f"shuffled-{seed}.db")
        await other.deliver(shuffled, batch=1 + seed * 3)
        got = [_json(await other.listing())] + [_json(await other.listing(m)) for m in MOMENTS]
        await other.engine.dispose()
        assert got == want


async def test_as_of_between_two_facts_shows_the_first_and_not_the_second(rewards: Rewards) -> None:
    await rewards.deliver(all_facts())
    between = await rewards.listing(at(25, 12))  # p-0011 at 24/10 15:00; p-0016 at 25/10 23:59:59
    ids = {p.person_id for p in between.persons}
    assert "p-0011" in ids and "p-0016" not in ids
    # 22/10 noon: the withdrawal (23/10) and the rejection (24/10) had not happened yet.
    early = await rewards.listing(at(22, 12))
    assert [(p.person_id, p.rank, p.points) for p in early.persons] == [
        ("p-0002", 1, 1),
        ("p-0004", 2, 1),
        ("p-0006", 3, 1),
        ("p-0008", 4, 1),
    ]


async def test_a_list_as_of_a_moment_waits_for_the_read_under_way_then_is_refused_not_queued(
    rewards: Rewards, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One read of a whole edition as of a moment at a time per process (off the event loop): a reader that
    cannot start one in time gets a 503 with Retry-After and nothing changes; the live list, read from the read
    model, is answered meanwhile."""
    from shared import heavy
    from shared.errors import DomainError, Refusal

    await rewards.deliver(all_facts())
    want = _json(await rewards.listing(at(26, 12)))
    monkeypatch.setattr(heavy, "WAIT", 0.2)
    async with heavy.slot("asof"):  # a read as of a moment under way
        with pytest.raises(DomainError) as refused:
            await rewards.listing(at(26, 12))
        assert refused.value.refusal is Refusal.UNAVAILABLE and refused.value.headers == {"Retry-After": "1"}
        assert "thử lại" in refused.value.detail_vi
        assert as_rows([p.model_dump() for p in (await rewards.listing()).persons]) == EXPECTED_PERSONS
    assert _json(await rewards.listing(at(26, 12))) == want


async def test_a_miss_caught_up_late_counts_at_its_deadline(rewards: Rewards) -> None:
    await rewards.deliver(all_facts())
    # p-0022's miss was published on 27/10 10:00; its deadline was 26/10 00:00.
    before = await rewards.listing(at(25, 23, 59, 59))
    assert "p-0022" not in {p.person_id for p in before.persons}
    after = await rewards.listing(at(26, 0, 0, 1))
    (p22,) = [p for p in after.persons if p.person_id == "p-0022"]
    assert p22.missed_deadlines == 1
    # p-0025 missed on 26/10, was granted an extension and reported in time for it: a miss until then only.
    mid = await rewards.listing(at(27, 12))
    assert next(p for p in mid.persons if p.person_id == "p-0025").missed_deadlines == 1
    final = await rewards.listing()
    assert next(p for p in final.persons if p.person_id == "p-0025").missed_deadlines == 0


async def test_filters_by_unit_tree_union_and_role(rewards: Rewards) -> None:
    await rewards.deliver(all_facts())
    vpdkdd = await rewards.listing(unit="u-vpdkdd")  # the unit and its branches
    assert [(p.person_id, p.rank) for p in vpdkdd.persons] == [("p-0019", 3), ("p-0002", 4), ("p-0025", 8)]
    assert [u.unit_id for u in vpdkdd.units] == ["u-vpdkdd", "u-vpdkdd-cn1"]
    youth = await rewards.listing(union="cd")  # Chi đoàn members only
    assert {p.person_id for p in youth.persons} == {
        "p-0008",
        "p-0019",
        "p-0002",
        "p-0004",
        "p-0011",
        "p-0025",
        "p-0022",
    }
    heads = await rewards.listing(role="unit_head")
    assert [p.person_id for p in heads.persons] == ["p-0007"]


async def test_exports_read_back_with_the_same_figures_and_diacritics(rewards: Rewards) -> None:
    await rewards.deliver(all_facts())
    pl = await rewards.listing()
    wb = load_workbook(io.BytesIO(view.to_xlsx(pl)))
    assert wb.sheetnames == ["Cá nhân", "Đơn vị", "Sổ ghi nhận"]
    persons = list(wb["Cá nhân"].iter_rows(values_only=True))
    assert persons[0][:3] == ("Hạng", "Mã cán bộ", "Họ và tên")
    assert [(r[1], r[0], r[5]) for r in persons[1:]] == [
        (p, rank, pts) for p, rank, pts, _, _ in EXPECTED_PERSONS
    ]
    assert persons[1][2] == "Trương Văn Đức" and persons[1][7] == "Chiến sĩ thi đua cơ sở"
    units = list(wb["Đơn vị"].iter_rows(values_only=True))
    assert [(r[1], r[0], r[3]) for r in units[1:]] == [
        (u, rank, pts) for u, rank, pts, _, _ in EXPECTED_UNITS
    ]
    assert units[1][2] == "Phòng Tài nguyên Nước, Khoáng sản"
    ledger = list(wb["Sổ ghi nhận"].iter_rows(values_only=True))
    assert len(ledger) - 1 == len(pl.ledger) and any("Đã nộp" in str(r[10]) for r in ledger[1:])

    text = view.to_csv(pl, "persons").decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0][2] == "Họ và tên" and rows[1][2] == "Trương Văn Đức"
    assert [(r[1], int(r[0]), float(r[5])) for r in rows[1:]] == [
        (p, k, v) for p, k, v, _, _ in EXPECTED_PERSONS
    ]


async def test_a_rules_change_reprices_and_is_labelled(rewards: Rewards) -> None:
    await rewards.deliver(all_facts())
    await rewards.deliver([edition_published(2, points={"submission.received/experience": 3,
                                                          "submission.received/initiative": 2,
                                                          "initiative.selected": 5,
                                                          "onlineservice.target.reached": 3},
                                             rules_version=2)])  # fmt: skip
    pl = await rewards.listing()
    assert pl.rules_version == 2
    assert {p.person_id: p.points for p in pl.persons}["p-0002"] == 3
    async with rewards.engine.connect() as conn:
        journal = (await conn.execute(sa.select(models.ledger_journal))).all()
    # The re-pricing is appended (a reversal and a credit), never an edit.
    r1 = [
        (j.action, j.points)
        for j in journal
        if j.participant_id == "p-0002" and j.rule.startswith("submission")
    ]
    assert r1 == [("credit", 1), ("reversal", -1), ("credit", 3)]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (
            {"points": {"submission.received/experience": 1, "initiative.chosen": 5}},
            "rewards.points.initiative.chosen",
        ),
        ({"caps": {"per_person_per_part": -1}}, "rewards.caps.per_person_per_part"),
    ],
)
async def test_invalid_rules_are_refused_and_change_nothing(
    rewards: Rewards, change: dict[str, Any], field: str
) -> None:
    await rewards.deliver(all_facts())
    before = _json(await rewards.listing())
    bad = edition_published(2, rules_version=2, **change)
    errors = projection.check_rules(bad.data["document"]["rewards"])
    assert [e.field for e in errors] == [field]
    assert errors[0].vi and errors[0].en
    await rewards.deliver([bad])
    assert _json(await rewards.listing()) == before  # the previous rules stay in force
    async with rewards.engine.connect() as conn:
        refused = (await conn.execute(sa.select(models.rules).where(models.rules.c.version == 2))).one()
    assert not refused.valid and field in refused.errors


async def test_priority_changes_are_told_only_when_eligibility_changes(rewards: Rewards) -> None:
    """``reward.priority.changed`` is told in the fact's own transaction, only to a participant who gains or
    loses a title: a rank or points move (everyone below a new entry) is not news; redelivery tells nothing."""
    facts = all_facts()
    withdrawal = next(i for i, f in enumerate(facts) if f.type == "submission.withdrawn")
    await rewards.deliver(facts[:withdrawal])
    first = await rewards.emitted()
    await rewards.deliver(facts[:withdrawal])  # duplicates: nothing new, nothing told
    assert len(await rewards.emitted()) == len(first)
    await rewards.deliver(facts)  # the rest, and duplicates of the first half
    told = await rewards.emitted()
    assert len({e["id"] for e in told}) == len(told)
    seen: dict[str, list[str]] = {}
    for e in sorted(told, key=lambda e: e["sequence"]):
        before = seen.get(e["subject"], [])
        assert e["data"]["eligibility"] != before, "told without an eligibility change"
        seen[e["subject"]] = e["data"]["eligibility"]
    pl = await rewards.listing()
    titled = {p.person_id: [x.key for x in p.eligibility] for p in pl.persons if p.eligibility}
    titled |= {u.unit_id: [x.key for x in u.eligibility] for u in pl.units if u.eligibility}
    assert titled and {k: v for k, v in seen.items() if v} == titled  # the last word told is the list's
    duc = next(e["data"] for e in sorted(told, key=lambda e: -e["sequence"]) if e["subject"] == "p-0007")
    assert (duc["rank"], duc["points"], duc["eligibility"], duc["rules_version"]) == (
        1, 7, ["chien_si_thi_dua_co_so"], 1
    )  # fmt: skip
    assert any("Chiến sĩ thi đua cơ sở" in r["vi"] for r in duc["reasons"])
    # p-0006 held evidence, then withdrew: told it lost it (and is off the list)
    lost = next(e["data"] for e in sorted(told, key=lambda e: -e["sequence"]) if e["subject"] == "p-0006")
    assert (lost["eligibility"], lost["rank"]) == ([], None)
    # a participant ranked below a new entry, whose titles never changed, was never told
    assert {p.person_id for p in pl.persons} - set(seen)


async def test_directory_alone_makes_no_list(rewards: Rewards) -> None:
    await rewards.deliver(directory_facts())
    async with rewards.engine.connect() as conn:
        assert (
            await projection.load_list(
                conn, models.backbone, models.copies, TENANT, EDITION, as_of=None, now=NOW
            )
        ) is None
