"""Receipts first (``shared.pacing``): intake's rush signal over real NATS, and the consumers' turns.

While intake answers a rush it tells the deployment; every service's consumers then take turns and wait after
each batch, so intake keeps the machine's cores (issue 15: measured in ``bench/intake.py``). A trickle of
requests signals nothing; only intake's NATS user may send the signal.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import nats
import pytest
from prometheus_client import REGISTRY

from shared import pacing
from shared.settings import Settings
from tests.integration.test_nats_auth import _as, _authenticated
from tests.support.servers import TestServers
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
    answered = itertools.count()
    step = 1  # requests answered per tick of the signal: a trickle (4/s)

    def activity() -> int:
        return next(answered) * step

    signal = asyncio.create_task(pacing.signal_while_busy(nc, settings, "submissions", activity))
    try:
        for _ in range(6):  # 1.5 s of a trickle: no signal
            await asyncio.sleep(pacing.SIGNAL_EVERY)
            assert not heard.busy
        step = pacing.RUSH * 4  # a rush
        await eventually(lambda: heard.busy, timeout=5, message="the rush was not heard")
        step = 0  # intake is idle again: the consumers stop yielding within HOLD
        await eventually(lambda: not heard.busy, timeout=5, message="still yielding after the rush")
    finally:
        signal.cancel()
        await nc.close()


async def test_during_a_rush_a_services_consumers_take_turns_and_wait_and_otherwise_do_not(
    test_servers: TestServers, unique_prefix: str
) -> None:
    settings = Settings(event_prefix=unique_prefix, yield_factor=2.0)
    nc = await _admin(test_servers)
    pressure = pacing.Pressure(settings, "notify")
    await pressure.listen(nc)
    order: list[str] = []
    loop = asyncio.get_running_loop()

    async def batch(purpose: str, took: float = 0.2) -> None:
        async with pressure.turn(purpose):
            order.append(f"{purpose} starts")
            await asyncio.sleep(took)  # the batch's own work
            order.append(f"{purpose} ends")

    try:
        # no rush: both consumers apply at once, nobody waits
        before = _yielded("notify", "mail")
        started = loop.time()
        await asyncio.gather(batch("mail"), batch("inbox"))
        assert order[:2] == ["mail starts", "inbox starts"]
        assert _yielded("notify", "mail") == before

        # a rush: one batch at a time, each followed by twice its own time of waiting
        keep_busy = asyncio.create_task(_signal_forever(nc, settings))
        await eventually(lambda: pressure.busy, timeout=5, message="the rush was not heard")
        order.clear()
        started = loop.time()
        await asyncio.gather(batch("mail"), batch("inbox"))
        took = loop.time() - started
        assert order == ["mail starts", "mail ends", "inbox starts", "inbox ends"]
        assert took >= 2 * (0.2 + 2 * 0.2) - 0.05, took  # two turns of (work + 2 × work)
        assert _yielded("notify", "mail") - before >= 0.35  # what an operator reads: the seconds it yielded

        # the rush ends: a wait in progress ends early
        order.clear()
        mail = asyncio.create_task(batch("mail", took=1.0))  # would wait 2 s after
        await eventually(lambda: order == ["mail starts", "mail ends"], timeout=5, message=f"{order}")
        keep_busy.cancel()
        started = loop.time()
        await asyncio.wait_for(mail, 5)
        assert loop.time() - started < pacing.HOLD + 2 * pacing.SLICE + 0.5
    finally:
        await nc.close()


async def _signal_forever(nc: Any, settings: Settings) -> None:
    while True:
        await nc.publish(settings.pressure_subject, b"")
        await asyncio.sleep(pacing.SIGNAL_EVERY)


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
