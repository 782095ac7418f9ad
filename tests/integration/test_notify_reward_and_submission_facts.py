"""notify receives what README's event table promises it: webhooks get ``submission.revised``, ``.withdrawn``
and ``.reinstated``; a participant who gains or loses eligibility for a title is told (in-app and email, in
Vietnamese), and a mere move in rank tells nobody. notify alone, on real NATS, PostgreSQL and SMTP; the facts
are published raw, exactly as submissions and rewards publish them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from shared.documents import load_directory, load_edition
from tests.support.faults import query
from tests.support.notify import Facts, WebhookReceiver, body_text, mails, run, running_notify
from tests.support.system import SEED, TENANT, System
from tests.support.wait import eventually_sync

SECRETARIAT = "p-0004"
AUTHOR = "p-0009"  # Thạch Sô Phol, TNN-KS
AUTHOR_EMAIL = "phol.ts@example.vn"
UNIT = "u-tnn-ks"
UNIT_HEAD = "p-0007"
AT = datetime.fromisoformat("2023-10-20T09:00:00+07:00")


@pytest.fixture
def system(test_servers: Any, unique_prefix: str, tmp_path: Path) -> Iterator[System]:
    with running_notify(test_servers, unique_prefix, tmp_path, AT) as s:
        yield s


def _inbox(system: System, person: str) -> list[dict[str, Any]]:
    with system.client("notify", person) as c:
        r = c.get(f"/tenants/{TENANT}/inbox")
        r.raise_for_status()
        return [m for m in r.json() if m["template"] == "reward.priority.changed"]


def _standing(rank: int, points: float, eligibility: list[str], kind: str = "person") -> dict[str, Any]:
    return {
        "participant_kind": kind,
        "participant_id": AUTHOR if kind == "person" else UNIT,
        "rank": rank,
        "points": points,
        "eligibility": eligibility,
        "reasons": [
            {"vi": "Là tác giả sáng kiến được Hội đồng chọn", "en": "Author of a selected initiative"}
        ],
        "rules_version": 1,
    }


def test_webhooks_get_every_submission_change_and_people_hear_of_eligibility_gained_or_lost(
    system: System, receiver: WebhookReceiver
) -> None:
    facts = Facts(system)
    run(facts.directory(load_directory(SEED / "directory.yaml"), AT))
    run(facts.edition(load_edition(SEED / "edition.yaml"), AT))
    eventually_sync(
        lambda: (
            run(query(system.database_urls["notify"], "SELECT 1 FROM copy_people WHERE person_id = 'p-0028'"))
            and run(query(system.database_urls["notify"], "SELECT 1 FROM copy_editions"))
        ),
        timeout=30,
        message="directory and edition copied by notify",
    )
    with system.client("notify", SECRETARIAT) as c:
        r = c.post(
            f"/tenants/{TENANT}/webhooks",
            json={"url": receiver.url + "/changes", "secret": "s" * 32, "event_types": ["submission.*"]},
        )
        assert r.status_code == 201, r.text

    # -- a report revised, withdrawn, then (another one) rejected and reinstated: each reaches the webhook
    base = {
        "submission_id": "s-1",
        "kind": "experience_report",
        "part": "experience",
        "author_id": AUTHOR,
        "unit_id": UNIT,
        "at": AT,
    }
    envs = [
        facts.event("submission.revised", {**base, "revision": 2}, subject="s-1", at=AT),
        facts.event("submission.withdrawn", base, subject="s-1", at=AT),
        facts.event(
            "submission.rejected",
            {**base, "submission_id": "s-2", "reason": "Trùng thủ tục"},
            subject="s-2",
            at=AT,
        ),
        facts.event("submission.reinstated", {**base, "submission_id": "s-2"}, subject="s-2", at=AT),
    ]
    run(facts.publish(*envs))

    def delivered() -> set[str]:
        return {json.loads(r.body)["type"] for r in receiver.on("/changes")}

    eventually_sync(
        lambda: (
            delivered()
            >= {"submission.revised", "submission.withdrawn", "submission.rejected", "submission.reinstated"}
        ),
        timeout=30,
        message="every submission change at the webhook",
    )

    # -- standings: ranked with no title (nothing), eligible (told), a rank move (nothing), lost (told)
    def standing(*args: Any, **kw: Any) -> None:
        s = _standing(*args, **kw)
        run(facts.emit("reward.priority.changed", s, subject=s["participant_id"], at=AT))

    standing(3, 2.0, [])
    standing(1, 7.0, ["chien_si_thi_dua_co_so"])
    [gained] = eventually_sync(lambda: _inbox(system, AUTHOR), timeout=30, message="eligibility gained")
    assert "đủ điều kiện" in gained["title"] and "Chiến sĩ thi đua cơ sở" in gained["title"]
    assert "đã đủ điều kiện đề nghị: Chiến sĩ thi đua cơ sở" in gained["body"]
    standing(2, 7.0, ["chien_si_thi_dua_co_so"])  # overtaken: only the rank moved
    standing(4, 2.0, [])
    messages = eventually_sync(
        lambda: m if len(m := _inbox(system, AUTHOR)) >= 2 else None, timeout=30, message="eligibility lost"
    )
    assert len(messages) == 2  # the rank moves told nobody
    assert any("không còn đủ điều kiện đề nghị: Chiến sĩ thi đua cơ sở" in m["body"] for m in messages)
    # the same, by email (Vietnamese, the recipient's default)
    sent = eventually_sync(
        lambda: m if len(m := mails(system, AUTHOR_EMAIL, "reward.priority.changed")) >= 2 else None,
        timeout=30,
        message="two emails",
    )
    assert any("Chiến sĩ thi đua cơ sở" in body_text(m) for m in sent)

    # -- a unit's evidence: its head is told
    standing(1, 9.0, ["tap_the_lao_dong_tien_tien_evidence"], kind="unit")
    [unit_msg] = eventually_sync(lambda: _inbox(system, UNIT_HEAD), timeout=30, message="the unit head told")
    assert "Minh chứng Tập thể lao động tiên tiến" in unit_msg["body"]
    assert _inbox(system, AUTHOR) == messages  # not the author again
