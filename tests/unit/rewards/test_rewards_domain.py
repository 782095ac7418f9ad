"""rewards' pure rules: the submission fold (any arrival order), ledger entries and the priority list."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from services.rewards import domain
from shared import reward_rules
from shared.events.envelope import Envelope, make_event

VN = ZoneInfo("Asia/Ho_Chi_Minh")
T0 = datetime(2023, 10, 20, 9, 30, tzinfo=VN)
SUB = "sub-1"
POINTS = {"submission.received/experience": 1, "submission.received/initiative": 2}


def fact(type_: str, sequence: int, **data: object) -> Envelope:
    at = T0 + timedelta(hours=sequence)
    base: dict[str, object] = {
        "submission_id": SUB,
        "kind": "experience_report",
        "part": "experience",
        "author_id": "p-0002",
        "unit_id": "u-vpdkdd-cn1",
    }
    if type_ == "submission.received":
        base.update(
            receipt_number="2023-EXP-000001",
            received_at=at,
            authors=[{"person_id": "p-0002", "name": "Trần Văn Minh", "share": 100}],
            procedures=["1.004227", "1.000494", "1.011442", "1.001234", "1.002345"],
        )
    else:
        base["at"] = at
    if type_ == "submission.rejected":
        base["reason"] = "không đủ 5 thủ tục"
    if type_ == "submission.revised":
        base["revision"] = data.pop("revision", 2)
    base.update(data)
    return make_event(
        type_,
        base,
        source="submissions",
        tenant="soctrang-stnmt",
        subject=SUB,
        sequence=sequence,
        time=at,
        edition="2023",
    )


def test_received_submission_is_active() -> None:
    s = domain.fold_submission(SUB, [fact("submission.received", 1)])
    assert s.active and s.status == "active"
    assert s.author_id == "p-0002" and s.unit_id == "u-vpdkdd-cn1" and s.edition == "2023"


def test_withdrawal_arriving_before_its_receipt_leaves_the_submission_withdrawn() -> None:
    received, withdrawn = fact("submission.received", 1), fact("submission.withdrawn", 2)
    only_withdrawal = domain.fold_submission(SUB, [withdrawn])
    assert not only_withdrawal.active
    assert domain.ledger_entries(only_withdrawal, points=POINTS) == []
    # the receipt arrives later: the fold (by sequence, not arrival) still says withdrawn
    both = domain.fold_submission(SUB, [withdrawn, received])
    assert not both.active and both.status == "withdrawn"
    assert domain.ledger_entries(both, points=POINTS) == []


def test_rejected_then_reinstated_is_active_in_any_arrival_order() -> None:
    facts = [fact("submission.received", 1), fact("submission.rejected", 2), fact("submission.reinstated", 3)]
    assert not domain.fold_submission(SUB, facts[:2]).active
    assert domain.fold_submission(SUB, facts).active
    assert domain.fold_submission(SUB, [facts[2], facts[0], facts[1]]).active
    # the reinstatement came first, the rejection is still on its way: active (a gap in sequence)
    assert domain.fold_submission(SUB, [facts[2], facts[0]]).active


def test_rejection_after_a_reinstatement_wins_by_sequence() -> None:
    facts = [
        fact("submission.received", 1),
        fact("submission.rejected", 2),
        fact("submission.reinstated", 3),
        fact("submission.rejected", 4, reason="trùng lặp"),
    ]
    assert not domain.fold_submission(SUB, reversed(facts)).active


def test_revisions_count_once() -> None:
    received = fact("submission.received", 1)
    facts = [received, fact("submission.revised", 2, revision=2), fact("submission.revised", 3, revision=3)]
    s = domain.fold_submission(SUB, facts)
    assert s.active and s.revision == 3
    entries = domain.ledger_entries(s, points=POINTS, part_title="Trải nghiệm dịch vụ công trực tuyến")
    assert [(e.participant_kind, e.participant_id, e.points) for e in entries] == [
        ("person", "p-0002", 1),
        ("unit", "u-vpdkdd-cn1", 1),
    ]
    assert {e.event_id for e in entries} == {received.id}
    assert entries == domain.ledger_entries(
        domain.fold_submission(SUB, [received]),
        points=POINTS,
        part_title="Trải nghiệm dịch vụ công trực tuyến",
    )


def test_points_come_from_the_part_then_the_kind_then_one() -> None:
    assert domain.points_for({"submission.received/experience": 3}, "experience", "experience_report") == (
        "submission.received/experience",
        3,
    )
    assert domain.points_for({"submission.received/initiative": 2}, "init-2024", "initiative") == (
        "submission.received/initiative",
        2,
    )
    assert domain.points_for(None, "experience", "experience_report") == ("submission.received/experience", 1)


def test_reasons_are_vietnamese_with_the_receipt_time() -> None:
    s = domain.fold_submission(SUB, [fact("submission.received", 1)])
    person = domain.ledger_entries(s, points=POINTS, part_title="Trình bày trải nghiệm")[0]
    assert "báo cáo trải nghiệm dịch vụ công trực tuyến" in person.reason_vi
    assert "2023-EXP-000001" in person.reason_vi
    assert "20/10/2023 10:30:00 (+07:00)" in person.reason_vi


def entry(
    pid: str, points: int, at: datetime, *, part: str = "experience", sub: str | None = None
) -> domain.LedgerEntry:
    return domain.LedgerEntry(
        submission_id=sub or f"s-{pid}-{part}-{at.isoformat()}",
        participant_kind="person",
        participant_id=pid,
        event_id=f"e-{pid}-{part}-{at.isoformat()}",
        rule=f"submission.received/{part}",
        points=points,
        time=at,
        edition="2023",
        part=part,
        kind="experience_report",
        reason_vi="",
        reason_en="",
    )


def test_ranking_by_points_then_earliest_fulfilment() -> None:
    ranked = domain.rank(
        [
            entry("a", 1, T0 + timedelta(hours=5)),
            entry("b", 1, T0 + timedelta(hours=1)),
            entry("c", 2, T0 + timedelta(hours=9), part="initiative"),
            entry("d", 1, T0 + timedelta(hours=1)),  # equal to b on points and time: same rank
        ]
    )
    assert [(r.participant_id, r.rank, r.points) for r in ranked] == [
        ("c", 1, 2),
        ("b", 2, 1),
        ("d", 2, 1),
        ("a", 4, 1),
    ]


def test_per_person_per_part_cap_keeps_the_earliest() -> None:
    first, second = T0, T0 + timedelta(days=1)
    entries = [entry("a", 1, second), entry("a", 1, first), entry("a", 2, second, part="initiative")]
    (capped,) = domain.rank(entries, per_part_cap=1)
    assert capped.points == 3
    assert [e.time for e in capped.entries if e.part == "experience"] == [first]
    (uncapped,) = domain.rank(entries)
    assert uncapped.points == 4


# ------------------------------------------------------------------------------------ assignments and rules

D1 = datetime(2023, 10, 26, tzinfo=VN)
D2 = datetime(2023, 10, 28, tzinfo=VN)


def assignment_fact(type_: str, sequence: int, **data: object) -> Envelope:
    base: dict[str, object] = {
        "assignment_id": "a-1",
        "part": "experience",
        "part_kind": "experience_report",
        "assignee_kind": "person",
        "assignee_id": "p-0002",
        "unit_id": "u-vpdkdd-cn1",
    }
    base.update(data)
    return make_event(
        type_, base, source="campaign", tenant="soctrang-stnmt", subject="a-1", sequence=sequence, time=T0,
        edition="2023",
    )  # fmt: skip


def missed(sequence: int, deadline: datetime) -> Envelope:
    return assignment_fact("deadline.missed", sequence, deadline=deadline)


def extended(sequence: int) -> Envelope:
    return assignment_fact(
        "deadline.extended",
        sequence,
        previous_deadline=D1,
        new_deadline=D2,
        reason="ốm",
        approved_by="p-0001",
    )


def fulfilled(sequence: int, when: datetime, deadline: datetime) -> Envelope:
    return assignment_fact(
        "assignment.fulfilled", sequence, fulfilled_at=when, deadline=deadline, on_time=when < deadline
    )


DEDUCT = domain.Rules(deduct=2)


def test_one_assignment_never_costs_twice() -> None:
    facts = [missed(1, D1), missed(1, D1), extended(2), missed(3, D2)]  # a duplicate, then a second deadline
    a = domain.fold_assignment("a-1", reversed(facts))
    entries = domain.assignment_entries(a, DEDUCT)
    assert [(e.rule, e.points, e.time) for e in entries] == [("deadline.missed", -2, D2)]


def test_on_time_for_the_extended_deadline_voids_the_miss_but_late_does_not() -> None:
    on_time = [missed(1, D1), extended(2), fulfilled(3, D2 - timedelta(hours=1), D2)]
    assert domain.assignment_entries(domain.fold_assignment("a-1", on_time), DEDUCT) == []
    late = [missed(1, D1), fulfilled(2, D1 + timedelta(hours=1), D1)]
    assert [e.points for e in domain.assignment_entries(domain.fold_assignment("a-1", late), DEDUCT)] == [-2]


def test_a_flag_costs_nothing_but_is_a_reason() -> None:
    (flag,) = domain.assignment_entries(domain.fold_assignment("a-1", [missed(1, D1)]), domain.Rules())
    assert flag.points == 0 and "không trừ điểm" in flag.reason_vi and "26/10/2023 00:00:00" in flag.reason_vi


def test_co_authors_share_the_points_when_the_rules_say_so() -> None:
    received = fact(
        "submission.received",
        1,
        kind="initiative",
        part="initiative",
        author_id="p-0007",
        authors=[
            {"person_id": "p-0007", "name": "Đức", "share": 60},
            {"person_id": "p-0008", "name": "Linh", "share": 40},
        ],
    )
    s = domain.fold_submission(SUB, [received])
    split = domain.ledger_entries(s, points=POINTS, author_shares=True)
    assert [(e.participant_id, e.points) for e in split] == [
        ("p-0007", 1.2),
        ("p-0008", 0.8),
        ("u-vpdkdd-cn1", 2),
    ]
    assert "(60%)" in split[0].reason_vi
    whole = domain.ledger_entries(s, points=POINTS)
    assert [(e.participant_id, e.points) for e in whole] == [
        ("p-0007", 2),
        ("p-0008", 2),
        ("u-vpdkdd-cn1", 2),
    ]


KINDS = ("submission.received/experience", "initiative.selected", "deadline.missed")


def test_rules_check_names_each_bad_field() -> None:
    ok = {"points": {"submission.received/experience": 1}, "caps": {"per_person_per_part": 1}}
    assert reward_rules.validate_rules(ok, fact_kinds=KINDS) == []
    bad = {
        "points": {"submission.recieved/experience": 1},
        "caps": {"per_person_per_part": -1},
        "deadline_missed": {"deduct": 0},
        "eligibility": {"chien_si_thi_dua_co_so": ["author_of_rejected"]},
        "tie_breakers": ["coin_toss"],
    }
    assert [e.field for e in reward_rules.validate_rules(bad, fact_kinds=KINDS)] == [
        "rewards.points.submission.recieved/experience",
        "rewards.caps.per_person_per_part",
        "rewards.deadline_missed",
        "rewards.eligibility.chien_si_thi_dua_co_so[0]",
        "rewards.tie_breakers[0]",
    ]
    assert all(e.vi and e.en for e in reward_rules.validate_rules(bad, fact_kinds=KINDS))


def test_ties_share_a_rank_and_fewer_misses_breaks_them_when_asked() -> None:
    es = [entry("a", 1, T0), entry("b", 1, T0)]
    assert [(r.participant_id, r.rank) for r in domain.rank(es)] == [("a", 1), ("b", 1)]
    ranked = domain.rank(
        es, misses={("person", "a"): 1}, tie_breakers=["earliest_fulfilment", "fewer_missed_deadlines"]
    )
    assert [(r.participant_id, r.rank) for r in ranked] == [("b", 1), ("a", 2)]


def test_rollup_adds_branches_to_their_parent() -> None:
    parents = {"u-vpdkdd-cn1": "u-vpdkdd", "u-vpdkdd": None}
    assert domain.rollup({"u-vpdkdd": 5, "u-vpdkdd-cn1": 2}, parents) == {"u-vpdkdd": 7, "u-vpdkdd-cn1": 2}


def test_rules_may_name_the_editions_own_parts_of_the_right_kind_only() -> None:
    parts = {"sang-kien": "initiative", "xet-chon": "selection", "chien-dich": "online_services_campaign"}
    ok = {
        "points": {
            "submission.received/sang-kien": 2,
            "initiative.selected/xet-chon": 5,
            "onlineservice.target.reached/chien-dich": 3,
            "deadline.missed/sang-kien": 0,
        }
    }
    assert reward_rules.validate_rules(ok, parts) == []
    bad = {"points": {"submission.received/xet-chon": 2, "assignment.fulfilled/khong-co": 1}}
    errors = reward_rules.validate_rules(bad, parts)
    assert [e.field for e in errors] == [
        "rewards.points.submission.received/xet-chon",
        "rewards.points.assignment.fulfilled/khong-co",
    ]
    assert "phần xét chọn của hội đồng" in errors[0].vi and "không có trong kỳ hội thi" in errors[1].vi
    # Without the edition's parts (a rules section alone) no part id is known.
    assert reward_rules.validate_rules(ok, None)


def test_a_part_id_rule_prices_its_part_before_the_kind_form() -> None:
    points = {"submission.received/trai-nghiem": 4, "submission.received/experience": 1}
    assert domain.points_for(points, "trai-nghiem", "experience_report") == (
        "submission.received/trai-nghiem",
        4,
    )
    assert domain.points_for(points, "khac", "experience_report") == ("submission.received/experience", 1)
    assert domain.priced({"deadline.missed/a": -2, "deadline.missed": -1}, "deadline.missed", "a") == (
        "deadline.missed/a",
        -2,
    )
    assert domain.priced({}, "initiative.selected", "xet-chon") == ("initiative.selected", 0)


def test_a_selection_reason_names_the_level_the_edition_gives_and_none_when_it_gives_none() -> None:
    received = fact(
        "submission.received",
        1,
        kind="initiative",
        part="initiative",
        author_id="p-0007",
        authors=[{"person_id": "p-0007", "name": "Đức", "share": 100}],
    )
    selected = {
        "part": "selection",
        "unit_id": "u-vpdkdd-cn1",
        "score": 80.0,
        "rank": 1,
        "authors": [{"person_id": "p-0007", "name": "Đức", "share": 100}],
    }
    with_selection = {**POINTS, "initiative.selected": 5}
    district = domain.fold_submission(
        SUB, [received, fact("initiative.selected", 2, destination="cấp huyện", **selected)]
    )
    reasons = [
        e.reason_vi for e in domain.ledger_entries(district, points=with_selection) if "chọn" in e.reason_vi
    ]
    assert len(reasons) == 2 and all("được Hội đồng chọn gửi dự thi cấp huyện" in r for r in reasons)
    unsaid = domain.fold_submission(SUB, [received, fact("initiative.selected", 2, **selected)])
    reasons = [
        e.reason_vi for e in domain.ledger_entries(unsaid, points=with_selection) if "chọn" in e.reason_vi
    ]
    assert len(reasons) == 2 and not any("cấp tỉnh" in r or "dự thi" in r for r in reasons)
