"""Receipts first (``shared.pacing``): intake's rush signal over real NATS, and the consumers' turns.

While intake answers a rush it tells the deployment; every service's consumers then take turns and wait after
each batch, so intake keeps the machine's cores (issue 15: measured in ``bench/intake.py``). A trickle of
requests signals nothing; only intake's NATS user may send the signal.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from pathlib import Path
from typing import Any

import nats
import pytest
from prometheus_client import REGISTRY

from shared import pacing
from shared.consumer import RUSH_PART
from shared.events.envelope import Envelope
from shared.settings import Settings
from shared.streams import declare, stream_configs
from tests.integration.test_nats_auth import _as, _authenticated
from tests.support.consumers import sqlite_consumer, stream_settings, withdrawn
from tests.support.servers import TestServers, nats_client_options
from tests.support.wait import eventually

pytestmark = pytest.mark.serial  # its waits are measured: not on a machine shared with a parallel worker


def _yielded(service: str, purpose: str) -> float:
    return (
        REGISTRY.get_sample_value(
            "hoithi_consumer_yielded_seconds_total", {"service": service, "purpose": purpose}
        )
        or 0.0
    )


async def _admin(test_servers: TestServers) -> Any:
    return await nats.connect(test_servers.nats_url, connect_timeout=5)


async def test_a_rush_is_heard_by_the_consumers_and_a_trickle_is_not(
    test_servers: TestServers, unique_prefix: str
) -> None:
    settings = Settings(event_prefix=unique_prefix)
    nc = await _admin(test_servers)
    heard = pacing.Pressure(settings, "rewards")
    await heard.listen(nc)
    ticks = 0
    answered = 0
    step = 1  # requests answered per tick of the signal: a trickle (4/s)

    def activity() -> int:  # the signal job reads it once per tick
        nonlocal ticks, answered
        ticks += 1
        answered += step
        return answered

    service = f"submissions-{unique_prefix}"  # its own series of the signals counter
    signal = asyncio.create_task(pacing.signal_while_busy(nc, settings, service, activity))
    try:
        await eventually(lambda: ticks >= 7, timeout=10, message="the signal job did not tick")
        assert _signals(service) == 0  # six ticks of a trickle sent nothing
        assert not heard.busy
        step = pacing.RUSH * 4  # now a rush
        await eventually(lambda: heard.busy, timeout=5, message="the rush was not heard")
        assert _signals(service) >= 1
        step = 0  # intake is idle again: the consumers stop yielding within HOLD
        await eventually(lambda: not heard.busy, timeout=5, message="still yielding after the rush")
    finally:
        signal.cancel()
        await nc.close()


def _signals(service: str) -> float:
    return REGISTRY.get_sample_value("hoithi_intake_pressure_signals_total", {"service": service}) or 0.0


async def _signal_while(nc: Any, settings: Settings) -> asyncio.Task[None]:
    """Intake's own signal job, for a rush that goes on until the task is cancelled."""
    answered = itertools.count(step=pacing.RUSH * 4)
    return asyncio.create_task(pacing.signal_while_busy(nc, settings, "submissions", lambda: next(answered)))


async def test_only_intakes_user_may_ask_the_consumers_to_yield(
    test_servers: TestServers, unique_prefix: str
) -> None:
    _authenticated(test_servers)
    settings = Settings(event_prefix=unique_prefix)
    errors: list[str] = []
    campaign = await _as(test_servers.nats_url, "campaign")
    submissions = await _as(test_servers.nats_url, "submissions")
    rewards = await _as(test_servers.nats_url, "rewards", errors)
    try:
        heard = pacing.Pressure(settings, "campaign")
        await heard.listen(campaign)  # every service may listen
        await campaign.flush()
        await rewards.publish(settings.pressure_subject, b"")  # not intake: dropped by the server
        await eventually(
            lambda: any("permissions violation" in e.lower() for e in errors), timeout=5, message=f"{errors}"
        )
        assert not heard.busy
        await submissions.publish(settings.pressure_subject, b"")
        await eventually(lambda: heard.busy, timeout=5, message="intake's signal was not heard")
    finally:
        for c in (campaign, submissions, rewards):
            await c.close()


async def test_during_a_rush_a_consumer_applies_its_batch_in_parts_each_once_and_yields_between_them(
    test_servers: TestServers, unique_prefix: str, tmp_path: Path
) -> None:
    url = test_servers.nats_url
    settings = stream_settings(unique_prefix, env="test", nats_url=url, consumer_batch=100, yield_factor=1.0)
    nc = await nats.connect(url, **nats_client_options(url))
    js = nc.jetstream()
    for sc in stream_configs(settings):
        await js.add_stream(sc)
    await declare(js, settings)
    applied: list[str] = []

    async def handler(conn: Any, env: Envelope) -> None:
        applied.append(env.subject)

    consumer, engine, _ = await sqlite_consumer(tmp_path, settings, handler)
    parts: list[int] = []  # facts per transaction (``process`` applies its messages in one)
    process = consumer.process

    async def recorded(msgs: Any) -> None:
        parts.append(len(msgs))
        await process(msgs)

    consumer.process = recorded  # type: ignore[method-assign]
    consumer.pressure = pacing.Pressure(settings, "rewards")
    await consumer.pressure.listen(nc)
    rush = await _signal_while(nc, settings)
    await eventually(
        lambda: consumer.pressure is not None and consumer.pressure.busy, timeout=5, message="rush"
    )
    facts = [f"s-{i:03d}" for i in range(3 * RUSH_PART + 5)]
    for s in facts:
        env = withdrawn(s)
        await js.publish(
            settings.event_subject(env.tenant, env.type), env.to_json(), headers={"Nats-Msg-Id": env.id}
        )
    before = _yielded("rewards", consumer.purpose)
    task = asyncio.create_task(consumer.run(nc))
    try:
        await eventually(lambda: len(applied) >= len(facts), timeout=60, message=f"{len(applied)} applied")
        assert applied == facts  # each once, in order: nothing redelivered for the waits
        assert max(parts) <= RUSH_PART, parts  # no transaction applied more than a part during the rush
        assert _yielded("rewards", consumer.purpose) > before
        info = await js.consumer_info(settings.stream, consumer.spec.durable)
        assert info.num_redelivered == 0
    finally:
        rush.cancel()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 15)
        for sc in stream_configs(settings):
            with contextlib.suppress(Exception):
                await js.delete_stream(sc.name or "")
        await engine.dispose()
        await nc.close()
