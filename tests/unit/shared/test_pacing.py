"""Receipts first (``shared.pacing``): the consumers' turns and waits during intake's rush, on a driven clock.

The signal itself travels over real NATS in ``tests/integration/test_intake_pacing.py``; here time is the
test's, so each wait is exact: no batch's work or wait takes wall-clock time.
"""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import REGISTRY

from shared import pacing
from shared.settings import Settings


class DrivenClock:
    """Time that moves only when the code under test sleeps or a batch 'works'."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        await asyncio.sleep(0)  # let the other tasks run, as a real sleep would


def _yielded(purpose: str) -> float:
    return (
        REGISTRY.get_sample_value(
            "hoithi_consumer_yielded_seconds_total", {"service": "pacing-unit", "purpose": purpose}
        )
        or 0.0
    )


@pytest.fixture
def clock() -> DrivenClock:
    return DrivenClock()


@pytest.fixture
def pressure(clock: DrivenClock) -> pacing.Pressure:
    return pacing.Pressure(Settings(yield_factor=2.0), "pacing-unit", clock=clock, sleep=clock.sleep)


async def test_without_a_rush_consumers_apply_at_once_and_nobody_waits(
    clock: DrivenClock, pressure: pacing.Pressure
) -> None:
    order: list[str] = []
    release = asyncio.Event()

    async def batch(purpose: str) -> None:
        async with pressure.turn(purpose):
            order.append(f"{purpose} starts")
            await release.wait()
            order.append(f"{purpose} ends")

    before = _yielded("mail")
    tasks = [asyncio.create_task(batch(p)) for p in ("mail", "inbox")]
    while len(order) < 2:
        await asyncio.sleep(0)
    assert order == ["mail starts", "inbox starts"]  # both inside at once: no turns
    release.set()
    await asyncio.gather(*tasks)
    assert _yielded("mail") == before


async def test_during_a_rush_consumers_take_turns_each_followed_by_yield_factor_times_its_work(
    clock: DrivenClock, pressure: pacing.Pressure
) -> None:
    events: list[tuple[str, float]] = []

    async def batch(purpose: str, work: float) -> None:
        async with pressure.turn(purpose):
            events.append((f"{purpose} starts", clock.now))
            clock.now += work  # the batch's own work
            pressure.hear()  # intake is still signalling
            await asyncio.sleep(0)
            events.append((f"{purpose} ends", clock.now))

    pressure.hear()
    before = _yielded("mail")
    await asyncio.gather(batch("mail", 0.2), batch("inbox", 0.3))
    assert [e for e, _ in events] == ["mail starts", "mail ends", "inbox starts", "inbox ends"]
    at = dict(events)
    assert at["inbox starts"] - at["mail ends"] == pytest.approx(2 * 0.2)  # mail's wait: twice its work
    assert _yielded("mail") - before == pytest.approx(0.4)  # what an operator reads


async def test_a_wait_ends_when_the_rush_does_and_never_exceeds_the_cap(
    clock: DrivenClock, pressure: pacing.Pressure
) -> None:
    pressure.hear()  # the last signal of the rush
    async with pressure.turn("mail"):
        clock.now += 0.5  # the work: it would be followed by 1 s of waiting
        ended = clock.now
    assert clock.now - ended == pytest.approx(pacing.HOLD - 0.5)  # the wait stopped when the rush did

    keep_hearing = True  # a rush that goes on, and a batch so long its wait would pass the cap

    async def intake() -> None:
        while keep_hearing:
            pressure.hear()
            await asyncio.sleep(0)

    signals = asyncio.create_task(intake())
    pressure.hear()
    async with pressure.turn("mail"):
        clock.now += pacing.MAX_YIELD  # factor 2: the uncapped wait would be 2 × MAX_YIELD
        await asyncio.sleep(0)  # the batch's last await: intake's signal is heard meanwhile
        ended = clock.now
    keep_hearing = False
    await signals
    assert clock.now - ended == pytest.approx(pacing.MAX_YIELD)


async def test_with_yielding_turned_off_a_rush_changes_nothing(clock: DrivenClock) -> None:
    pressure = pacing.Pressure(Settings(yield_to_intake=False), "pacing-unit", clock=clock, sleep=clock.sleep)
    pressure.hear()
    assert pressure.busy and not pressure.yielding
    start = clock.now
    async with pressure.turn("mail"):
        clock.now += 1.0
    assert clock.now - start == 1.0
