"""rewards' event handlers: each runs inside the consumer's transaction, after the fact's inbox row is written.

A fact re-folds everything kept for its subject (a submission, or an assignment) and makes that subject's
ledger entries say what the fold says — in the live generation and in one being rebuilt — so duplicates,
redelivery and reordering converge on the same ledger. ``edition.published`` brings rules: valid ones re-price
the edition; refused ones are recorded and change nothing.
"""

from __future__ import annotations

import asyncio
import logging
import time

from sqlalchemy.ext.asyncio import AsyncConnection

from services.rewards import projection
from shared.consumer import Handler
from shared.events.envelope import Envelope
from shared.service import Runtime
from shared.streams import consumers_of

log = logging.getLogger("hoithi.rewards")

FACTS = projection.FACTS
STANDINGS_INTERVAL = 0.5  # seconds between passes of the standings job


def project(rt: Runtime) -> projection.Projection:
    assert rt.copies is not None
    return projection.Projection(rt.backbone, rt.copies, rt.outbox)


def build(rt: Runtime) -> dict[str, dict[str, Handler]]:
    proj = project(rt)

    async def handle(conn: AsyncConnection, env: Envelope) -> None:
        await proj.handle(conn, env)

    return {FACTS: dict.fromkeys(fact_types(), handle)}


def fact_types() -> tuple[str, ...]:
    return next(c.types for c in consumers_of("rewards") if c.purpose == FACTS)


async def standings_job(rt: Runtime) -> None:
    """Tell others (``reward.priority.changed``) when a participant's rank, points or eligibility change: the
    editions touched since the last pass are recomputed and compared with what was last told, in one
    transaction with the outbox rows."""
    assert rt.copies is not None
    while True:
        started = time.monotonic()
        try:
            emitted = await projection.refresh_standings(
                rt.engine, rt.backbone, rt.copies, rt.outbox, rt.now()
            )
            if emitted:
                rt.outbox.committed()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - the next pass retries; the dirty marks stay
            log.warning("standings pass failed, retrying: %r", exc)
        # Under a rush the fold grows: pass at most every twice its own duration, so it never crowds the consumer.
        await asyncio.sleep(max(STANDINGS_INTERVAL, 2 * (time.monotonic() - started)))
