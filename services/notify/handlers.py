"""notify's event handlers: each runs inside the consumer's transaction, after the fact's inbox row is written,
and calls one use case of ``usecases/facts.py`` on that transaction (``UnitOfWork.joining``).

Nothing here talks to SMTP or HTTP: the use cases write in-app messages and pending ``deliveries`` rows in the
same transaction as the inbox row (``usecases/queue.py``); the delivery loop (``usecases/delivery.py``) sends
them after the commit. What each event sends, and to whom, is ``domain.TRIGGERS`` (README: "What triggers what").
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncConnection

from services.notify import domain
from services.notify.usecases import facts
from services.notify.usecases.facts import FACTS
from shared.consumer import Handler
from shared.events.envelope import Envelope
from shared.service import Runtime
from shared.streams import consumers_of
from shared.uow import UnitOfWork


def build(rt: Runtime) -> dict[str, dict[str, Handler]]:
    assert rt.copies is not None

    def on(use_case: Callable[[facts.Uow, Envelope], Awaitable[None]]) -> Handler:
        async def handle(conn: AsyncConnection, env: Envelope) -> None:
            await use_case(UnitOfWork.joining(rt, conn), env)

        return handle

    handlers: dict[str, Handler] = {t: on(facts.forward) for t in _facts_types()}
    handlers.update({t.event_type: on(facts.notify_of) for t in domain.TRIGGERS})
    handlers.update(
        {
            "directory.unit.changed": on(facts.keep_copy),
            "directory.person.changed": on(facts.keep_copy),
            "edition.published": on(facts.keep_copy),
            "assignment.created": on(facts.fold_assignment),
            "assignment.fulfilled": on(facts.fold_assignment),
            "assignment.reopened": on(facts.fold_assignment),
        }
    )
    return {FACTS: handlers}


def _facts_types() -> tuple[str, ...]:
    return next(c.types for c in consumers_of("notify") if c.purpose == FACTS)
