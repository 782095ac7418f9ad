"""Receipts first (``shared.pacing``): the consumers' turns and waits during intake's rush, on a driven clock.

The signal itself travels over real NATS in ``tests/integration/test_intake_pacing.py``; here time is the
test's, so each wait is exact: no batch's work or wait takes wall-clock time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from prometheus_client import REGISTRY

from shared import pacing
from shared.settings import Settings
from tests.support.wait import eventually


class DrivenClock:
    """Time that moves only when the code under test waits or a batch 'works'; ``during_wait`` runs at each
    step of a wait (intake signalling meanwhile, say)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.during_wait: Callable[[], None] = lambda: None

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.during_wait()


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
    await eventually(lambda: len(order) == 2, timeout=5, message=f"{order}")
    assert order == ["mail starts", "inbox starts"]  # both inside at once: no turns
    release.set()
    await asyncio.gather(*tasks)
    assert _yielded("mail") == before


async def test_during_a_rush_consumers_take_turns_each_followed_by_yield_factor_times_its_work(
    clock: DrivenClock, pressure: pacing.Pressure
) -> None:
    events: list[tuple[str, float]] = []
    gates = {"mail": asyncio.Event(), "inbox": asyncio.Event()}
    clock.during_wait = pressure.hear  # intake goes on signalling through the waits

    async def batch(purpose: str, work: float) -> None:
        async with pressure.turn(purpose):
            events.append((f"{purpose} starts", clock.now))
            await gates[purpose].wait()  # the batch's work, while the other consumer tries its turn
            clock.now += work
            events.append((f"{purpose} ends", clock.now))

    pressure.hear()
    before = _yielded("mail")
    tasks = [asyncio.create_task(batch("mail", 0.2)), asyncio.create_task(batch("inbox", 0.3))]
    await eventually(lambda: events != [], timeout=5, message="no batch started")
    gates["inbox"].set()  # inbox is ready too, but it is mail's turn
    gates["mail"].set()
    await asyncio.gather(*tasks)
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

    # a rush that goes on, and a batch so long its wait would pass the cap
    pressure.hear()
    async with pressure.turn("mail"):
        clock.now += pacing.MAX_YIELD  # factor 2: the uncapped wait would be 2 × MAX_YIELD
        pressure.hear()  # intake is still signalling as the batch ends…
        clock.during_wait = pressure.hear  # …and through its wait
        ended = clock.now
    assert clock.now - ended == pytest.approx(pacing.MAX_YIELD)


async def test_with_yielding_turned_off_a_rush_changes_nothing(clock: DrivenClock) -> None:
    pressure = pacing.Pressure(Settings(yield_to_intake=False), "pacing-unit", clock=clock, sleep=clock.sleep)
    pressure.hear()
    assert pressure.busy and not pressure.yielding
    start = clock.now
    async with pressure.turn("mail"):
        clock.now += 1.0
    assert clock.now - start == 1.0
