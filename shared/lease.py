"""Leases: periodic work (the deadline clock, the standings job…) runs once per deployment, not once per replica.

A lease is a row of the service's own ``leases`` table (``Backbone.leases``, SQLite and PostgreSQL alike, one
row per job name): who holds it, until when, and its **generation**, incremented on every takeover. A replica runs the job only while it
holds the lease; it renews the lease while it works, and another replica takes it over only once it has expired.

Expiry alone cannot stop a holder that stalled (a long GC pause, a SIGSTOP, a slow disk) from waking up and
committing an old computation after its successor's newer one. So the generation is also a **fencing token**:
every write transaction of the job starts with ``UPDATE leases … WHERE generation = :mine`` (``Lease.begin``);
0 rows means someone took over, and the transaction is abandoned before anything is committed. On PostgreSQL
that UPDATE also locks the lease row until the job's commit, so a takeover waits for a commit in flight instead
of overlapping it; SQLite serialises writers anyway.

Expiry is measured on each replica's own wall clock (never the simulated business clock): skew between hosts
only makes a takeover earlier or later, never lets two commits through, because of the fence.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from shared.db import insert_if_absent

log = logging.getLogger("hoithi.lease")

T = TypeVar("T")


class LeaseLost(Exception):
    """The lease was taken over by another replica: the transaction that found out is abandoned."""


def _now() -> datetime:
    return datetime.now(UTC)


def default_holder() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Lease:
    """One replica's side of one lease. ``generation`` is the fencing token while held, else None."""

    def __init__(self, table: sa.Table, name: str, *, ttl: float, holder: str | None = None) -> None:
        if ttl <= 0:
            raise ValueError("a lease needs a positive ttl")
        self.table = table
        self.name = name
        self.ttl = ttl
        self.holder = holder or default_holder()
        self.generation: int | None = None
        self._renewed = 0.0  # time.monotonic() of the last renewal or takeover

    @property
    def held(self) -> bool:
        return self.generation is not None

    async def hold(self, engine: AsyncEngine) -> bool:
        """Renew the lease if this replica holds it, else take it over if it has expired; True if held now.

        One short transaction. A replica whose lease was taken over finds out here (or at its next fence)."""
        if self.generation is not None and time.monotonic() - self._renewed < self.ttl / 3:
            return (
                True  # renewed moments ago: a pass every half second costs no write (the fence still checks)
            )
        t = self.table
        now = _now()
        until = now + timedelta(seconds=self.ttl)
        if self.generation is None:
            # A standby replica reads before it writes: no write transaction while someone else holds it.
            async with engine.connect() as conn:
                expires = (
                    await conn.execute(sa.select(t.c.expires_at).where(t.c.name == self.name))
                ).scalar()
            if expires is not None and expires > now:
                return False
        async with engine.begin() as conn:
            await insert_if_absent(
                conn,
                t,
                {"name": self.name, "holder": "", "generation": 0, "expires_at": now, "acquired_at": now},
            )
            if self.generation is not None:
                renewed = await conn.execute(
                    sa.update(t)
                    .where(
                        t.c.name == self.name, t.c.generation == self.generation, t.c.holder == self.holder
                    )
                    .values(expires_at=until)
                )
                if renewed.rowcount:
                    self._renewed = time.monotonic()
                    return True
                log.warning("lease %s generation %d was taken over", self.name, self.generation)
                self.generation = None
            # On PostgreSQL a concurrent takeover blocks on the row, then re-checks the expiry and finds none.
            taken = await conn.execute(
                sa.update(t)
                .where(t.c.name == self.name, t.c.expires_at <= now)
                .values(holder=self.holder, generation=t.c.generation + 1, expires_at=until, acquired_at=now)
            )
            if not taken.rowcount:
                return False
            self.generation = (
                await conn.execute(sa.select(t.c.generation).where(t.c.name == self.name))
            ).scalar_one()
        self._renewed = time.monotonic()
        log.info("lease %s taken: generation %d (%s)", self.name, self.generation, self.holder)
        return True

    async def fence(self, conn: AsyncConnection) -> None:
        """Inside a write transaction: raise ``LeaseLost`` unless the lease is still this generation's.

        On PostgreSQL the row stays locked until the transaction ends, so no takeover overlaps the commit."""
        mine = self.generation
        if mine is None:
            raise LeaseLost(f"lease {self.name} is not held")
        t = self.table
        res = await conn.execute(
            sa.update(t)
            .where(t.c.name == self.name, t.c.generation == mine, t.c.holder == self.holder)
            .values(generation=mine)
        )
        if not res.rowcount:
            self.generation = None
            raise LeaseLost(f"lease {self.name} generation {mine} was taken over")

    @asynccontextmanager
    async def begin(self, engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
        """``engine.begin()`` for the job's writes, fenced first: commits only while the lease is this one's."""
        async with engine.begin() as conn:
            await self.fence(conn)
            yield conn

    async def release(self, engine: AsyncEngine) -> None:
        """Give the lease up (shutdown): another replica takes over at its next try, not after the ttl."""
        if self.generation is None:
            return
        t = self.table
        async with engine.begin() as conn:
            await conn.execute(
                sa.update(t)
                .where(t.c.name == self.name, t.c.generation == self.generation, t.c.holder == self.holder)
                .values(expires_at=_now() - timedelta(seconds=1))
            )
        self.generation = None

    async def run(self, engine: AsyncEngine, work: Callable[[], Awaitable[T]]) -> T:
        """Run ``work`` while renewing the lease every third of its ttl (long work keeps it); the caller holds
        it. A renewal that finds the lease taken over leaves the fence to stop ``work``'s next commit."""

        async def renew() -> None:
            while self.held:
                await asyncio.sleep(self.ttl / 3)
                try:
                    await self.hold(engine)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # noqa: BLE001 - the fence decides; keep trying
                    log.warning("lease %s renewal failed: %r", self.name, exc)

        renewer = asyncio.create_task(renew(), name=f"lease-{self.name}")
        try:
            return await work()
        finally:
            renewer.cancel()
            try:
                await renewer
            except asyncio.CancelledError:
                pass


def fenced_begin(engine: AsyncEngine, lease: Lease | None) -> AbstractAsyncContextManager[AsyncConnection]:
    """A write transaction of a periodic job: fenced by ``lease`` when the job runs under one (its loop), plain
    when a test or a one-off command runs a pass by itself."""
    return lease.begin(engine) if lease is not None else engine.begin()


async def periodic(
    engine: AsyncEngine,
    lease: Lease,
    one_pass: Callable[[], Awaitable[float]],
    *,
    standby: float,
    on_error: Callable[[Exception, int], float],
) -> None:
    """The loop of a periodic job that runs once per deployment: while this replica holds ``lease``, run
    ``one_pass`` (it returns the seconds to wait before the next); otherwise try again every ``standby``
    seconds. The holder keeps the lease renewed while it waits. ``on_error(exc, failures)`` logs a failed pass
    and returns the back-off. A ``LeaseLost`` ends a pass quietly: the successor does the work. The lease is
    given up at shutdown."""
    failures = 0

    async def pass_then_wait() -> None:
        # The wait is inside ``run``: the holder keeps renewing between passes (a collector passing every
        # five minutes keeps its lease too), so the work never hops to a standby while the holder is alive.
        await asyncio.sleep(await one_pass())

    try:
        while True:
            try:
                if not await lease.hold(engine):
                    await asyncio.sleep(standby)
                    continue
                await lease.run(engine, pass_then_wait)
                failures = 0
            except asyncio.CancelledError:
                raise
            except LeaseLost as exc:
                log.warning("%s; standing by", exc)
                await asyncio.sleep(standby)
            except Exception as exc:  # noqa: BLE001 - never stop a periodic job: back off and retry
                failures += 1
                await asyncio.sleep(on_error(exc, failures))
    finally:
        if lease.held:
            try:
                await asyncio.shield(lease.release(engine))
            except BaseException as exc:  # noqa: BLE001 - shutting down: the ttl frees it anyway
                log.info("lease %s not released (%r): it expires by itself", lease.name, exc)
