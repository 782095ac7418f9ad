"""Campaign's event subscribers, thin: each fact is one use case (``usecases/receipts.py``), run in the
consumer's transaction. Submissions fulfil and reopen assignments (the assignments a submission counts for are
settled, see ``usecases/assignments.py``); ``intake.closed`` lets the deadline clock decide."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncConnection

from services.campaign.usecases import receipts
from shared.consumer import Handler
from shared.events.envelope import Envelope
from shared.service import Runtime
from shared.uow import UnitOfWork

SUBMISSION_FACTS = (
    "submission.received",
    "submission.revised",
    "submission.withdrawn",
    "submission.rejected",
    "submission.reinstated",
)


def build(rt: Runtime) -> dict[str, dict[str, Handler]]:
    def joined(use_case: Callable[[UnitOfWork[Runtime], receipts.Fact], Awaitable[None]]) -> Handler:
        async def handle(conn: AsyncConnection, env: Envelope) -> None:
            await use_case(UnitOfWork.joining(rt, conn), receipts.Fact(env))

        handle.__doc__ = use_case.__doc__
        return handle

    handlers: dict[str, Handler] = {t: joined(receipts.apply_submission_fact) for t in SUBMISSION_FACTS}
    handlers["initiative.selected"] = joined(receipts.apply_selection)
    handlers["intake.closed"] = joined(receipts.record_intake_closed)
    return {"facts": handlers}
