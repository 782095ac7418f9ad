"""A forged fact published by an allowed-but-wrong service user (issue 14, item 1): NATS lets campaign publish
``edition.opened``; the envelope inside claims to be submissions' ``submission.received``. Rewards must
dead-letter it (``subject_mismatch``) and nothing anywhere may change. Used against the test servers
(tests/integration/test_nats_auth.py) and the compose stack (tests/e2e/test_compose_deploy.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import nats

from shared.events.envelope import make_event, new_event_id

from .faults import EXPERIENCE, FaultSystem
from .system import DEMO_START, EDITION, TENANT
from .wait import eventually

OTHER = "p-0005"  # has an experience-report assignment in the test seeds, and no submission


async def publish_forged_receipt(fs: FaultSystem, campaign: nats.NATS, unit_id: str) -> tuple[int, str]:
    """Publish, as the campaign user, a ``submission.received`` for ``OTHER`` on the ``edition.opened`` subject;
    return (stream sequence, forged submission id)."""
    sid = new_event_id()
    at = datetime.fromisoformat(DEMO_START)
    forged = make_event(
        "submission.received",
        {
            "submission_id": sid,
            "kind": "experience_report",
            "part": EXPERIENCE,
            "receipt_number": "2023-TN-999777",
            "received_at": at,
            "author_id": OTHER,
            "unit_id": unit_id,
            "authors": [{"person_id": OTHER, "name": "Đặng Minh Tuấn", "share": 100}],
            "procedures": ["1.004227", "1.000494", "1.001234", "2.000123", "1.011442"],
        },
        source="submissions",
        tenant=TENANT,
        edition=EDITION,
        subject=sid,
        sequence=1,
        time=at,
    )
    ack = await campaign.jetstream().publish(
        fs.subject("edition.opened"), forged.to_json(), stream=fs.stream, headers={"Nats-Msg-Id": forged.id}
    )
    assert not ack.duplicate
    return ack.seq, sid


async def assert_dead_lettered_and_nothing_changed(fs: FaultSystem, seq: int, sid: str) -> None:
    async def dead_lettered() -> dict[str, Any] | None:
        for record in await fs.deadletters():
            d = record["data"]
            if d["service"] == "rewards" and d["stream_sequence"] == seq:
                return d  # type: ignore[no-any-return]
        return None

    record = await eventually(dead_lettered, timeout=60, message="rewards dead-letters the forged receipt")
    assert record["reason"] == "subject_mismatch"
    assert record["original_subject"] == fs.subject("edition.opened")
    await eventually(lambda: fs.consumer_drained("rewards"), timeout=30, message="rewards drained")
    snap = await fs.snapshot()
    assert OTHER not in snap.ledger and sid not in snap.ledger_submissions
    assert OTHER not in snap.points or snap.points[OTHER][0] == 0
    assert snap.assignments[OTHER]["status"] == "open"
