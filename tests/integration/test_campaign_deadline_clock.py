"""The deadline clock on the simulated clock, campaign as a real process on PostgreSQL and NATS.

Submissions is not running: its ``intake.closed`` and ``submission.received`` are published raw, exactly as it
publishes them. The clock is frozen (rate 0) at each instant of interest, and every wait polls the campaign's
``GET …/deadlines`` until the clock has ticked at that instant — so "nothing happened" is asserted after the
clock has looked, never after a sleep.
"""

from __future__ import annotations

import signal
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.campaign import OFFICIAL, OTHER, SECRETARIAT, CampaignSystem, campaign_system
from tests.support.system import EDITION, TENANT
from tests.support.wait import eventually_sync

DEADLINE = "2023-10-26T00:00:00+07:00"  # "chậm nhất ngày 25/10/2023": the exclusive end
JUST_BEFORE = "2023-10-25T23:59:59.999999+07:00"


@pytest.fixture
def make(test_servers: Any, tmp_path: Path, unique_prefix: str) -> Iterator[Any]:
    made: list[CampaignSystem] = []

    def build(start_at: str, **env: str) -> CampaignSystem:
        cs = campaign_system(
            test_servers, tmp_path / f"s{len(made)}", unique_prefix + str(len(made)), start_at, **env
        )
        made.append(cs)
        return cs

    yield build
    for cs in made:
        cs.stop()


def _assignments(cs: CampaignSystem, part: str) -> list[dict[str, Any]]:
    with cs.system.client("campaign", SECRETARIAT) as c:
        r = c.get(f"/tenants/{TENANT}/editions/{EDITION}/assignments", params={"part": part})
        r.raise_for_status()
        return r.json()  # type: ignore[no-any-return]


def _missed(cs: CampaignSystem, part: str) -> Counter[tuple[str, str]]:
    """(assignee, deadline) of every deadline.missed in the outbox for ``part``."""
    return Counter(
        (e["data"]["assignee_id"], e["data"]["deadline"])
        for e in cs.outbox("deadline.missed")
        if e["data"]["part"] == part
    )


def _tick_at(cs: CampaignSystem, at: str) -> None:
    cs.freeze(at)
    eventually_sync(lambda: cs.clock_reached(at), timeout=15, message=f"clock ticked at {at}")


def test_receipt_in_flight_at_midnight_and_extension(make: Any) -> None:
    cs = make("2023-10-24T10:00:00+07:00")
    experience = _assignments(cs, "experience")
    other = next(a for a in experience if a["assignee_id"] == OTHER)
    base = f"/tenants/{TENANT}/editions/{EDITION}/assignments/{other['id']}/extensions"

    # An extension asked by someone who is not the secretariat: refused, nothing written.
    with cs.system.client("campaign", OFFICIAL) as c:
        r = c.post(base, json={"new_deadline": "2023-10-28", "reason": "Đi công tác"})
    assert r.status_code == 403, r.text
    assert "thường trực" in r.json()["detail_vi"]
    # A new deadline before the one in force: a field error, nothing written.
    with cs.system.client("campaign", SECRETARIAT) as c:
        r = c.post(base, json={"new_deadline": "2023-10-20", "reason": "Nhầm ngày"})
        assert r.status_code == 422, r.text
        assert r.json()["errors"][0]["field"] == "new_deadline"
        # the deadline in force reads as everywhere else: the last day that counts, not the exclusive end
        assert "hết ngày 25/10/2023" in r.json()["errors"][0]["message_vi"]
        assert cs.outbox("deadline.extended") == []
        # Granted on 24/10 by the secretariat, to 28/10: the official deadline stays.
        r = c.post(
            base,
            json={"new_deadline": "2023-10-28", "reason": "Đi công tác tỉnh ngoài"},
            headers={"Idempotency-Key": "ext-1"},
        )
        assert r.status_code == 201, r.text
        granted = r.json()
        assert granted["new_deadline"] == "2023-10-29T00:00:00+07:00"
        assert granted["official_deadline"] == DEADLINE
        assert granted["approved_by"] == SECRETARIAT
        again = c.post(
            base,
            json={"new_deadline": "2023-10-28", "reason": "Đi công tác tỉnh ngoài"},
            headers={"Idempotency-Key": "ext-1"},
        )
        assert again.json() == granted
    assert len(cs.outbox("deadline.extended")) == 1
    # Business instants in the event carry +07:00 like every other time (not UTC).
    [extended] = cs.outbox("deadline.extended")
    assert extended["data"]["new_deadline"] == "2023-10-29T00:00:00+07:00"
    assert extended["data"]["previous_deadline"] == DEADLINE
    # Campaign shows deadlines as "hết ngày …", the wording submissions uses.
    shown = {(d["part"], d["assignee_id"]): d["deadline_display"] for d in cs.deadlines()["deadlines"]}
    assert shown[("experience", None)] == "hết ngày 25/10/2023 (+07:00)"
    assert shown[("experience", OTHER)] == "hết ngày 28/10/2023 (+07:00)"
    theirs = next(a for a in _assignments(cs, "experience") if a["assignee_id"] == OTHER)
    assert theirs["extended_to"] == "2023-10-29T00:00:00+07:00"  # +07:00 like every other time, not UTC
    assert theirs["deadline"] == DEADLINE and theirs["deadline_display"] == "hết ngày 28/10/2023 (+07:00)"

    # 25/10 23:59:59.999999: still on time for everyone — nothing missed.
    _tick_at(cs, JUST_BEFORE)
    assert cs.state("experience") == "open"
    assert cs.outbox("deadline.missed") == []

    # 26/10 00:00: the deadline has passed, but submissions has not closed the intake: still nothing.
    _tick_at(cs, DEADLINE)
    assert cs.state("experience") == "waiting_for_intake"
    assert cs.outbox("deadline.missed") == []

    # Intake closes: submissions accepted one report on time, whose event has not reached campaign yet.
    cs.intake_closed("experience", DEADLINE, accepted_on_time=1)
    cs.intake_closed("initiative", DEADLINE, accepted_on_time=0)
    eventually_sync(lambda: cs.state("initiative") == "decided", timeout=15, message="initiative decided")
    eventually_sync(lambda: cs.state("experience") == "waiting_for_receipts", timeout=15, message="waiting")
    assert _missed(cs, "experience") == Counter()
    assert len(_missed(cs, "initiative")) == 7

    # The receipt of 25/10 23:59:59.9 arrives after midnight: the official is fulfilled on time, never missed.
    cs.report_received(OFFICIAL, "u-vpdkdd-cn1", "2023-10-25T23:59:59.900000+07:00")
    eventually_sync(lambda: cs.state("experience") == "decided", timeout=15, message="experience decided")
    mine = next(a for a in _assignments(cs, "experience") if a["assignee_id"] == OFFICIAL)
    assert mine["status"] == "fulfilled" and mine["on_time"] is True
    missed = _missed(cs, "experience")
    expected = {a["assignee_id"] for a in experience} - {OFFICIAL, OTHER}
    assert {who for who, _ in missed} == expected
    assert set(missed.values()) == {1}
    assert {datetime.fromisoformat(d) for _, d in missed} == {datetime.fromisoformat(DEADLINE)}

    # The extended assignee: not missed on 28/10 23:59:59.999999 even with their intake closed early …
    cs.intake_closed("experience", "2023-10-29T00:00:00+07:00", accepted_on_time=0, assignee=OTHER)
    _tick_at(cs, "2023-10-28T23:59:59.999999+07:00")
    assert cs.state("experience", OTHER) == "open"
    assert not any(who == OTHER for who, _ in _missed(cs, "experience"))
    # … and missed from 29/10 00:00: a new fact with the deadline in force.
    _tick_at(cs, "2023-10-29T00:00:00+07:00")
    eventually_sync(
        lambda: cs.state("experience", OTHER) == "decided", timeout=15, message="extension decided"
    )
    theirs = [d for who, d in _missed(cs, "experience") if who == OTHER]
    assert [datetime.fromisoformat(d) for d in theirs] == [
        datetime.fromisoformat("2023-10-29T00:00:00+07:00")
    ]

    # On the stream: each miss once, one deadline.passed per part decided.
    total = len(expected) + 1 + 7
    eventually_sync(
        lambda: len(cs.on_stream("deadline.missed")) == total, timeout=15, message="misses on stream"
    )
    ids = Counter(e["id"] for e in cs.on_stream("deadline.missed"))
    assert set(ids.values()) == {1}
    passed = Counter(e["data"]["part"] for e in cs.on_stream("deadline.passed"))
    assert passed == Counter({"initiative": 1, "experience": 1})
    exp = next(e for e in cs.on_stream("deadline.passed") if e["data"]["part"] == "experience")["data"]
    assert exp["assigned"] == len(experience) and exp["fulfilled"] == 1
    assert OFFICIAL not in {p for people in exp["missed_by_unit"].values() for p in people}
    assert OTHER not in {p for people in exp["missed_by_unit"].values() for p in people}


def test_downtime_from_24_to_27_october_decides_each_miss_once_and_sends_no_stale_reminder(make: Any) -> None:
    cs = make("2023-10-24T08:00:00+07:00")
    open_assignments = len(_assignments(cs, "initiative")) + len(_assignments(cs, "experience"))
    # Running on 24/10: the P3D reminder (due 23/10 00:00) is the latest due, one per open assignment.
    eventually_sync(
        lambda: len(cs.on_stream("deadline.approaching")) == open_assignments,
        timeout=20,
        message="P3D reminders on the stream",
    )
    before = cs.on_stream("deadline.approaching")
    assert {e["data"]["offset"] for e in before} == {"P3D"}

    cs.system.stop_service("campaign")
    cs.freeze("2023-10-27T09:00:00+07:00")
    # Submissions closes both parts' intake while campaign is down; the facts wait on the stream.
    cs.intake_closed("experience", DEADLINE, accepted_on_time=0)
    cs.intake_closed("initiative", DEADLINE, accepted_on_time=0)
    cs.system.start_service("campaign")
    cs.system.wait_ready("campaign")

    eventually_sync(
        lambda: cs.state("initiative") == cs.state("experience") == "decided", timeout=20, message="decided"
    )
    eventually_sync(lambda: cs.unpublished() == 0, timeout=15, message="outbox drained")
    missed = cs.outbox("deadline.missed")
    assert len(missed) == open_assignments
    assert len({e["data"]["assignment_id"] for e in missed}) == open_assignments
    on_stream = Counter(e["id"] for e in cs.on_stream("deadline.missed"))
    assert len(on_stream) == open_assignments and set(on_stream.values()) == {1}
    assert Counter(e["data"]["part"] for e in cs.on_stream("deadline.passed")) == Counter(
        {"initiative": 1, "experience": 1}
    )
    # No reminder at all after the restart: the P1D reminder (due 25/10) fell in the downtime and stays unsent.
    assert len(cs.on_stream("deadline.approaching")) == len(before)
    assert len(cs.outbox("deadline.approaching")) == len(before)


def test_three_replicas_on_one_database_tick_one_at_a_time_and_decide_each_deadline_once(make: Any) -> None:
    cs = make("2023-10-28T09:00:00+07:00", HOITHI_DUPLICATE_WINDOW="1")  # selection: P3D due
    ports = [cs.system.ports["campaign"]]
    for _ in range(2):
        port = cs.start_replica()
        ports.append(port)
        eventually_sync(
            lambda port=port: (
                httpx.get(f"http://127.0.0.1:{port}/health/ready", timeout=2).status_code == 200
            ),
            timeout=60,
            message="replica ready",
        )
    expected = len(_assignments(cs, "initiative")) + len(_assignments(cs, "experience"))
    cs.intake_closed("experience", DEADLINE, accepted_on_time=0)
    cs.intake_closed("initiative", DEADLINE, accepted_on_time=0)
    eventually_sync(
        lambda: len(cs.on_stream("deadline.missed")) >= expected, timeout=20, message="misses on stream"
    )
    eventually_sync(lambda: cs.unpublished() == 0, timeout=15, message="outbox drained")
    # The stream forgets a message id after its 1 s duplicate window: once it has, a second publish of any
    # decision would show on the stream.
    cs.wait_past_duplicate_window()
    # One clock per deployment: the holder of the clock's lease ticks, the other replicas stand by.
    holder = eventually_sync(lambda: cs.clock_holder(ports), timeout=15, message="a replica holds the clock")
    ticked = {port: cs.clock_ticks(port) for port in ports}
    eventually_sync(
        lambda: cs.clock_ticks(holder) >= ticked[holder] + 3, timeout=15, message="the holder ticked"
    )
    assert {p: cs.clock_ticks(p) for p in ports if p != holder} == {
        p: ticked[p] for p in ports if p != holder
    }
    generation = cs.clock_view(holder)["clock_lease"]["generation"]
    # The holder dies without a word (no release): another replica takes the clock over once the lease expires.
    if holder == cs.system.ports["campaign"]:
        cs.system.stop_service("campaign", signal.SIGKILL)
    else:
        proc = cs.replicas[ports.index(holder) - 1]
        proc.kill()
        proc.wait(10)
    rest = [p for p in ports if p != holder]
    successor = eventually_sync(
        lambda: cs.clock_holder(rest), timeout=20, message="another replica took over"
    )
    assert cs.clock_view(successor)["clock_lease"]["generation"] == generation + 1
    eventually_sync(
        lambda: cs.clock_ticks(successor) >= ticked[successor] + 3, timeout=15, message="the successor ticked"
    )
    eventually_sync(lambda: cs.unpublished() == 0, timeout=15, message="outbox drained")
    for type_, count in (("deadline.missed", expected), ("deadline.passed", 2), ("deadline.approaching", 1)):
        in_outbox = Counter(e["id"] for e in cs.outbox(type_))
        on_stream = Counter(e["id"] for e in cs.on_stream(type_))
        assert len(in_outbox) == count and set(in_outbox.values()) == {1}, type_
        assert on_stream == in_outbox, type_


SELECTION_DEADLINE = "2023-10-31T00:00:00+07:00"  # the council selects "chậm nhất ngày 30/10/2023"


@pytest.mark.parametrize("selected_in_time", [True, False], ids=["decided-in-time", "never-decided"])
def test_selection_deadline_waits_for_the_councils_decision(make: Any, selected_in_time: bool) -> None:
    cs = make("2023-10-31T00:00:01+07:00")
    council = _assignments(cs, "selection")
    assert [a["assignee_id"] for a in council] == ["initiative-council"]
    # Submissions counted the council's decision at 23:59:59.9 (or none) when it closed the selection.
    cs.intake_closed("selection", SELECTION_DEADLINE, accepted_on_time=1 if selected_in_time else 0)
    _tick_at(cs, "2023-10-31T00:00:02+07:00")
    if selected_in_time:
        # The decision's event has not reached campaign yet: the clock waits instead of deciding a miss.
        eventually_sync(
            lambda: cs.state("selection") == "waiting_for_receipts", timeout=15, message="waiting"
        )
        _tick_at(cs, "2023-10-31T00:00:03+07:00")
        assert cs.state("selection") == "waiting_for_receipts"
        cs.selected("11111111-1111-4111-8111-111111111111", "u-vp", "2023-10-30T23:59:59.900000+07:00")
    eventually_sync(lambda: cs.state("selection") == "decided", timeout=15, message="selection decided")
    eventually_sync(lambda: cs.unpublished() == 0, timeout=15, message="outbox drained")
    missed = _missed(cs, "selection")
    passed = [e["data"] for e in cs.outbox("deadline.passed") if e["data"]["part"] == "selection"]
    assert len(passed) == 1 and passed[0]["assigned"] == 1
    if selected_in_time:
        assert missed == Counter() and passed[0]["fulfilled"] == 1
        assert [a["status"] for a in _assignments(cs, "selection")] == ["fulfilled"]
    else:
        assert missed == Counter({("initiative-council", SELECTION_DEADLINE): 1})
        assert passed[0]["fulfilled"] == 0


def _report_reminders(cs: CampaignSystem) -> list[dict[str, Any]]:
    return [e["data"] for e in cs.outbox("deadline.approaching") if e["data"]["part"] == "online90"]


def _report_on_target(cs: CampaignSystem, period_start: str, period_end: str) -> None:
    """u-ccbvmt offers one eligible procedure full-process and reports 10 dossiers, 6 online, 10 on time."""
    with cs.system.client("campaign", SECRETARIAT) as c:
        r = c.put(
            f"/tenants/{TENANT}/units/u-ccbvmt/procedures",
            json={
                "effective_from": "2023-08-21",
                "procedures": [
                    {
                        "code": "1.010001",
                        "name": "Thủ tục",
                        "level": "full_process",
                        "eligible_full_process": True,
                    }
                ],
            },
        )
        assert r.status_code == 200, r.text
        r = c.post(
            f"/tenants/{TENANT}/editions/{EDITION}/units/u-ccbvmt/progress-reports",
            json={
                "period_start": period_start,
                "period_end": period_end,
                "procedures": [
                    {
                        "code": "1.010001",
                        "dossiers_received": 10,
                        "dossiers_online": 6,
                        "dossiers_on_time": 10,
                    }
                ],
            },
        )
        assert r.status_code == 201, r.text


def test_ninety_day_report_reminders_each_period_only_to_units_that_have_not_reported(make: Any) -> None:
    # online90 runs from 21/08/2023 for P90D with a report every P7D: the period running on 21/10 is
    # 16/10–22/10, its report due before 23/10 00:00, the reminder one day before (the default P1D).
    cs = make("2023-10-21T23:59:00+07:00")
    units = {a["assignee_id"] for a in _assignments(cs, "online90")}
    assert len(units) == 6
    _tick_at(cs, "2023-10-21T23:59:30+07:00")
    assert _report_reminders(cs) == []  # not due yet
    _report_on_target(cs, "2023-10-16", "2023-10-22")
    _tick_at(cs, "2023-10-22T08:00:00+07:00")
    eventually_sync(lambda: len(_report_reminders(cs)) == 5, timeout=15, message="report reminders")
    first = _report_reminders(cs)
    assert {e["assignee_id"] for e in first} == units - {"u-ccbvmt"}
    assert {(e["deadline"], e["offset"]) for e in first} == {("2023-10-23T00:00:00+07:00", "P1D")}
    # The next period (23/10–29/10) reminds nobody before 29/10 00:00; a clock that was down all week sends
    # only the current period's reminder, to every unit (nobody has reported for it), never last week's again.
    _tick_at(cs, "2023-10-28T23:59:59+07:00")
    assert len(_report_reminders(cs)) == 5
    _tick_at(cs, "2023-10-29T12:00:00+07:00")
    eventually_sync(lambda: len(_report_reminders(cs)) == 11, timeout=15, message="next week's reminders")
    second = [e for e in _report_reminders(cs) if e["deadline"] == "2023-10-30T00:00:00+07:00"]
    assert {e["assignee_id"] for e in second} == units
    # After the campaign's end (19/11/2023 00:00) no report is due and no reminder is sent.
    _tick_at(cs, "2023-11-19T00:00:01+07:00")
    assert len(_report_reminders(cs)) == 11


def _participation(cs: CampaignSystem, part: str) -> dict[str, int]:
    with cs.system.client("campaign", SECRETARIAT) as c:
        r = c.get(f"/tenants/{TENANT}/editions/{EDITION}/participation")
        r.raise_for_status()
    return next(p for p in r.json()["parts"] if p["part"] == part)  # type: ignore[no-any-return]


def test_every_ninety_day_assignment_ends_fulfilled_or_missed_once(make: Any) -> None:
    # online90 ends before 19/11/2023 00:00 +07:00. One unit (u-ccbvmt) reaches its targets (0.80 full-process,
    # 0.50 online, 0.95 on time): one eligible procedure offered full-process, 10 dossiers, 6 online, 10 on
    # time. The five others never report, so they miss theirs.
    cs = make("2023-11-18T09:00:00+07:00")
    _report_on_target(cs, "2023-11-13", "2023-11-18")
    assert _participation(cs, "online90")["open"] == 6

    _tick_at(cs, "2023-11-19T00:00:01+07:00")
    eventually_sync(
        lambda: len(cs.outbox("onlineservice.target.missed")) == 5, timeout=15, message="the campaign result"
    )
    _tick_at(cs, "2023-11-19T08:00:00+07:00")  # a later tick (or a restarted clock) decides nothing again
    counts = _participation(cs, "online90")
    assert {k: counts[k] for k in ("assigned", "fulfilled", "missed", "open")} == {
        "assigned": 6,
        "fulfilled": 1,
        "missed": 5,
        "open": 0,
    }
    assert _missed(cs, "online90") == Counter(
        {
            (u, "2023-11-19T00:00:00+07:00"): 1
            for u in ("u-ccqldd", "u-tnb-bdkh", "u-tnn-ks", "u-ttcntt", "u-vpdkdd")
        }
    )
    fulfilled = [e["data"] for e in cs.outbox("assignment.fulfilled") if e["data"]["part"] == "online90"]
    assert [(f["assignee_id"], f["on_time"]) for f in fulfilled] == [("u-ccbvmt", True)]
    statuses = {x["assignee_id"]: x["status"] for x in _assignments(cs, "online90")}
    assert statuses["u-ccbvmt"] == "fulfilled"
