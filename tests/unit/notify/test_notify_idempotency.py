"""notify's own idempotency, beneath the inbox: the same event applied twice (a replay after the inbox was
rebuilt, a second replica), the timed job run twice, write one message per (event, recipient, channel) and
per (kind, recipient, date). On SQLite, with the real handlers and timed job (no servers)."""

from __future__ import annotations

import sqlalchemy as sa

from services.notify import models
from services.notify.usecases import timed
from shared.service import Runtime
from tests.support.notify import seeded_notify, vn

TENANT = "soctrang-stnmt"


async def test_the_same_event_applied_twice_writes_each_message_once(rt: Runtime) -> None:
    run = await seeded_notify(rt)
    selected = run.event(
        "initiative.selected",
        {
            "submission_id": "s-1",
            "part": "selection",
            "council_id": "initiative-council",
            "unit_id": "u-tnn-ks",
            "authors": [{"person_id": "p-0009", "name": "Thạch Sô Phol", "share": 100}],
            "at": vn("2023-10-20T08:00:00"),
        },
        "s-1",
        vn("2023-10-20T08:00:00"),
    )
    await run.apply(selected)
    await run.apply(selected)  # beyond the inbox: a replay into a rebuilt inbox, or a second replica
    d, i = models.deliveries, models.inapp
    assert await run.count(d, d.c.cause_event_id == selected.id) == 7  # authors, head, council, secretariat
    assert await run.count(i, i.c.cause_event_id == selected.id) == 7


async def test_timed_lists_and_digests_are_one_per_kind_recipient_and_date(rt: Runtime) -> None:
    run = await seeded_notify(rt)
    d = models.deliveries
    async with rt.engine.begin() as conn:
        await conn.execute(
            sa.insert(models.preferences).values(
                tenant=TENANT, person_id="p-0013", mode="digest", language="vi", updated_at=rt.now()
            )
        )
    # two non-urgent messages for the digest person, one urgent
    for i, (type_, data) in enumerate(
        [
            (
                "onlineservice.target.missed",
                {
                    "assignment_id": "a-o",
                    "part": "online90",
                    "unit_id": "u-ccqldd",
                    "at": vn("2023-10-19T10:00:00"),
                    "figures": {"x": 0.1},
                    "targets": {"x": 0.5},
                    "unmet": ["x"],
                },
            ),
            (
                "onlineservice.progress.reported",
                {
                    "assignment_id": "a-o",
                    "part": "online90",
                    "unit_id": "u-ccqldd",
                    "period_start": vn("2023-10-12T00:00:00"),
                    "period_end": vn("2023-10-19T00:00:00"),
                    "figures": {"online_dossier_share": 0.2},
                },
            ),
        ]
    ):
        await run.apply(run.event(type_, data, f"o-{i}", vn("2023-10-19T10:00:00")))
    assert await run.count(d, d.c.status == "held", d.c.recipient == "p-0013") == 2

    at = vn("2023-10-20T08:00:30")
    assert await timed.run_due(rt, at) > 0
    assert await timed.run_due(rt, at) == 0  # a second replica, the next tick: nothing more
    lists = await run.count(d, d.c.template == "mobilisation.daily")
    assert lists == 4  # heads of TNN-KS and CCBVMT, the two union secretaries
    digests = await run.count(d, d.c.template == "digest.daily", d.c.recipient == "p-0013")
    assert digests == 1  # 20/10 07:30 had passed: the held messages of 19/10 went into one digest
    assert await run.count(d, d.c.status == "digested", d.c.recipient == "p-0013") == 2
    async with rt.engine.connect() as conn:
        text = (await conn.execute(sa.select(d.c.text).where(d.c.template == "digest.daily"))).scalar_one()
    assert "Chiến dịch 90 ngày: Chi cục Quản lý đất đai chưa đạt chỉ tiêu" in text
    assert "Chiến dịch 90 ngày: tiến độ Chi cục Quản lý đất đai" in text

    # the next day: a new list per mobiliser, still one each
    await timed.run_due(rt, vn("2023-10-21T08:00:01"))
    await timed.run_due(rt, vn("2023-10-21T09:00:00"))
    assert await run.count(d, d.c.template == "mobilisation.daily") == 8


async def test_quiet_hours_delay_non_urgent_mail_but_never_a_receipt(rt: Runtime) -> None:
    run = await seeded_notify(rt)
    async with rt.engine.begin() as conn:
        await conn.execute(
            sa.insert(models.preferences).values(
                tenant=TENANT,
                person_id="p-0011",
                mode="immediate",
                quiet_from="21:00",
                quiet_to="07:00",
                language="vi",
                updated_at=rt.now(),
            )
        )
    rt.clock.set(vn("2023-10-20T22:00:00"))
    await run.apply(
        run.event(
            "submission.rejected",
            {
                "submission_id": "s-11",
                "kind": "experience_report",
                "part": "experience",
                "author_id": "p-0011",
                "unit_id": "u-tnb-bdkh",
                "at": vn("2023-10-20T22:00:00"),
                "reason": "Trùng",
            },
            "s-11",
            vn("2023-10-20T22:00:00"),
        ),
        run.event(
            "submission.received",
            {
                "submission_id": "s-12",
                "kind": "experience_report",
                "part": "experience",
                "receipt_number": "2023-TN-000012",
                "received_at": vn("2023-10-20T22:00:00"),
                "author_id": "p-0011",
                "unit_id": "u-tnb-bdkh",
                "authors": [{"person_id": "p-0011", "name": "Ngô Thị Bích Ngọc", "share": 100}],
            },
            "s-12",
            vn("2023-10-20T22:00:00"),
        ),
    )
    d = models.deliveries
    async with rt.engine.connect() as conn:
        rows = {
            r.template: r.due_at
            for r in (
                await conn.execute(sa.select(d.c.template, d.c.due_at).where(d.c.recipient == "p-0011"))
            )
        }
    assert rows["submission.received"] is None
    assert rows["submission.rejected"] == vn("2023-10-21T07:00:00")
