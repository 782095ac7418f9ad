"""rewards' background job: the standings that lag their facts, and the re-pricings a dead consumer left midway.

One replica of the deployment runs it (a lease, ``STANDINGS_LEASE``); ``app.py`` lists it among the service's
background jobs.
"""

from __future__ import annotations

import logging
import time

from services.rewards.usecases import projection
from shared.lease import Lease, periodic
from shared.service import Runtime

log = logging.getLogger("hoithi.rewards")

STANDINGS_INTERVAL = 0.5  # seconds between passes of the standings job
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

    proj = projection.of_runtime(rt)

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
