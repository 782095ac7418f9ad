"""The 2023 edition through HTTP: an official's experience report reaches every service, once."""

from __future__ import annotations

import json

import httpx
from cloudevents.core.formats.json import JSONFormat

from tests.support.system import EDITION, TENANT, System, report_body
from tests.support.wait import eventually_sync

OFFICIAL = "p-0002"  # Trần Văn Minh, official in the Sóc Trăng branch of VPDKDD (the seed)


def _ledger_points(system: System, person: str) -> float | None:
    with system.client("rewards", person) as c:
        r = c.get(f"/tenants/{TENANT}/editions/{EDITION}/priority-list")
        r.raise_for_status()
        rows = [p for p in r.json()["persons"] if p["person_id"] == person]
        return rows[0]["points"] if rows else None


def _assignment(system: System, person: str) -> dict:
    with system.client("campaign", person) as c:
        r = c.get(
            f"/tenants/{TENANT}/editions/{EDITION}/assignments",
            params={"assignee": person, "part": "experience"},
        )
        r.raise_for_status()
        return r.json()[0]


def test_report_reaches_rewards_campaign_and_notify_once(system: System) -> None:
    r = system.submit_report(OFFICIAL, key="e2e-first-report")
    assert r.status_code == 201, r.text
    receipt = r.json()
    assert receipt["receipt_number"].startswith("2023-TN-")
    assert receipt["received_at"].endswith("+07:00")
    assert receipt["received_at"].startswith("2023-10-20T09:")

    assert eventually_sync(lambda: _ledger_points(system, OFFICIAL), timeout=10, message="ledger entry")
    assert eventually_sync(
        lambda: _assignment(system, OFFICIAL)["status"] == "fulfilled",
        timeout=10,
        message="assignment fulfilled",
    )
    assignment = _assignment(system, OFFICIAL)
    assert assignment["on_time"] is True
    assert assignment["submission_id"] == receipt["submission_id"]

    def receipt_mail():
        assert system.mail is not None
        found = [m for m in system.mail.messages() if receipt["receipt_number"] in str(m["Subject"])]
        return found

    mails = eventually_sync(receipt_mail, timeout=15, message="receipt email")
    assert len(mails) == 1
    mail = mails[0]
    assert "tran.van.minh" in mail["To"].lower() or "minh" in mail["To"].lower()
    text = mail.get_body(preferencelist=("plain",)).get_content()
    assert receipt["receipt_number"] in text
    assert "20/10/2023" in text

    with system.client("notify", OFFICIAL) as c:
        inbox = eventually_sync(
            lambda: c.get(f"/tenants/{TENANT}/inbox").json(), timeout=10, message="in-app entry"
        )
    assert any(receipt["receipt_number"] in json.dumps(e, ensure_ascii=False) for e in inbox)

    # The same POST with the same Idempotency-Key: the same receipt, nothing new.
    again = system.submit_report(OFFICIAL, key="e2e-first-report")
    assert again.status_code == 201
    assert again.json() == receipt
    received = [
        e
        for _, e in system.events()
        if e.get("type") == "submission.received" and e["subject"] == receipt["submission_id"]
    ]
    assert len(received) == 1
    with system.client("rewards", OFFICIAL) as c:
        persons = c.get(f"/tenants/{TENANT}/editions/{EDITION}/priority-list").json()["persons"]
    mine = [p for p in persons if p["person_id"] == OFFICIAL]
    assert len(mine) == 1 and len(mine[0]["reasons"]) == 1

    # A different request without the key is a second report from the same person: refused, nothing written.
    second = system.submit_report(OFFICIAL)
    assert second.status_code == 409
    assert second.json()["detail_vi"]


def test_invalid_reports_are_refused_in_both_languages_and_change_nothing(system: System) -> None:
    person = "p-0005"

    def submission_facts() -> list[dict]:
        # other services keep publishing on their own (notifications, priorities): count intake's facts only
        return [e for _, e in system.events() if e["type"].startswith("submission.")]

    before = len(submission_facts())
    four = system.submit_report(person, body=report_body(["1.004227", "1.000494", "1.001234", "2.000123"]))
    assert four.status_code == 422
    problem = four.json()
    assert four.headers["content-type"].startswith("application/problem+json")
    field = next(e for e in problem["errors"] if e["field"] == "procedures")
    assert "5" in field["message"] and "thủ tục" in field["message_vi"]

    # Five entries, but two are one procedure in its national and provincial forms.
    same = system.submit_report(
        person, body=report_body(["1.004227", "1.004227.000.00.00.H38", "1.000494", "1.001234", "2.000123"])
    )
    assert same.status_code == 422
    assert any(e["field"] == "procedures" for e in same.json()["errors"])

    bad_code = system.submit_report(
        person, body=report_body(["X", "1.000494", "1.001234", "2.000123", "1.004227"])
    )
    assert bad_code.status_code == 422
    err = bad_code.json()["errors"][0]
    assert err["field"] == "procedures[0].code" and "mã thủ tục" in err["message_vi"]

    with system.client("submissions", person) as c:
        mine = c.get(f"/tenants/{TENANT}/editions/{EDITION}/experience-reports").json()
    assert mine == []
    assert len(submission_facts()) == before


def test_authentication_and_tenant_scope(system: System) -> None:
    url = f"{system.url('submissions')}/tenants/{TENANT}/editions/{EDITION}/experience-reports"
    none = httpx.post(url, json=report_body())
    assert none.status_code == 401
    assert none.json()["detail_vi"]
    other = httpx.post(
        url, json=report_body(), headers={"Authorization": f"Bearer {system.token('p-0002', 'other-tenant')}"}
    )
    assert other.status_code == 403
    forged = httpx.post(url, json=report_body(), headers={"Authorization": "Bearer not-a-token"})
    assert forged.status_code == 401


def test_every_event_is_a_structured_cloudevent_with_its_id_as_msg_id(system: System) -> None:
    events = system.events()
    assert events, "the stream is empty"
    types = set()
    for headers, event in events:
        # The official SDK reads it as a structured-mode CloudEvent 1.0, extensions included.
        ce = JSONFormat().read(None, json.dumps(event).encode())
        assert ce.get_specversion() == "1.0"
        assert ce.get_id() == event["id"] and ce.get_type() == event["type"]
        assert ce.get_extension("tenant") == event["tenant"]
        assert headers.get("Nats-Msg-Id") == event["id"]
        for ext in ("tenant", "sequence", "correlationid", "dataschemaversion"):
            assert ext in event, ext
        types.add(event["type"])
    assert {"directory.person.changed", "edition.published", "assignment.created"} <= types


def test_one_correlation_id_ties_the_request_to_every_event_it_caused(system: System) -> None:
    person = "p-0006"
    with system.client("submissions", person) as c:
        r = c.post(
            f"/tenants/{TENANT}/editions/{EDITION}/experience-reports",
            json=report_body(),
            headers={"X-Correlation-ID": "corr-e2e-0006"},
        )
    assert r.status_code == 201, r.text
    assert r.headers["X-Correlation-ID"] == "corr-e2e-0006"
    sid = r.json()["submission_id"]

    def caused() -> dict[str, dict]:
        found = {e["type"]: e for _, e in system.events() if e.get("correlationid") == "corr-e2e-0006"}
        return found if {"submission.received", "assignment.fulfilled"} <= set(found) else {}

    found = eventually_sync(caused, timeout=10, message="events carrying the request's correlation id")
    assert found["submission.received"]["subject"] == sid
    fulfilled = found["assignment.fulfilled"]
    assert fulfilled["causationid"] == found["submission.received"]["id"]
    assert fulfilled["data"]["assignee_id"] == person
