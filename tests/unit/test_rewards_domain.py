"""rewards' pure rules: the submission fold (any arrival order), ledger entries and the priority list."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from services.rewards import domain
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
