"""A fact one service could not apply is dead-lettered, and a replay hands it back to that service only."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path

import nats
import pytest

from shared.events.envelope import make_event
from shared.settings import SERVICES
from tests.support.system import EDITION, TENANT, System
from tests.support.wait import eventually_sync

GHOST = "p-9999"  # not in the directory when the receipt arrives


def _publish(system: System, *envs) -> None:  # type: ignore[no-untyped-def]
    async def go() -> None:
        nc = await nats.connect(system.nats_url)
        js = nc.jetstream()
        for env in envs:
            await js.publish(
                f"{system.prefix}.{TENANT}.{env.type}",
                env.to_json(),
                headers={"Nats-Msg-Id": env.id},
                stream=system.stream,
            )
        await nc.close()

    asyncio.run(go())


@pytest.fixture
def system(test_servers, tmp_path: Path, unique_prefix: str):  # type: ignore[no-untyped-def]
    s = System(
        nats_url=test_servers.nats_url,
        prefix=unique_prefix,
        workdir=tmp_path,
        database_urls={n: f"sqlite+aiosqlite:///{tmp_path / f'{n}.db'}" for n in SERVICES},
        # Two deliveries, so the test reaches "last allowed delivery failed" in well under a second.
        extra_env={"HOITHI_MAX_DELIVER": "2", "HOITHI_NAK_BASE_DELAY": "0.1"},
    )
    s.start()
    yield s
    s.stop()


def test_a_dead_lettered_fact_replays_into_the_one_service_that_failed_it(system: System) -> None:
    now = datetime(2023, 10, 20, 1, 30, tzinfo=UTC)  # 08:30 +07:00, before the demo clock starts
    received = make_event(
        "submission.received",
        {
            "submission_id": "s-ghost",
            "kind": "experience_report",
            "part": "experience",
            "receipt_number": "2023-TN-999999",
            "received_at": now,
            "author_id": GHOST,
            "unit_id": "u-vp",
            "authors": [{"person_id": GHOST, "name": "Lê Thị Mai", "share": 100}],
            "procedures": ["1.004227", "1.000494", "1.001234", "2.000123", "1.011442"],
        },
        source="submissions",
        tenant=TENANT,
        edition=EDITION,
        subject="s-ghost",
        sequence=1,
        time=now,
    )
    _publish(system, received)

    # notify cannot address a person it does not know: after its last delivery, a dead letter.
    def dead_letters() -> list[dict]:
        return [e for _, e in system.events(f"{system.stream}_DL") if e.get("type") == "deadletter.recorded"]

    [record] = eventually_sync(dead_letters, timeout=20, message="a dead letter from notify")
    assert record["data"]["service"] == "notify"
    assert record["data"]["reason"] == "max_deliver_reached"
    assert "p-9999" in record["data"]["error"]
    listed = json.loads(system.hoithi("deadletters", "list", "--json"))
    assert [r["id"] for r in listed] == [record["id"]]

    # rewards applied it meanwhile, once.
    with system.client("rewards", "p-0001") as c:

        def ghost_points() -> list[dict]:
            persons = c.get(f"/tenants/{TENANT}/editions/{EDITION}/priority-list").json()["persons"]
            return [p for p in persons if p["person_id"] == GHOST]

        assert len(eventually_sync(ghost_points, timeout=10)[0]["reasons"]) == 1

    # The directory learns the person; the operator replays the dead letter.
    person = make_event(
        "directory.person.changed",
        {
            "person": {
                "id": GHOST,
                "name": "Lê Thị Mai",
                "email": "mai.lt@example.vn",
                "title": "Chuyên viên",
                "unit": "u-vp",
                "roles": ["official"],
            }
        },
        source="campaign",
        tenant=TENANT,
        subject=GHOST,
        sequence=1,
        time=now,
    )
    _publish(system, person)
    out = system.hoithi("deadletters", "replay", record["id"])
    assert "notify" in out

    with system.client("notify", GHOST) as c:
        inbox = eventually_sync(
            lambda: c.get(f"/tenants/{TENANT}/inbox").json(), timeout=15, message="replayed receipt"
        )
    assert any("2023-TN-999999" in json.dumps(e, ensure_ascii=False) for e in inbox)
    assert system.mail is not None
    eventually_sync(
        lambda: [m for m in system.mail.messages() if "2023-TN-999999" in str(m["Subject"])],
        timeout=15,
        message="mail",
    )

    # The replay went to notify alone: rewards still counts the fact once, and the original id was kept.
    with system.client("rewards", "p-0001") as c:
        persons = c.get(f"/tenants/{TENANT}/editions/{EDITION}/priority-list").json()["persons"]
    assert len(next(p for p in persons if p["person_id"] == GHOST)["reasons"]) == 1
    replays = [e for _, e in system.events(f"{system.stream}_REPLAY")]
    assert [e["id"] for e in replays] == [received.id]


def test_deadletters_list_on_an_empty_stream_says_there_are_none(
    test_servers, tmp_path: Path, unique_prefix: str
) -> None:  # type: ignore[no-untyped-def]
    """A fresh deployment has no dead letters: the operator's first look must not crash."""
    s = System(
        nats_url=test_servers.nats_url,
        prefix=unique_prefix,
        workdir=tmp_path,
        database_urls={n: f"sqlite+aiosqlite:///{tmp_path / f'{n}.db'}" for n in SERVICES},
    )
    s.hoithi("streams")
    assert "no dead letters" in s.hoithi("deadletters", "list")
    assert json.loads(s.hoithi("deadletters", "list", "--json")) == []
