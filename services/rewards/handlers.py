"""rewards' event handlers: each runs inside the consumer's transaction, after the fact's inbox row is written.

A fact re-folds everything kept for its subject (a submission, or an assignment; at its batch's end, together
with the batch's other subjects, as if one by one: ``Projection.fold``) and makes that subject's
ledger entries and marks, and the totals of the participants it touches, say what the fold says — in the live generation and in one being rebuilt — so duplicates,
redelivery and reordering converge on the same ledger. ``edition.published`` brings rules: valid ones re-price
the edition; refused ones are recorded and change nothing. The use case is ``usecases/projection.py``'s
``Projection.handle``; the background job that folds what lags is ``usecases/standings_job.py``.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from services.rewards.usecases import projection
from shared.consumer import Handler
from shared.events.envelope import Envelope
from shared.service import Runtime
from shared.streams import consumers_of

FACTS = projection.FACTS


def build(rt: Runtime) -> dict[str, dict[str, Handler]]:
    proj = projection.of_runtime(rt)

    async def handle(conn: AsyncConnection, env: Envelope) -> None:
        await proj.handle(conn, env)

    return {FACTS: dict.fromkeys(fact_types(), handle)}


def fact_types() -> tuple[str, ...]:
    return next(c.types for c in consumers_of("rewards") if c.purpose == FACTS)
