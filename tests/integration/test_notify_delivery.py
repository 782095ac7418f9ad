"""notify against real servers: a scripted run of the 2023 edition through real NATS, PostgreSQL, a real SMTP
server (``MailSink``) and a real HTTP receiver for webhooks, with two notify replicas running side by side.

The run (business clock moved with ``System.set_clock``):

1. 18/10 — directory, edition, experience assignments (ten extra officials in CCBVMT, p-0002, p-0008, p-0016);
   p-0002's report is received (receipt) and fulfils their assignment.
2. 20/10 08:00 — the daily "not yet submitted" lists go to unit heads and union secretaries.
3. a reminder; then the SMTP server is stopped for 60 s (the scenario's own timing) while an extension, a score
   sheet, a selection, a rejection and a 90-day miss arrive, and a replica with a broken template set refuses
   to start; a webhook failing 5 times in a row is disabled and the secretariat told once.
4. 26/10 00:00 — eleven misses and the part's ``deadline.passed``: one summary per unit head and union secretary
   (the head of CCBVMT with ten people who missed gets one) and one to the secretariat; the digest person gets
   one email listing the day's non-urgent messages.
5. every event of the run is delivered again: not one extra message.

The only fixed durations are the SMTP outage (60 s, the acceptance scenario's) and the stream's 1 s duplicate
window let pass before the redelivery; every other wait polls with a deadline.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.notify import domain
from shared.documents import load_directory, load_edition
from tests.support.faults import query
from tests.support.notify import (
    Facts,
    Replica,
    WebhookReceiver,
    body_text,
    extra_officials,
    mail_table,
    mails,
    run,
    running_notify,
    start_mail,
    start_replica,
    stop_mail,
)
from tests.support.system import SEED, TENANT, System
from tests.support.wait import eventually_sync

pytestmark = pytest.mark.fault  # it stops (and restarts) the SMTP server it owns

SMTP_OUTAGE = 60.0  # seconds: the acceptance scenario's own duration
DEADLINE = datetime(2023, 10, 25, 17, 0, tzinfo=UTC)  # 26/10/2023 00:00 +07:00
SECRETARIAT = "p-0004"
DIGEST_PERSON = "p-0013"  # Chi cục trưởng CCQLDD, council member: on a daily digest
TEN = [f"p-x{i:03d}" for i in range(10)]  # extra officials of CCBVMT


def vn(text: str) -> datetime:
    return datetime.fromisoformat(text + "+07:00")


@pytest.fixture
def system(test_servers, unique_prefix: str, tmp_path: Path) -> Iterator[System]:  # type: ignore[no-untyped-def]
    with running_notify(
        test_servers,
        unique_prefix,
        tmp_path,
        vn("2023-10-18T09:00:00"),  # before the mobilisation window opens (19/10)
        HOITHI_DUPLICATE_WINDOW="1",
        HOITHI_NOTIFY_RETRY_BASE_SECONDS="0.5",
        HOITHI_NOTIFY_RETRY_MAX_SECONDS="3",
        HOITHI_NOTIFY_MAX_ATTEMPTS="100",
    ) as sys_:
        yield sys_


def _rows(system: System, sql: str, *args: Any) -> list[Any]:
    return run(query(system.database_urls["notify"], sql, *args))


def test_scripted_2023_run_sends_exactly_the_expected_messages_once(
    system: System, receiver: WebhookReceiver, tmp_path: Path
) -> None:
    directory = load_directory(SEED / "directory.yaml")
    directory = directory.model_copy(
        update={"people": directory.people + extra_officials("u-ccbvmt", 10, directory.people[-1])}
    )
    email = {p.id: p.email for p in directory.people}
    edition = load_edition(SEED / "edition.yaml")
    facts = Facts(system)
    replicas: list[Replica] = []
    try:
        second = start_replica(system, "notify-2")
        replicas.append(second)
        second.wait_ready()

        # -- 1. 18/10: the directory, the edition, the assignments; a report received
        at = vn("2023-10-18T09:00:00")
        run(facts.directory(directory, at))
        run(facts.edition(edition, at))
        eventually_sync(
            lambda: (
                _rows(system, "SELECT 1 FROM copy_people WHERE person_id = 'p-x009'")
                and _rows(system, "SELECT 1 FROM copy_editions")
            ),
            timeout=20,
            message="directory and edition copied",
        )
        # -- subscriptions and preferences, through the API
        with system.client("notify", SECRETARIAT) as c:
            r = c.post(
                f"/tenants/{TENANT}/webhooks", json={"url": receiver.url + "/hooks", "secret": "s" * 32}
            )
            assert r.status_code == 201, r.text
            hooks_id = r.json()["id"]
            failing = {
                "url": receiver.url + "/failing",
                "secret": "f" * 32,
                "event_types": ["initiative.scored"],
            }
            r = c.post(f"/tenants/{TENANT}/webhooks", json=failing, headers={"Idempotency-Key": "hook-2"})
            assert r.status_code == 201, r.text
            failing_id = r.json()["id"]
            # a retry with the same key is the same subscription (same id), never a second one
            again = c.post(f"/tenants/{TENANT}/webhooks", json=failing, headers={"Idempotency-Key": "hook-2"})
            assert again.status_code == 201 and again.json()["id"] == failing_id, again.text
            bad = c.post(
                f"/tenants/{TENANT}/webhooks", json={"url": receiver.url, "event_types": ["deadline.nope"]}
            )
            assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "event_types"
            # SSRF: internal addresses beyond the allow-list, in any spelling, and credentials are refused
            for url in (
                "http://2130706434/",  # 127.0.0.2
                "http://0x0a000001/",  # 10.0.0.1
                "http://[::1]:4222/",
                "http://169.254.169.254/latest/meta-data/",
                "http://metadata.google.internal/",
                "https://user:pw@hooks.example.com/",
            ):
                bad = c.post(f"/tenants/{TENANT}/webhooks", json={"url": url})
                assert bad.status_code == 422, (url, bad.text)
                (err,) = bad.json()["errors"]
                assert err["field"] == "url" and err["message_vi"], bad.json()
            assert len(c.get(f"/tenants/{TENANT}/webhooks").json()) == 2
        with system.client("notify", DIGEST_PERSON) as c:
            r = c.put(f"/tenants/{TENANT}/preferences/me", json={"mode": "digest"})
            assert r.status_code == 200, r.text
            assert c.post(f"/tenants/{TENANT}/webhooks", json={"url": receiver.url}).status_code == 403

        assignees = {pid: directory.person(pid).unit for pid in [*TEN, "p-0002", "p-0008", "p-0016"]}
        created = {}
        for pid, unit in assignees.items():
            created[pid] = facts.event(
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
                at=at,
            )
        run(facts.publish(*created.values()))
        received = run(
            facts.emit(
                "submission.received",
                {
                    "submission_id": "s-0002",
                    "kind": "experience_report",
                    "part": "experience",
                    "receipt_number": "2023-TN-000001",
                    "received_at": vn("2023-10-18T09:00:05"),
                    "author_id": "p-0002",
                    "unit_id": "u-vpdkdd-cn1",
                    "authors": [{"person_id": "p-0002", "name": "Trần Văn Minh", "share": 100}],
                    "procedures": ["1.004227", "1.000494", "1.001234", "2.000123", "1.011442"],
                },
                subject="s-0002",
                at=vn("2023-10-18T09:00:05"),
            )
        )
        run(
            facts.emit(
                "assignment.fulfilled",
                {
                    "assignment_id": "a-exp-p-0002",
                    "part": "experience",
                    "assignee_kind": "person",
                    "assignee_id": "p-0002",
                    "unit_id": "u-vpdkdd-cn1",
                    "submission_id": "s-0002",
                    "fulfilled_at": vn("2023-10-18T09:00:05"),
                    "deadline": DEADLINE,
                    "on_time": True,
                },
                subject="a-exp-p-0002",
                at=vn("2023-10-18T09:00:05"),
            )
        )
        eventually_sync(
            lambda: mails(system, email["p-0002"], "submission.received"), timeout=20, message="receipt"
        )
        eventually_sync(
            lambda: _rows(
                system, "SELECT 1 FROM notify_assignments WHERE NOT open AND assignee_id = 'p-0002'"
            ),
            timeout=20,
            message="assignments folded",
        )
        receipt = body_text(mails(system, email["p-0002"], "submission.received")[0])
        assert "Thời điểm tiếp nhận: 18/10/2023 09:00:05 (+07:00)" in receipt

        # -- 2. 20/10 08:00: the daily lists
        system.set_clock(vn("2023-10-20T08:00:30"))
        lists = {"p-0015": 11, "p-0007": 1, "p-0012": 2, "p-0022": 1}
        for pid in lists:
            eventually_sync(
                lambda pid=pid: mails(system, email[pid], "mobilisation.daily"), timeout=20, message=pid
            )
        ccbvmt = body_text(mails(system, email["p-0015"], "mobilisation.daily")[0])
        assert "11 người trong phạm vi Ông/Bà vận động chưa nộp" in ccbvmt, ccbvmt
        assert "Kim Văn Sơn" in ccbvmt and "Cán bộ Thử nghiệm 009" in ccbvmt and "Trần Văn Minh" not in ccbvmt

        run(
            facts.emit(
                "deadline.approaching",
                {
                    "assignment_id": "a-exp-p-0008",
                    "part": "experience",
                    "assignee_kind": "person",
                    "assignee_id": "p-0008",
                    "unit_id": "u-tnn-ks",
                    "deadline": DEADLINE,
                    "offset": "P3D",
                },
                subject="a-exp-p-0008",
                at=vn("2023-10-20T08:01:00"),
            )
        )
        eventually_sync(
            lambda: mails(system, email["p-0008"], "deadline.approaching"), timeout=20, message="reminder"
        )

        # -- 3. the SMTP server stopped for 60 s while facts keep arriving
        port = stop_mail(system)
        outage_started = time.monotonic()
        before = sum(mail_table(system).values())
        during = [
            facts.event(
                "deadline.extended",
                {
                    "assignment_id": "a-exp-p-0016",
                    "part": "experience",
                    "assignee_kind": "person",
                    "assignee_id": "p-0016",
                    "previous_deadline": DEADLINE,
                    "new_deadline": datetime(2023, 10, 27, 17, 0, tzinfo=UTC),
                    "reason": "Đi công tác theo Quyết định số 12/QĐ-STNMT",
                    "approved_by": SECRETARIAT,
                },
                subject="a-exp-p-0016",
                at=vn("2023-10-20T08:02:00"),
            ),
            facts.event(
                "initiative.scored",
                {
                    "submission_id": "s-init-1",
                    "part": "selection",
                    "council_id": "initiative-council",
                    "member_id": "p-0007",
                    "scores": {"novelty": 25, "applicability": 25, "effectiveness": 30},
                    "total": 80,
                    "at": vn("2023-10-20T08:03:00"),
                },
                subject="s-init-1",
                at=vn("2023-10-20T08:03:00"),
            ),
            facts.event(
                "initiative.selected",
                {
                    "submission_id": "s-init-1",
                    "part": "selection",
                    "council_id": "initiative-council",
                    "unit_id": "u-tnn-ks",
                    "authors": [{"person_id": "p-0009", "name": "Thạch Sô Phol", "share": 100}],
                    "score": 80,
                    "rank": 1,
                    "at": vn("2023-10-20T08:04:00"),
                },
                subject="s-init-1",
                at=vn("2023-10-20T08:04:00"),
            ),
            facts.event(
                "submission.rejected",
                {
                    "submission_id": "s-0011",
                    "kind": "experience_report",
                    "part": "experience",
                    "author_id": "p-0011",
                    "unit_id": "u-tnb-bdkh",
                    "at": vn("2023-10-20T08:05:00"),
                    "reason": "Các thủ tục trùng nhau",
                },
                subject="s-0011",
                at=vn("2023-10-20T08:05:00"),
            ),
            facts.event(
                "onlineservice.target.missed",
                {
                    "assignment_id": "a-online-ccqldd",
                    "part": "online90",
                    "unit_id": "u-ccqldd",
                    "at": vn("2023-10-20T08:06:00"),
                    "figures": {"online_dossier_share": 0.3},
                    "targets": {"online_dossier_share": 0.5},
                    "unmet": ["online_dossier_share"],
                },
                subject="a-online-ccqldd",
                at=vn("2023-10-20T08:06:00"),
            ),
        ]
        run(facts.publish(*during))

        # a replica with a broken template set refuses to start, naming file and line; nothing queued is lost
        broken = tmp_path / "broken-templates"
        (broken / "vi").mkdir(parents=True)
        bad_file = broken / "vi" / "deadline.missed.j2"
        bad_file.write_text(
            "{% block subject %}Quá hạn{% endblock %}\n{% block text %}{% for x in %}\n", "utf-8"
        )
        refused = start_replica(system, "notify-broken", HOITHI_NOTIFY_TEMPLATES_DIR=str(broken))
        replicas.append(refused)
        assert refused.wait_exit(60) != 0
        assert f"{bad_file}:2" in refused.log(), refused.log()[-2000:]

        # the failing webhook: 5 failures in a row, then disabled (the notice waits for SMTP like the rest)
        def disabled() -> bool:
            with system.client("notify", SECRETARIAT) as c:
                hooks = {h["id"]: h for h in c.get(f"/tenants/{TENANT}/webhooks").json()}
            return hooks[failing_id]["enabled"] is False

        eventually_sync(disabled, timeout=30, message="the failing webhook disabled")
        assert len(receiver.on("/failing")) == domain.WEBHOOK_FAILURES_TO_DISABLE

        pending = _rows(
            system, "SELECT count(*) AS n FROM deliveries WHERE channel = 'email' AND status = 'pending'"
        )[0]["n"]
        assert pending >= 10  # everything of the outage waits in the queue
        assert _rows(
            system, "SELECT 1 FROM deliveries WHERE channel = 'email' AND attempts > 0 AND status = 'pending'"
        )
        assert sum(mail_table(system).values()) == before  # the server is down: nothing arrived meanwhile
        time.sleep(max(0.0, SMTP_OUTAGE - (time.monotonic() - outage_started)))  # the outage's own duration
        start_mail(system, port)

        # -- 4. the deadline passes: misses, summaries; the digest of the digest person
        system.set_clock(vn("2023-10-26T00:00:30"))
        missed = [*TEN, "p-0008"]
        run(
            facts.publish(
                *[
                    facts.event(
                        "deadline.missed",
                        {
                            "assignment_id": f"a-exp-{pid}",
                            "part": "experience",
                            "part_kind": "experience_report",
                            "assignee_kind": "person",
                            "assignee_id": pid,
                            "unit_id": assignees[pid],
                            "deadline": DEADLINE,
                        },
                        subject=f"a-exp-{pid}",
                        at=DEADLINE,
                    )
                    for pid in missed
                ],
                facts.event(
                    "deadline.passed",
                    {
                        "part": "experience",
                        "deadline": DEADLINE,
                        "assigned": 13,
                        "fulfilled": 1,
                        "missed_by_unit": {"u-ccbvmt": TEN, "u-tnn-ks": ["p-0008"]},
                    },
                    subject="experience",
                    at=DEADLINE,
                ),
            )
        )

        expected: Counter[tuple[str, str]] = Counter()

        def add(pids: list[str], template: str) -> None:
            for pid in pids:
                expected[(email[pid], template)] += 1

        add(["p-0002"], "submission.received")
        add(list(lists), "mobilisation.daily")
        add(["p-0008"], "deadline.approaching")
        add(["p-0016"], "deadline.extended")
        add(["p-0001"], "initiative.scored")
        add(["p-0009", "p-0007", "p-0001", "p-0018", "p-0021", SECRETARIAT], "initiative.selected")
        add(["p-0011", "p-0010"], "submission.rejected")
        add([SECRETARIAT], domain.WEBHOOK_DISABLED)
        add(missed, "deadline.missed")
        add(["p-0015", "p-0007", "p-0012", "p-0022"], "deadline.passed.mobiliser")
        add([SECRETARIAT, "p-0003"], "deadline.passed.secretariat")  # and the director
        add([DIGEST_PERSON], domain.DIGEST)

        eventually_sync(
            lambda: _table_is(system, expected),
            timeout=60,
            message="every expected message after the SMTP server returned",
        )

        summary = body_text(mails(system, email["p-0015"], "deadline.passed.mobiliser")[0])
        assert "10 người chưa nộp" in summary and all(
            f"Cán bộ Thử nghiệm {i:03d}" in summary for i in range(10)
        )
        digest = body_text(mails(system, email[DIGEST_PERSON], domain.DIGEST)[0])
        assert "Sáng kiến được chọn dự thi cấp tỉnh (hạng 1)" in digest
        assert "Chiến dịch 90 ngày: Chi cục Quản lý đất đai chưa đạt chỉ tiêu" in digest
        assert "2 thông báo" in str(mails(system, email[DIGEST_PERSON], domain.DIGEST)[0]["Subject"])

        # webhooks: every forwarded event once, signed with the shared secret; the failing one disabled once
        forwarded = {e.id for e in facts.sent if not e.type.startswith(("directory.", "edition."))}
        eventually_sync(
            lambda: set(receiver.event_ids("/hooks")) == forwarded, timeout=30, message="webhooks"
        )
        assert all(n == 1 for n in receiver.event_ids("/hooks").values())
        for req in receiver.on("/hooks"):
            assert domain.signature_valid("s" * 32, req.body, req.headers["X-Hoithi-Signature"])
            assert not domain.signature_valid("f" * 32, req.body, req.headers["X-Hoithi-Signature"])
        assert len(receiver.on("/failing")) == domain.WEBHOOK_FAILURES_TO_DISABLE

        # in-app: the same messages in the inbox, an unread count, mark read
        with system.client("notify", "p-0015") as c:
            inbox = c.get(f"/tenants/{TENANT}/inbox").json()
            assert {m["template"] for m in inbox} == {"mobilisation.daily", "deadline.passed.mobiliser"}
            assert c.get(f"/tenants/{TENANT}/inbox/unread-count").json() == {"unread": 2}
            assert c.post(f"/tenants/{TENANT}/inbox/{inbox[0]['id']}/read").status_code == 200
            assert c.get(f"/tenants/{TENANT}/inbox/unread-count").json() == {"unread": 1}
            log = c.get(f"/tenants/{TENANT}/deliveries", params={"person": "p-0015"})
            assert log.headers["cache-control"] == "no-store"  # personal data: addresses, messages
            mine = log.json()
            assert {d["status"] for d in mine} == {"sent"} and len(mine) == 2
            assert c.get(f"/tenants/{TENANT}/deliveries").status_code == 403

        # the delivery log, per event and per state
        with system.client("notify", SECRETARIAT) as c:
            per_event = c.get(f"/tenants/{TENANT}/deliveries", params={"event": received.id}).json()
            assert sorted((d["channel"], d["recipient"], d["status"]) for d in per_event) == [
                ("email", "p-0002", "sent"),
                ("webhook", hooks_id, "sent"),
            ]
            assert c.get(f"/tenants/{TENANT}/deliveries", params={"status": "failed"}).json() == []
            paused = c.get(f"/tenants/{TENANT}/deliveries", params={"status": "paused"}).json()
            assert [(d["channel"], d["recipient"]) for d in paused] == [("webhook", failing_id)]
            # only the status code is recorded, never what the endpoint answered
            assert paused[0]["last_error"] == "RuntimeError: HTTP 500", paused[0]["last_error"]
            # the receiver is fixed and the subscription enabled again: what it missed is sent
            receiver.failing.clear()
            assert c.post(f"/tenants/{TENANT}/webhooks/{failing_id}/enable").json()["enabled"] is True
        eventually_sync(
            lambda: len(receiver.on("/failing")) == domain.WEBHOOK_FAILURES_TO_DISABLE + 1,
            timeout=20,
            message="the paused delivery sent after enabling",
        )

        # -- 5. every event of the run delivered again, to two replicas: not one extra message
        run(facts.redeliver_all())  # each copy stored as new once its duplicate window has passed
        eventually_sync(lambda: _drained(system), timeout=30, message="redelivered copies consumed")
        eventually_sync(
            lambda: (
                not _rows(system, "SELECT 1 FROM deliveries WHERE status = 'pending' AND channel = 'email'")
            ),
            timeout=20,
        )
        assert mail_table(system) == expected
        assert all(n == 1 for n in receiver.event_ids("/hooks").values())
        copies = [e for _, e in system.events() if e.get("id") == received.id]
        assert len(copies) == 2  # the copy passed the stream's window: the inbox is what dropped it
        # one replica at a time sends (the delivery lease): the run was sent, by whichever held it
        assert '"event": "sent ' in system.log("notify") + second.log()
    finally:
        for r in replicas:
            r.stop()


def _table_is(system: System, expected: Counter[tuple[str, str]]) -> bool:
    got = mail_table(system)
    assert got == expected, {"missing": expected - got, "extra": got - expected}
    return True


def _drained(system: System) -> bool:
    async def info() -> bool:
        import nats

        nc = await nats.connect(system.nats_url)
        try:
            ci = await nc.jetstream().consumer_info(system.stream, "notify-facts-v3")
            return ci.num_pending == 0 and ci.num_ack_pending == 0
        finally:
            await nc.close()

    return bool(run(info()))


def _json(r: httpx.Response) -> Any:
    return json.loads(r.text)
