"""How the consumer tells a handler bug from a database outage, on a real nats-server and real databases.

The rule (shared/db.py): a failure is classified by probing the database, not by the exception's type. A handler
raising OSError, TimeoutError or "no such table" while the database answers is a handler failure — naked with
a delay, dead-lettered at its last delivery, while the other messages flow and readiness stays green. A real
outage (PostgreSQL behind a cut TCP proxy) still holds the batch in progress without spending deliveries.

The consumer runs in the test process (``EventConsumer`` bound to the declared durable consumer, as a service
binds it), so the test sees every delivery count and every readiness change.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import nats
import pytest
import sqlalchemy as sa
from nats.aio.client import Client as NatsClient
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from shared.clock import Clock
from shared.consumer import EventConsumer, RawMsg
from shared.db import backbone_tables, make_engine
from shared.events.envelope import Envelope
from shared.outbox import Outbox
from shared.settings import Settings
from shared.streams import consumers_of, declare
from tests.support.consumers import stream_settings, withdrawn
from tests.support.servers import TestServers, via_proxy
from tests.support.tcpproxy import TcpProxy
from tests.support.wait import eventually

pytestmark = pytest.mark.serial  # an ack_wait of 2 s: a loaded machine would spend deliveries

TENANT = "soctrang-stnmt"
TIME = datetime(2023, 10, 20, 2, 0, tzinfo=UTC)
ACK_WAIT = 2.0  # seconds: an outage of 3× this would spend deliveries if the batch were not kept in progress
MAX_DELIVER = 3


class WatchedConsumer(EventConsumer):
    """The real consumer, remembering the delivery count of each event when its transaction committed."""

    committed_at_delivery: dict[str, int]

    async def apply(self, items: list[tuple[RawMsg, Envelope]], deferred: Any = None) -> None:
        await super().apply(items, deferred)
        for m, env in items:
            self.committed_at_delivery[env.subject] = int(m.metadata.num_delivered)


@dataclass
class Rig:
    settings: Settings
    engine: AsyncEngine
    consumer: WatchedConsumer
    nc: NatsClient
    applied: sa.Table
    readiness: list[bool] = field(default_factory=list)

    async def publish(self, *envs: Envelope) -> None:
        js = self.nc.jetstream()
        for env in envs:
            await js.publish(
                self.settings.event_subject(env.tenant, env.type),
                env.to_json(),
                stream=self.settings.stream,
                headers={"Nats-Msg-Id": env.id},
            )

    async def applied_subjects(self) -> set[str]:
        async with self.engine.connect() as conn:
            return set((await conn.execute(sa.select(self.applied.c.subject))).scalars())

    async def dead_letters(self) -> list[dict[str, Any]]:
        js = self.nc.jetstream()
        info = await js.stream_info(self.settings.deadletter_stream)
        out = []
        for seq in range(info.state.first_seq, info.state.last_seq + 1):
            if info.state.messages == 0:
                break
            out.append(json.loads((await js.get_msg(self.settings.deadletter_stream, seq)).data or b"{}"))
        return out

    async def settled(self) -> bool:
        """Nothing pending and nothing unacknowledged on the durable consumer."""
        info = await self.nc.jetstream().consumer_info(self.settings.stream, self.consumer.spec.durable)
        return info.num_pending == 0 and info.num_ack_pending == 0


async def _stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.wait_for(task, 10)


@pytest.fixture
async def make_rig(
    test_servers: TestServers, unique_prefix: str, tmp_path: Path
) -> AsyncIterator[Callable[..., Any]]:
    stack = contextlib.AsyncExitStack()
    settings = stream_settings(
        unique_prefix,
        env="test",
        nats_url=test_servers.nats_url,
        max_deliver=MAX_DELIVER,
        ack_wait=ACK_WAIT,
        nak_base_delay=0.1,
        nak_max_delay=0.5,
        consumer_batch=50,
        consumer_fetch_timeout=0.5,
    )

    async def make(database_url: str, effect: Callable[[AsyncConnection, Envelope], Any]) -> Rig:
        nc = await nats.connect(settings.nats_url)
        stack.push_async_callback(nc.close)
        await declare(nc.jetstream(), settings)
        md = sa.MetaData()
        bb = backbone_tables(md)
        applied = sa.Table("applied", md, sa.Column("subject", sa.String(200), primary_key=True))
        engine = make_engine(database_url)
        stack.push_async_callback(engine.dispose)
        async with engine.begin() as conn:
            await conn.run_sync(md.create_all)

        async def handler(conn: AsyncConnection, env: Envelope) -> None:
            await effect(conn, env)
            await conn.execute(applied.insert().values(subject=env.subject))

        consumer = WatchedConsumer(
            spec=consumers_of("rewards")[0],
            engine=engine,
            backbone=bb,
            outbox=Outbox(bb, settings, "rewards", Clock()),
            settings=settings,
            handlers={"submission.withdrawn": handler},
        )
        consumer.committed_at_delivery = {}
        rig = Rig(settings, engine, consumer, nc, applied)

        async def sample_readiness() -> None:
            while True:
                rig.readiness.append(consumer.state.ready)
                await asyncio.sleep(0.05)  # a sampling period, not a wait for an outcome

        for coro in (consumer.run(nc), sample_readiness()):
            stack.push_async_callback(_stop, asyncio.create_task(coro))
        return rig

    yield make
    await stack.aclose()


@pytest.mark.parametrize(
    ("database", "failure"),
    [("postgresql", "OSError"), ("postgresql", "TimeoutError"), ("sqlite", "no such table")],
)
async def test_a_handler_failing_like_an_outage_while_the_database_answers_is_dead_lettered_and_the_rest_flow(
    make_rig: Callable[..., Any], test_servers: TestServers, tmp_path: Path, database: str, failure: str
) -> None:
    url = (
        test_servers.create_database("consumerfail")
        if database == "postgresql"
        else f"sqlite+aiosqlite:///{tmp_path / 'rewards.db'}"
    )

    async def effect(conn: AsyncConnection, env: Envelope) -> None:
        if env.subject != "s-poison":
            return
        if failure == "OSError":
            raise FileNotFoundError(2, "No such file or directory", "/srv/templates/missing.j2")
        if failure == "TimeoutError":
            raise TimeoutError("the upstream call timed out")
        await conn.execute(sa.text("SELECT * FROM no_such_table"))

    rig = await make_rig(url, effect)
    good = [withdrawn(f"s-{i}") for i in range(5)]
    await rig.publish(good[0], withdrawn("s-poison"), *good[1:3])

    async def poison_dead_lettered() -> list[dict[str, Any]]:
        return [d for d in await rig.dead_letters() if d["data"]["reason"] == "max_deliver_reached"]

    [record] = await eventually(poison_dead_lettered, timeout=30, message="the poison message dead-lettered")
    assert record["data"]["deliveries"] == MAX_DELIVER
    expected = {
        "OSError": "FileNotFoundError",
        "TimeoutError": "TimeoutError",
        "no such table": "no such table",
    }
    assert expected[failure] in record["data"]["error"]
    await rig.publish(*good[3:])  # later messages flow too

    async def all_good_applied() -> bool:
        return await rig.applied_subjects() == {e.subject for e in good}

    await eventually(all_good_applied, timeout=20, message="every other message applied")
    await eventually(rig.settled, timeout=10, message="nothing left pending or unacknowledged")
    assert rig.readiness and all(rig.readiness), "the consumer reported not-ready for a handler bug"
    assert all(n == 1 for n in rig.consumer.committed_at_delivery.values()), (
        rig.consumer.committed_at_delivery
    )


OUTAGE = 3 * ACK_WAIT  # seconds the database stays unreachable: the scenario's own duration


async def test_a_real_postgresql_outage_holds_the_batch_without_spending_deliveries(
    make_rig: Callable[..., Any], test_servers: TestServers, postgres_proxy: TcpProxy
) -> None:
    async def effect(conn: AsyncConnection, env: Envelope) -> None:
        return None

    rig = await make_rig(via_proxy(test_servers.create_database("consumerout"), postgres_proxy), effect)
    envs = [withdrawn(f"s-{i}") for i in range(10)]
    await rig.publish(envs[0])

    async def first_applied() -> bool:
        return await rig.applied_subjects() == {"s-0"}

    await eventually(first_applied, timeout=10, message="the first event applied before the outage")

    postgres_proxy.cut()
    cut_at = time.monotonic()
    await rig.publish(*envs[1:])
    await eventually(lambda: not rig.consumer.state.ready, timeout=10, message="not-ready during the outage")
    # Hold the outage for its duration (3× ack_wait), the scenario's own time, not a wait for an outcome.
    await eventually(lambda: time.monotonic() - cut_at >= OUTAGE, timeout=OUTAGE + 5, interval=0.1)
    assert not rig.consumer.state.ready
    postgres_proxy.restore()

    async def all_applied() -> bool:
        return await rig.applied_subjects() == {e.subject for e in envs}

    await eventually(all_applied, timeout=30, message="every held event applied after the outage")
    await eventually(lambda: rig.consumer.state.ready, timeout=10, message="ready again")
    await eventually(rig.settled, timeout=10, message="nothing left pending or unacknowledged")
    # Held in progress through an outage three times ack_wait: each committed on its first delivery.
    assert rig.consumer.committed_at_delivery == {e.subject: 1 for e in envs}
    assert await rig.dead_letters() == []


@pytest.mark.parametrize("sqlstate", ["40001", "40P01"], ids=["serialization-failure", "deadlock"])
async def test_postgresql_contention_is_retried_in_place_on_the_first_delivery(
    make_rig: Callable[..., Any], test_servers: TestServers, sqlstate: str
) -> None:
    """A serialization failure or a deadlock (raised by PostgreSQL itself, with its SQLSTATE) is retried in
    place: no nak, no delivery spent, readiness green, and the event applied once."""
    tries: dict[str, int] = {}

    async def effect(conn: AsyncConnection, env: Envelope) -> None:
        tries[env.subject] = tries.get(env.subject, 0) + 1
        if env.subject == "s-contended" and tries[env.subject] <= 2:
            await conn.exec_driver_sql(
                f"DO $$ BEGIN RAISE EXCEPTION 'contended' USING ERRCODE = '{sqlstate}'; END $$"
            )

    rig = await make_rig(test_servers.create_database("consumerlock"), effect)
    envs = [withdrawn("s-contended"), withdrawn("s-other")]
    await rig.publish(*envs)

    async def both_applied() -> bool:
        return await rig.applied_subjects() == {"s-contended", "s-other"}

    await eventually(both_applied, timeout=20, message="both applied")
    await eventually(rig.settled, timeout=10, message="nothing left pending or unacknowledged")
    assert tries["s-contended"] == 3
    assert rig.consumer.committed_at_delivery == {"s-contended": 1, "s-other": 1}
    assert rig.consumer.state.naked == 0
    assert rig.readiness and all(rig.readiness)
    assert await rig.dead_letters() == []
