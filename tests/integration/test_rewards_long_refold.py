"""A reward-rules change re-prices a whole tenant — minutes at 100k facts, longer than the consumer's ack wait.
The re-pricing runs after the consumer's commit in chunks (one short transaction each) while the consumer tells
the server the message is in progress: it is delivered once, not again after ``ack_wait`` (issue 12, defect 5).

Real NATS (a stream and rewards' durable consumer declared with a 2 s ack wait) and two replicas of rewards'
real consumer on SQLite; the re-pricing is slowed down per subject so that it outlasts the ack wait several times over."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import nats
import pytest
import sqlalchemy as sa

from services.rewards import handlers, models
from services.rewards.usecases import projection
from shared.clock import Clock
from shared.consumer import EventConsumer
from shared.db import make_engine
from shared.events.envelope import Envelope
from shared.outbox import Outbox
from shared.streams import consumers_of, declare
from tests.support.consumers import stream_settings
from tests.support.rewards import all_facts, edition_published
from tests.support.servers import TestServers
from tests.support.wait import eventually

pytestmark = pytest.mark.serial  # long work against a 2 s ack_wait

ACK_WAIT = 2.0  # seconds
PER_SUBJECT = 0.25  # seconds added to each subject's re-pricing: ~26 subjects ≈ 6.5 s, well over 2 × ACK_WAIT


async def test_a_rules_change_longer_than_ack_wait_is_delivered_once(
    test_servers: TestServers, unique_prefix: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = stream_settings(
        unique_prefix,
        env="test",
        nats_url=test_servers.nats_url,
        ack_wait=ACK_WAIT,
        consumer_fetch_timeout=0.2,
    )
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'rewards.db'}")
    async with engine.begin() as conn:
        await conn.run_sync(models.metadata.create_all)
    outbox = Outbox(models.backbone, settings, "rewards", Clock())
    proj = projection.Projection(models.backbone, models.copies, outbox, engine)
    spec = next(c for c in consumers_of("rewards") if c.purpose == "facts")
    # Two replicas pulling from the one durable consumer: a message not acked (nor in progress) within
    # ack_wait goes to the other one.
    replicas = [
        EventConsumer(
            spec=spec,
            engine=engine,
            backbone=models.backbone,
            outbox=outbox,
            settings=settings,
            handlers=dict.fromkeys(handlers.fact_types(), proj.handle),
        )
        for _ in range(2)
    ]
    nc = await nats.connect(settings.nats_url)
    js = nc.jetstream()
    await declare(js, settings)

    async def publish(facts: list[Envelope]) -> None:
        for f in facts:
            await js.publish(
                settings.event_subject(f.tenant, f.type), f.to_json(), stream=settings.stream,
                headers={"Nats-Msg-Id": f.id},
            )  # fmt: skip

    deliveries: list[
        tuple[str, int]
    ] = []  # (subject, delivery count) of every message either replica fetched

    def recording(process: Callable[[Any], Awaitable[None]]) -> Callable[[Any], Awaitable[None]]:
        async def record(msgs: Any) -> None:
            deliveries.extend((m.subject, m.metadata.num_delivered) for m in msgs)
            await process(msgs)

        return record

    for c in replicas:
        c.process = recording(c.process)  # type: ignore[method-assign]
    running = [asyncio.create_task(c.run(nc)) for c in replicas]

    def applied() -> int:
        return sum(c.state.applied for c in replicas)

    try:
        facts = all_facts()
        await publish(facts)
        await eventually(lambda: applied() == len(facts), timeout=60, message="facts applied")

        # The re-pricing of each subject made slow, as 100k facts would make it; in chunks of 5 subjects.
        real: Callable[..., Any] = projection.Projection.fold

        commits = 0

        @sa.event.listens_for(engine.sync_engine, "commit")
        def _count(_conn: Any) -> None:
            nonlocal commits
            commits += 1

        in_transaction: list[int] = []  # for each subject re-priced: the number of commits before it

        async def slow_fold(self: projection.Projection, conn: Any, folds: Any) -> None:
            repriced = [f for f in folds if f.force]
            in_transaction.extend([commits] * len(repriced))
            # the work's own duration, not a wait for an outcome
            await asyncio.sleep(PER_SUBJECT * len(repriced))
            await real(self, conn, folds)

        monkeypatch.setattr(projection.Projection, "fold", slow_fold)
        monkeypatch.setattr(projection, "REFOLD_CHUNK", 5)

        async def repriced() -> bool:
            async with engine.connect() as conn:
                if (await conn.execute(sa.select(models.refolds.c.cursor))).first() is not None:
                    return False
                points = (
                    await conn.execute(
                        sa.select(sa.func.max(models.ledger.c.points)).where(
                            models.ledger.c.rule == "submission.received/experience"
                        )
                    )
                ).scalar()
            return points == 4

        started = time.monotonic()
        await publish([edition_published(2, points={"submission.received/experience": 4,
                                                    "submission.received/initiative": 2,
                                                    "initiative.selected": 5,
                                                    "onlineservice.target.reached": 3},
                                         rules_version=2)])  # fmt: skip
        await eventually(
            repriced, timeout=60, interval=0.05, message="the edition re-priced under the new rules"
        )
        took = time.monotonic() - started
        assert took > 2 * ACK_WAIT, f"the re-pricing took {took:.1f}s: not longer than the ack wait"

        async def settled() -> Any:
            info = await js.consumer_info(settings.stream, spec.durable)
            return info if info.num_ack_pending == 0 and info.num_pending == 0 else None

        info = await eventually(settled, timeout=30, message="every message acked")
        assert info.num_ack_pending == 0
        assert [d for d in deliveries if d[1] != 1] == [], "a message was delivered again after ack_wait"
        assert len(deliveries) == len(facts) + 1
        assert sum(c.state.duplicates for c in replicas) == 0 and applied() == len(facts) + 1
        # One short transaction per chunk of 5 subjects, none spanning the whole re-pricing.
        assert len(in_transaction) >= 20
        assert max(Counter(in_transaction).values()) <= 5, "more than one chunk in one transaction"

    finally:
        for t in running:
            t.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        await nc.close()
        await engine.dispose()
