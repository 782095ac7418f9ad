"""Receipts first: while intake is in a rush, the deployment's consumers yield the machine to it.

At a deadline rush the receipt is what an official is owed at once — it decides on time or late — while what
the consumers derive from it (the ledger, participation, the mail) may follow a little later. On a machine the
services share, consumers applying a rush at full speed take the cores intake needs: measured on the 2-core
bench machine, rewards, notify and campaign used 1.4–1.7 cores during a wrk run while submissions got a third
of one (``bench/RESULTS.md``); lowering their OS priority did not help, since intake waits on its own turns
(the write lock, the commit's thread) more than on the CPU, and each wait lets the consumers in.

- **Intake signals.** While submissions' group-commit writer has work (a batch committed, or requests queued,
  in the last quarter second) it publishes an empty message on core NATS (``Settings.pressure_subject``; no
  stream stores it), at most four a second; none when idle. Only the intake service's NATS user may publish it.
- **Consumers yield, never stop.** Every service listens; while a signal is less than a second old, the
  service's consumers take turns — one batch at a time — and after each batch wait ``yield_factor`` times as
  long as it took (default 3: together at most a quarter of the time), ending the wait as soon as the signals
  stop; a fetched batch is applied in parts of 20 facts, each part its own turn. The backlog still drains
  during the rush, and at full speed after it; each part is acknowledged before its wait and the parts still
  to come are kept in progress, so nothing is redelivered for the wait.
- ``HOITHI_YIELD_TO_INTAKE=false`` turns it off where the services do not share cores (a cluster whose nodes
  are separate), and ``HOITHI_YIELD_FACTOR`` tunes it; ``hoithi_consumer_yielded_seconds_total`` shows what it cost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable

from nats.aio.client import Client as NatsClient

from shared import metrics
from shared.settings import Settings

log = logging.getLogger("hoithi.pacing")

INTAKE_SERVICES = frozenset({"submissions"})  # the services whose users may publish the signal
SIGNAL_EVERY = 0.25  # seconds between signals while intake is busy
RUSH = 5  # receipts (or refusals) in one SIGNAL_EVERY that make a rush (20/s): a trickle slows nothing
HOLD = 1.0  # seconds a signal keeps the consumers yielding
MAX_YIELD = 10.0  # seconds: the longest wait after one batch (it ends early when the rush does)
SLICE = 0.25  # seconds: a waiting consumer checks this often whether the rush is over


class Pressure:
    """One service's view of intake's rush signal (``listen`` once, on the service's connection)."""

    def __init__(
        self,
        settings: Settings,
        service: str,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.settings = settings
        self.service = service
        self._clock = clock  # and ``sleep``: a unit test drives both
        self._sleep = sleep
        self._until = 0.0
        self._turn = asyncio.Lock()

    async def listen(self, nc: NatsClient) -> None:
        async def heard(_msg: object) -> None:
            self.hear()

        await nc.subscribe(self.settings.pressure_subject, cb=heard)

    def hear(self) -> None:
        """A signal arrived: the rush is on for ``HOLD`` seconds more."""
        self._until = self._clock() + HOLD

    @property
    def busy(self) -> bool:
        return self._clock() < self._until

    @property
    def yielding(self) -> bool:
        """A rush is on and this deployment yields to it."""
        return self.settings.yield_to_intake and self.busy

    @contextlib.asynccontextmanager
    async def turn(self, purpose: str) -> AsyncIterator[None]:
        """Around one batch of a consumer: during a rush the service's consumers take turns (one batch at a
        time, then its wait), so together they use at most ``1 / (1 + yield_factor)`` of the time; otherwise
        nothing is held and nothing waits."""
        if not self.yielding:
            yield
            return
        async with self._turn:
            started = self._clock()
            yield
            await self._wait(self._clock() - started, purpose)

    async def _wait(self, took: float, purpose: str) -> None:
        """``yield_factor`` times ``took``, at most ``MAX_YIELD``, ended early when the rush is over."""
        start = self._clock()
        end = start + min(took * self.settings.yield_factor, MAX_YIELD)
        while self.busy and (left := end - self._clock()) > 0:
            await self._sleep(min(SLICE, left))
        if (waited := self._clock() - start) > 0:
            metrics.CONSUMER_YIELDED.labels(self.service, purpose).inc(waited)


async def signal_while_busy(
    nc: NatsClient, settings: Settings, service: str, activity: Callable[[], int]
) -> None:
    """Intake's side, until cancelled: publish the signal every ``SIGNAL_EVERY`` s in which ``activity()`` (a
    count of requests intake has answered or holds: committed plus queued) grew by ``RUSH`` or more."""
    last = activity()
    while True:
        await asyncio.sleep(SIGNAL_EVERY)
        now = activity()
        if now - last >= RUSH and nc.is_connected:
            try:
                await nc.publish(settings.pressure_subject, b"")
                metrics.INTAKE_PRESSURE_SIGNALS.labels(service).inc()
            except Exception as exc:  # noqa: BLE001 - a lost signal costs only a little pacing
                log.debug("intake pressure signal not sent: %r", exc)
        last = now
