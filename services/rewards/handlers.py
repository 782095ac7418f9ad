"""rewards' event handlers: each runs inside the consumer's transaction, after the fact's inbox row is written.

A fact re-folds everything kept for its subject (a submission, or an assignment) and makes that subject's
ledger entries and marks, and the totals of the participants it touches, say what the fold says — in the live generation and in one being rebuilt — so duplicates,
redelivery and reordering converge on the same ledger. ``edition.published`` brings rules: valid ones re-price
the edition; refused ones are recorded and change nothing.
"""

from __future__ import annotations

import logging
import time

from sqlalchemy.ext.asyncio import AsyncConnection

from services.rewards import projection
from shared.consumer import Handler
from shared.events.envelope import Envelope
from shared.lease import Lease, periodic
from shared.service import Runtime
from shared.streams import consumers_of

log = logging.getLogger("hoithi.rewards")

FACTS = projection.FACTS
STANDINGS_INTERVAL = 0.5  # seconds between passes of the standings job


def project(rt: Runtime) -> projection.Projection:
    assert rt.copies is not None
    return projection.Projection(rt.backbone, rt.copies, rt.outbox, rt.engine)


def build(rt: Runtime) -> dict[str, dict[str, Handler]]:
    proj = project(rt)

    async def handle(conn: AsyncConnection, env: Envelope) -> None:
        await proj.handle(conn, env)

    return {FACTS: dict.fromkeys(fact_types(), handle)}


def fact_types() -> tuple[str, ...]:
    return next(c.types for c in consumers_of("rewards") if c.purpose == FACTS)


STANDINGS_LEASE = "rewards-standings"


async def standings_job(rt: Runtime) -> None:
    """Fold the subjects whose standings lag their facts (the previous release's writes during a rolling update,
    and every subject an upgrade found), and resume re-pricings under new rules whose consumer died midway
    (their message was acked as a duplicate on redelivery). The standings themselves are kept by the consumer,
    in the transaction of each fact (``readmodel``), and so are the ``reward.priority.changed`` it tells;
    nothing here re-folds an edition. One replica of the deployment runs it (a lease); when nothing is due, a
    pass is two indexed reads."""
    assert rt.copies is not None
    lease = Lease(rt.backbone.leases, STANDINGS_LEASE, ttl=rt.settings.lease_ttl)
    rt.extra["standings_lease"] = lease

    proj = project(rt)

    async def one_pass() -> float:
        started = time.monotonic()
        await proj.fold_unfolded()
        await proj.resume_refolds(stale_after=max(60.0, 2 * rt.settings.ack_wait))
        return max(STANDINGS_INTERVAL, 2 * (time.monotonic() - started))

    def failed(exc: Exception, failures: int) -> float:
        log.warning("standings pass failed, retrying: %r", exc)  # the next pass retries; the refold rows stay
        return STANDINGS_INTERVAL

    await periodic(
        rt.engine,
        lease,
        one_pass,
        standby=max(STANDINGS_INTERVAL, rt.settings.lease_ttl / 5),
        on_error=failed,
    )
