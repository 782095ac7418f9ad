"""The "remind" action (``POST /tenants/{t}/editions/{e}/reminders``) against a real notify process, NATS,
PostgreSQL and SMTP server (``MailSink``): who may remind whom, the reminder in the inbox and by email in
Vietnamese, at most one per person, part and day (a second request answers 409 and sends nothing), the audit
row, and the errors a user can make."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from services.notify import domain
from shared.documents import load_directory, load_edition
from tests.support.faults import query
from tests.support.notify import Facts, body_text, mail_table, mails, run, running_notify
from tests.support.system import SEED, TENANT, System
from tests.support.wait import eventually_sync

AT = datetime.fromisoformat("2023-10-20T09:00:00+07:00")
DEADLINE = datetime(2023, 10, 25, 17, 0, tzinfo=UTC)  # hết ngày 25/10/2023
HEAD = "p-0007"  # Trương Văn Đức, head of u-tnn-ks
TNN = {"p-0008": "linh.lt@example.vn", "p-0009": "phol.ts@example.vn"}  # officials of u-tnn-ks
OTHER = "p-0011"  # Ngô Thị Bích Ngọc, u-tnb-bdkh, member of the union "cd"
CD_SECRETARY = "p-0022"
SECRETARIAT = "p-0004"
URL = f"/tenants/{TENANT}/editions/2023/reminders"


@pytest.fixture
def system(test_servers: Any, unique_prefix: str, tmp_path: Path) -> Iterator[System]:
    with running_notify(test_servers, unique_prefix, tmp_path, AT) as s:
        yield s


def _rows(system: System, sql: str) -> list[Any]:
    return run(query(system.database_urls["notify"], sql))


def _post(system: System, person: str, body: dict[str, Any], key: str | None = None) -> Any:
    with system.client("notify", person) as c:
        return c.post(URL, json=body, headers={"Idempotency-Key": key} if key else {})


def test_a_unit_head_reminds_their_people_once_a_day_in_vietnamese(system: System) -> None:
    directory = load_directory(SEED / "directory.yaml")
    email = {p.id: p.email for p in directory.people}
    facts = Facts(system)
    run(facts.directory(directory, AT))
    run(facts.edition(load_edition(SEED / "edition.yaml"), AT))
    for pid, unit in [("p-0008", "u-tnn-ks"), ("p-0009", "u-tnn-ks"), (OTHER, "u-tnb-bdkh")]:
        run(
            facts.emit(
                "assignment.created",
                {
                    "assignment_id": f"a-exp-{pid}",
                    "part": "experience",
                    "part_kind": "experience_report",
                    "assignee_kind": "person",
                    "assignee_id": pid,
                    "unit_id": unit,
                    "deadline": DEADLINE,
                },
                subject=f"a-exp-{pid}",
                at=AT,
            )
        )
    eventually_sync(
        lambda: (
            len(_rows(system, "SELECT 1 FROM notify_assignments WHERE open")) == 3
            and _rows(system, "SELECT 1 FROM copy_editions")
        ),
        timeout=30,
        message="directory, edition and assignments copied by notify",
    )

    # -- who may not: an official; a head for another unit's person. Nothing is sent.
    r = _post(system, "p-0008", {"part": "experience", "assignees": ["p-0009"]})
    assert r.status_code == 403 and r.headers["content-type"].startswith("application/problem+json"), r.text
    r = _post(system, HEAD, {"part": "experience", "assignees": [OTHER]})
    assert r.status_code == 403, r.text
    assert "Ngô Thị Bích Ngọc" in r.json()["detail_vi"]

    # -- bad input: named fields, Vietnamese messages
    r = _post(system, HEAD, {"part": "nope", "unit": "u-tnn-ks"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "part", r.text
    r = _post(system, HEAD, {"part": "experience"})
    assert r.status_code == 422 and "assignees" in r.json()["errors"][0]["message_vi"], r.text
    r = _post(system, HEAD, {"part": "experience", "assignees": [HEAD]})  # no open assignment of their own
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "assignees", r.text
    assert _rows(system, "SELECT 1 FROM notify_reminders") == []

    # -- the head reminds the unit: both officials, in-app and by email, in Vietnamese
    r = _post(system, HEAD, {"part": "experience", "unit": "u-tnn-ks"}, key="remind-tnn-1")
    assert r.status_code == 200, r.text
    assert r.json()["reminded"] == sorted(TNN) and r.json()["already_reminded"] == []
    retry = _post(system, HEAD, {"part": "experience", "unit": "u-tnn-ks"}, key="remind-tnn-1")
    assert retry.status_code == 200 and retry.json() == r.json()  # a retry: the first answer, nothing sent
    assert r.json()["day"] == "2023-10-20"
    eventually_sync(
        lambda: all(mails(system, email[p], domain.REMINDER) for p in TNN),
        timeout=30,
        message="both reminders reached the SMTP server",
    )
    mail = mails(system, email["p-0009"], domain.REMINDER)[0]
    assert str(mail["Subject"]).startswith("Nhắc nộp:")
    text = body_text(mail)
    assert "Kính gửi Thạch Sô Phol" in text and "hết ngày 25/10/2023" in text and "Trương Văn Đức" in text
    with system.client("notify", "p-0009") as c:
        inbox = [m for m in c.get(f"/tenants/{TENANT}/inbox").json() if m["template"] == domain.REMINDER]
    assert len(inbox) == 1 and "Nhắc nộp" in inbox[0]["title"]
    audit = _rows(system, "SELECT person_id, requested_by, day FROM notify_reminders ORDER BY person_id")
    assert [(a[0], a[1], a[2].isoformat()) for a in audit] == [
        ("p-0008", HEAD, "2023-10-20"),
        ("p-0009", HEAD, "2023-10-20"),
    ]

    # -- again the same day (by the head, or the secretariat): 409, clearly, and nothing sent
    before = mail_table(system)
    r = _post(system, HEAD, {"part": "experience", "unit": "u-tnn-ks"})
    assert r.status_code == 409, r.text
    assert "Đã nhắc" in r.json()["detail_vi"] and r.json()["already_reminded"] == sorted(TNN)
    r = _post(system, SECRETARIAT, {"part": "experience", "assignees": ["p-0009", OTHER]})
    assert r.status_code == 200, r.text  # the secretariat may remind anyone; p-0009 is skipped, told why
    assert r.json()["reminded"] == [OTHER] and r.json()["already_reminded"] == ["p-0009"]
    eventually_sync(
        lambda: mails(system, email[OTHER], domain.REMINDER), timeout=30, message="the secretariat's reminder"
    )
    after = mail_table(system)
    # reminders only: the daily mobilisation lists (another job, on its own clock) may go out meanwhile
    sent = Counter({k: n for k, n in (after - before).items() if k[1] == domain.REMINDER})
    assert sent == {(email[OTHER], domain.REMINDER): 1}

    # -- a union secretary reminds a member (same day: already reminded); the next day they may again
    r = _post(system, CD_SECRETARY, {"part": "experience", "assignees": [OTHER]})
    assert r.status_code == 409, r.text
    system.set_clock(datetime.fromisoformat("2023-10-21T09:00:00+07:00"))
    eventually_sync(
        lambda: _post(system, CD_SECRETARY, {"part": "experience", "assignees": [OTHER]}).status_code == 200,
        timeout=30,
        message="the next day's reminder accepted",
    )
    eventually_sync(
        lambda: len(mails(system, email[OTHER], domain.REMINDER)) == 2,
        timeout=30,
        message="second day's mail",
    )
