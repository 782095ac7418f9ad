"""The read-only dead-letter view every service mounts (``GET /tenants/{t}/dead-letters``, shared/deadletters.py):
the secretariat sees what this service could not apply and why, filtered to the service and the tenant;
nobody else does. notify alone on real NATS (its own generated user and permissions) and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from shared.documents import load_directory
from tests.support.notify import Facts, run, running_notify
from tests.support.system import SEED, TENANT, System
from tests.support.wait import eventually_sync

AT = datetime(2023, 10, 20, 1, 30, tzinfo=UTC)
GHOST = "p-9999"  # not in the directory: notify cannot address the receipt


@pytest.fixture
def system(test_servers: Any, unique_prefix: str, tmp_path: Path) -> Iterator[System]:
    with running_notify(
        test_servers, unique_prefix, tmp_path, AT, HOITHI_MAX_DELIVER="2", HOITHI_NAK_BASE_DELAY="0.1"
    ) as s:
        yield s


def test_the_secretariat_sees_the_services_dead_letters_and_nobody_else_does(system: System) -> None:
    facts = Facts(system)
    run(facts.directory(load_directory(SEED / "directory.yaml"), AT))
    with system.client("notify", "p-0004") as c:
        eventually_sync(
            lambda: c.get(f"/tenants/{TENANT}/dead-letters").status_code == 200,
            timeout=30,
            message="the secretariat known to notify",
        )
        assert c.get(f"/tenants/{TENANT}/dead-letters").json() == []
    env = run(
        facts.emit(
            "submission.received",
            {
                "submission_id": "s-ghost",
                "kind": "experience_report",
                "part": "experience",
                "receipt_number": "2023-TN-999999",
                "received_at": AT,
                "author_id": GHOST,
                "unit_id": "u-vp",
                "authors": [{"person_id": GHOST, "name": "Lê Thị Mai", "share": 100}],
                "procedures": ["1.004227", "1.000494", "1.001234", "2.000123", "1.011442"],
            },
            subject="s-ghost",
            at=AT,
        )
    )
    with system.client("notify", "p-0004") as c:
        [record] = eventually_sync(
            lambda: c.get(f"/tenants/{TENANT}/dead-letters").json(), timeout=30, message="the dead letter"
        )
        r = c.get(f"/tenants/{TENANT}/dead-letters")
        assert r.headers["cache-control"] == "no-store"
    assert record["service"] == "notify" and record["reason"] == "max_deliver_reached"
    assert record["event_type"] == "submission.received" and record["event_id"] == env.id
    assert GHOST in record["error"]
    # the operator's command lists the same record (one piece of code reads the stream for both)
    listed = json.loads(system.hoithi("deadletters", "list", "--json"))
    assert [x["id"] for x in listed] == [record["id"]]

    # an official may not look; another tenant's token is refused for this tenant
    with system.client("notify", "p-0002") as c:
        r = c.get(f"/tenants/{TENANT}/dead-letters")
        assert r.status_code == 403 and "Thường trực Hội thi" in r.json()["detail_vi"], r.text
    with system.client("notify", "p-0004", tenant="other-tenant") as c:
        assert c.get(f"/tenants/{TENANT}/dead-letters").status_code in (401, 403)
