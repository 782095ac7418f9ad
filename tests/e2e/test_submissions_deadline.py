"""Deadlines on the simulated clock (issue 4): the whole of 25/10/2023 counts, 26/10 00:00 is refused, an
extension to 28/10 admits its assignee on 27/10, and ``intake.closed`` counts what was accepted on time.

The module owns its system's clock: it moves it forward only, in order. The clock is frozen (rate 0) at each
instant, so "23:59:59.999999" is exactly the receipt time."""

from __future__ import annotations

from datetime import datetime

from services.submissions.usecases.intake import closure_event_id
from tests.support.submissions import events_of, extend_deadline, load_catalogue
from tests.support.system import EDITION, TENANT, System, report_body
from tests.support.wait import eventually_sync

BASE = f"/tenants/{TENANT}/editions/{EDITION}"
ON_TIME = "p-0002"  # Trần Văn Minh
WITHDRAWS = "p-0008"  # Lý Thị Mỹ Linh: submits, then withdraws before the deadline
LATE = "p-0011"  # Ngô Thị Bích Ngọc: no extension, too late
EXTENDED = "p-0019"  # Đoàn Thị Cẩm Tú: extended to 28/10
PART_DEADLINE = datetime.fromisoformat("2023-10-26T00:00:00+07:00")
EXTENDED_DEADLINE = datetime.fromisoformat("2023-10-29T00:00:00+07:00")


def _deadline_of(system: System, person: str, part: str) -> dict:
    with system.client("submissions", person) as c:
        r = c.get(f"{BASE}/deadlines")
        r.raise_for_status()
        return next(d for d in r.json() if d["part"] == part)


def _submission_events(system: System, sid: str | None = None) -> list[dict]:
    return [
        e
        for e in events_of(system, "submission.received", "submission.revised", "submission.withdrawn")
        if sid is None or e["subject"] == sid
    ]


def _closures(system: System) -> list[dict]:
    return events_of(system, "intake.closed")


def test_deadline_extension_and_intake_closed(system: System) -> None:
    # An extension for one official, granted while intake is open, reaches submissions' own copy.
    extend_deadline(
        system,
        part="experience",
        assignee=EXTENDED,
        kind="person",
        previous=PART_DEADLINE,
        new=EXTENDED_DEADLINE,
    )
    mine = eventually_sync(
        lambda: (d := _deadline_of(system, EXTENDED, "experience"))["extended"] and d,
        timeout=10,
        message="extension applied",
    )
    assert mine["deadline_display"] == "hết ngày 28/10/2023 (+07:00)"
    assert _deadline_of(system, LATE, "experience")["deadline_display"] == "hết ngày 25/10/2023 (+07:00)"

    # Once a procedure catalogue is loaded, a report naming a procedure outside it is refused (422).
    load_catalogue(system, "u-vp", ["1.004227", "1.000494", "1.001234"])
    load_catalogue(system, "u-vpdkdd", ["2.000123", "1.011442", "1.009999", "1.008888"])
    unknown = report_body(["1.004227", "1.000494", "1.001234", "2.000123", "1.999999"])

    def catalogues() -> bool:
        with system.client("submissions", LATE) as c:
            return len(c.get(f"/tenants/{TENANT}/procedures").json()) == 2

    eventually_sync(catalogues, timeout=10, message="catalogues applied")
    refused = system.submit_report(LATE, body=unknown)
    assert refused.status_code == 422
    assert "1.999999" in refused.json()["errors"][0]["message_vi"]

    # The last instant of 25/10/2023 is on time.
    system.set_clock("2023-10-25T23:59:59.999999+07:00", rate=0)
    r = system.submit_report(ON_TIME, key="last-microsecond")
    assert r.status_code == 201, r.text
    receipt = r.json()
    assert receipt["received_at"] == "2023-10-25T23:59:59.999999+07:00"

    # Revised before the deadline: same receipt number, revision 2, one submission.revised.
    with system.client("submissions", ON_TIME) as c:
        body = report_body(["1.004227", "1.000494", "1.001234", "2.000123", "1.009999", "1.008888"])
        rev = c.put(f"{BASE}/experience-reports/{receipt['submission_id']}", json=body)
    assert rev.status_code == 200, rev.text
    assert rev.json()["receipt_number"] == receipt["receipt_number"]
    assert rev.json()["revision"] == 2
    assert rev.json()["procedures"][-1] == "1.008888"
    with system.client("submissions", ON_TIME) as c:  # the same PUT retried: no new revision
        assert (
            c.put(f"{BASE}/experience-reports/{receipt['submission_id']}", json=body).json()["revision"] == 2
        )
    eventually_sync(
        lambda: len(_submission_events(system, receipt["submission_id"])) == 2,  # received, revised
        timeout=10,
        message="received and revised on the stream",
    )

    w = system.submit_report(WITHDRAWS)
    assert w.status_code == 201, w.text
    with system.client("submissions", WITHDRAWS) as c:
        out = c.post(
            f"{BASE}/experience-reports/{w.json()['submission_id']}/withdrawal", json={"reason": "Nộp nhầm"}
        )
    assert out.status_code == 200, out.text
    assert out.json()["status"] == "withdrawn"
    # A withdrawn report leaves room for a new one: a new receipt.
    again = system.submit_report(WITHDRAWS)
    assert again.status_code == 201, again.text
    assert again.json()["receipt_number"] != w.json()["receipt_number"]

    # Someone else cannot revise or withdraw it (not even learn it exists).
    with system.client("submissions", LATE) as c:
        assert c.put(f"{BASE}/experience-reports/{receipt['submission_id']}", json=body).status_code == 404

    # Every fact so far on the stream (the relay publishes after the commit) before counting what follows.
    eventually_sync(
        lambda: (
            len(_submission_events(system, w.json()["submission_id"])) == 2  # received, withdrawn
            and len(_submission_events(system, again.json()["submission_id"])) == 1
        ),
        timeout=10,
        message="the withdrawal and the new receipt on the stream",
    )
    # 26/10/2023 00:00:00: refused with the deadline named, nothing written, no event.
    system.set_clock("2023-10-26T00:00:00+07:00", rate=0)
    before = len(_submission_events(system))
    late = system.submit_report(LATE, key="too-late")
    assert late.status_code == 409, late.text
    problem = late.json()
    assert "25/10/2023" in problem["detail_vi"] and "+07:00" in problem["detail_vi"]
    assert "25/10/2023" in problem["detail"]
    with system.client("submissions", ON_TIME) as c:
        again = c.put(f"{BASE}/experience-reports/{receipt['submission_id']}", json=report_body())
        assert again.status_code == 409  # no revision after the deadline either
    with system.client("submissions", LATE) as c:
        assert c.get(f"{BASE}/experience-reports").json() == []

    # Intake closes on the shared clock: the part's deadline, with the three receipts accepted on time
    # (every submission.received before the deadline, the withdrawn one included: a receipt is a fact that
    # campaign applied, so it can compare the count with what it holds).
    def general_closure() -> list[dict]:
        return [
            c for c in _closures(system) if c["data"]["part"] == "experience" and not c["data"]["assignee_id"]
        ]

    closed = eventually_sync(general_closure, timeout=15, message="intake.closed for experience")
    assert len(closed) == 1
    assert closed[0]["data"]["accepted_on_time"] == 3
    assert datetime.fromisoformat(closed[0]["data"]["deadline"]) == PART_DEADLINE
    assert closed[0]["id"] == closure_event_id(TENANT, EDITION, "experience", PART_DEADLINE, None)
    assert closed[0]["subject"] == "experience"
    initiative = eventually_sync(
        lambda: [c for c in _closures(system) if c["data"]["part"] == "initiative"],
        timeout=10,
        message="initiative",
    )
    assert initiative[0]["data"]["accepted_on_time"] == 0
    assert len(_submission_events(system)) == before  # the refusals wrote nothing

    # 27/10: the extended official is still admitted; the extension's own closure waits for 29/10 00:00.
    system.set_clock("2023-10-27T10:00:00+07:00", rate=0)
    ext = system.submit_report(EXTENDED, key="extended")
    assert ext.status_code == 201, ext.text
    assert ext.json()["received_at"].startswith("2023-10-27T10:00:00")
    assert system.submit_report(LATE).status_code == 409

    system.set_clock("2023-10-29T00:00:00+07:00", rate=0)
    mine_closed = eventually_sync(
        lambda: [c for c in _closures(system) if c["data"]["assignee_id"] == EXTENDED],
        timeout=15,
        message="intake.closed for the extended assignee",
    )
    assert len(mine_closed) == 1
    assert mine_closed[0]["data"]["accepted_on_time"] == 1
    assert datetime.fromisoformat(mine_closed[0]["data"]["deadline"]) == EXTENDED_DEADLINE
    assert system.submit_report(EXTENDED, body=report_body()).status_code == 409

    # Each closure is one fact: never emitted twice, whatever the job's ticks.
    ids = [c["id"] for c in _closures(system)]
    assert len(ids) == len(set(ids)) == 3
    with system.client("submissions", "p-0004") as c:  # secretariat
        table = c.get(f"{BASE}/intake-closures").json()
    assert {(r["part"], r["assignee_id"], r["accepted_on_time"]) for r in table} == {
        ("experience", None, 3),
        ("initiative", None, 0),
        ("experience", EXTENDED, 1),
    }
    with system.client("submissions", ON_TIME) as c:
        assert c.get(f"{BASE}/intake-closures").status_code == 403
