"""notify's own idempotency, beneath the inbox: the same event applied twice (a replay after the inbox was
rebuilt, a second replica), the timed job run twice, write one message per (event, recipient, channel) and
per (kind, recipient, date). On SQLite, with the real handlers and timed job (no servers)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from services.notify import app, handlers, models, timed
from shared.documents import load_directory, load_edition
from shared.events.envelope import Envelope, make_event
from shared.service import Runtime, build_runtime
from shared.settings import Settings, service_settings

SEED = Path(__file__).resolve().parents[2] / "deploy" / "seed" / "soctrang-stnmt-2023"
TENANT = "soctrang-stnmt"
DEADLINE = datetime(2023, 10, 25, 17, 0, tzinfo=UTC)


def vn(text: str) -> datetime:
    return datetime.fromisoformat(text + "+07:00")


@pytest.fixture
async def rt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Runtime]:
    monkeypatch.setenv("HOITHI_NOTIFY_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'notify.db'}")
    settings = Settings(env="test", data_dir=tmp_path, clock_simulated_at=vn("2023-10-18T09:00:00"))
    runtime = build_runtime(app.SPEC, settings, service_settings("notify", settings))
    async with runtime.engine.begin() as conn:
        await conn.run_sync(models.metadata.create_all)
    try:
        yield runtime
    finally:
        await runtime.engine.dispose()


class Run:
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.handlers = handlers.build(rt)["facts"]
        self.seq: dict[str, int] = {}

    def event(
        self, type_: str, data: Any, subject: str, at: datetime, edition: str | None = "2023"
    ) -> Envelope:
        self.seq[subject] = self.seq.get(subject, 0) + 1
        env = make_event(
            type_,
            data,
            source="test",
            tenant=TENANT,
            subject=subject,
            sequence=self.seq[subject],
            time=at,
            edition=edition,
        )
        return Envelope.from_json(env.to_json())

    async def apply(self, *envs: Envelope) -> None:
        async with self.rt.engine.begin() as conn:
            for env in envs:
                await self.handlers[env.type](conn, env)

    async def count(self, table: sa.Table, *where: Any) -> int:
        async with self.rt.engine.connect() as conn:
            return int(
                (await conn.execute(sa.select(sa.func.count()).select_from(table).where(*where))).scalar_one()
            )


async def _seeded(rt: Runtime) -> Run:
    run = Run(rt)
    at = vn("2023-10-18T09:00:00")
    d = load_directory(SEED / "directory.yaml")
    await run.apply(
        *[run.event("directory.unit.changed", {"unit": u}, u.id, at, None) for u in d.units],
        *[run.event("directory.unit.changed", {"union": u}, u.id, at, None) for u in d.unions],
        *[run.event("directory.person.changed", {"person": p}, p.id, at, None) for p in d.people],
        run.event(
            "edition.published", {"version": 1, "document": load_edition(SEED / "edition.yaml")}, "2023", at
        ),
        *[
            run.event(
                "assignment.created",
                {
                    "assignment_id": f"a-{pid}",
                    "part": "experience",
                    "part_kind": "experience_report",
                    "assignee_kind": "person",
                    "assignee_id": pid,
                    "unit_id": unit,
                    "deadline": DEADLINE,
                },
                f"a-{pid}",
                at,
            )
            for pid, unit in (("p-0008", "u-tnn-ks"), ("p-0016", "u-ccbvmt"))
        ],
    )
    return run


async def test_the_same_event_applied_twice_writes_each_message_once(rt: Runtime) -> None:
    run = await _seeded(rt)
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
    run = await _seeded(rt)
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
    run = await _seeded(rt)
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
