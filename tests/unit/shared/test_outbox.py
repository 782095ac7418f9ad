"""The outbox relay on a real SQLite database with a fake JetStream: mark after ack, retry, never abandon."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from shared.clock import Clock
from shared.outbox import Outbox, OutboxRelay
from shared.settings import Settings
from tests.support.consumers import FlakyJS, sqlite_backbone

T = datetime(2023, 10, 20, 2, 0, tzinfo=UTC)


async def _setup(tmp_path: Path, js: FlakyJS) -> tuple[Any, Any, Outbox, OutboxRelay]:
    settings = Settings(env="test")
    engine, bb = await sqlite_backbone(tmp_path / "o.db")
    outbox = Outbox(bb, settings, "submissions", Clock())
    return engine, bb, outbox, OutboxRelay(engine, bb, js, settings)  # type: ignore[arg-type]


async def _emit(engine: Any, outbox: Outbox, n: int, subject: str = "s-1") -> list[str]:
    ids = []
    async with engine.begin() as conn:
        for _ in range(n):
            env = await outbox.emit(
                conn,
                "submission.withdrawn",
                {
                    "submission_id": subject,
                    "kind": "experience_report",
                    "part": "experience",
                    "author_id": "p-1",
                    "unit_id": "u-vp",
                    "at": T,
                },
                tenant="soctrang-stnmt",
                subject=subject,
                time=T,
            )
            assert env is not None
            ids.append(env.id)
    return ids


async def test_rows_are_published_with_their_id_as_msg_id_and_marked(tmp_path: Path) -> None:
    js = FlakyJS()
    engine, _bb, outbox, relay = await _setup(tmp_path, js)
    ids = await _emit(engine, outbox, 3)
    assert await relay.relay_once() == 3
    assert [h["Nats-Msg-Id"] for _, _, h in js.published] == ids
    assert {s for s, _, _ in js.published} == {"hoithi.soctrang-stnmt.submission.withdrawn"}
    assert await relay.pending() == 0
    assert await relay.relay_once() == 0  # nothing published twice
    await engine.dispose()


async def test_an_aggregates_facts_are_numbered_one_two_three(tmp_path: Path) -> None:
    js = FlakyJS()
    engine, _bb, outbox, relay = await _setup(tmp_path, js)
    await _emit(engine, outbox, 3, "s-9")
    await _emit(engine, outbox, 1, "s-8")
    await relay.relay_once()
    import json

    seqs = [(json.loads(p)["subject"], json.loads(p)["sequence"]) for _, p, _ in js.published]
    assert seqs == [("s-9", 1), ("s-9", 2), ("s-9", 3), ("s-8", 1)]
    await engine.dispose()


async def test_failed_publishes_are_kept_and_retried_with_growing_backoff(tmp_path: Path) -> None:
    js = FlakyJS(fail=2)
    engine, bb, outbox, relay = await _setup(tmp_path, js)
    await _emit(engine, outbox, 2)
    assert await relay.relay_once() == 0
    assert await relay.pending() == 2
    async with engine.connect() as conn:
        rows = (await conn.execute(sa.select(bb.outbox.c.attempts, bb.outbox.c.next_attempt_at))).all()
    assert all(r.attempts == 1 and r.next_attempt_at > datetime.now(UTC) for r in rows)
    assert await relay.relay_once() == 0  # not yet due: backoff respected
    async with engine.begin() as conn:  # time passes
        await conn.execute(
            sa.update(bb.outbox).values(next_attempt_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    assert await relay.relay_once() == 2
    assert await relay.pending() == 0
    await engine.dispose()


async def test_a_deterministic_fact_is_recorded_once(tmp_path: Path) -> None:
    js = FlakyJS()
    engine, _bb, outbox, relay = await _setup(tmp_path, js)
    data = {"part": "experience", "deadline": T, "assigned": 1, "fulfilled": 0, "missed_by_unit": {}}
    async with engine.begin() as conn:
        first = await outbox.emit(
            conn, "deadline.passed", data, tenant="t", subject="experience", time=T, event_id="d-1"
        )
        again = await outbox.emit(
            conn, "deadline.passed", data, tenant="t", subject="experience", time=T, event_id="d-1"
        )
    assert first is not None and again is None
    assert await relay.relay_once() == 1
    await engine.dispose()


async def test_a_deterministic_fact_is_not_emitted_again_after_the_outbox_is_pruned(tmp_path: Path) -> None:
    """The clock deciding a part's deadline again after a restart, eight days after its ``deadline.passed`` was
    published: the outbox prune must not make ``emit()`` forget it, or the same fact goes out again under a new
    sequence. An ordinary fact's row is deleted; the subject's next fact still gets a higher sequence."""
    import json

    from shared.events.envelope import deterministic_id

    js = FlakyJS()
    engine, bb, outbox, relay = await _setup(tmp_path, js)
    passed_id = deterministic_id("deadline.passed", "t", "2023", "experience", T.isoformat())
    data = {"part": "experience", "deadline": T, "assigned": 1, "fulfilled": 0, "missed_by_unit": {}}

    async def decide_passed() -> Any:
        async with engine.begin() as conn:
            return await outbox.emit(
                conn, "deadline.passed", data, tenant="t", subject="experience", time=T, event_id=passed_id
            )

    assert await decide_passed() is not None
    await _emit(engine, outbox, 1, "experience")  # an ordinary fact of the same subject: sequence 2
    assert await relay.relay_once() == 2
    async with engine.begin() as conn:  # eight days pass
        await conn.execute(sa.update(bb.outbox).values(published_at=datetime.now(UTC) - timedelta(days=8)))
    await relay.prune()

    assert await decide_passed() is None  # recognised: not emitted again
    async with engine.connect() as conn:  # the ordinary fact's row was pruned all the same
        kept = (await conn.execute(sa.select(bb.outbox.c.event_id))).scalars().all()
    assert kept == [passed_id]
    [later] = await _emit(engine, outbox, 1, "experience")
    assert await relay.relay_once() == 1
    published = [json.loads(p) for _, p, _ in js.published]
    assert [e["id"] for e in published] == [passed_id, published[1]["id"], later]
    # numbered upwards: the fact recognised again may have used a number (consumers expect gaps), never reused
    assert published[0]["sequence"] == 1 and published[1]["sequence"] == 2 and published[2]["sequence"] > 2
    await engine.dispose()
