"""rewards' ledger route: the append-only journal (sổ ghi nhận) of the live generation. Thin: it checks the caller
is a person, reads the journal as the caller may see it (``usecases/ledger.py``) and shapes the answer."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from services.rewards.usecases import ledger
from shared.clock import VN
from shared.privacy import no_store
from shared.service import CallerDep, RuntimeDep, require_person

router = APIRouter(tags=["rewards"])


class JournalEntry(BaseModel):
    position: int
    participant_kind: str
    participant_id: str
    subject: str
    rule: str
    event_id: str
    cause_event_id: str | None
    action: str
    points: float
    time: datetime
    reason_vi: str
    reason_en: str
    recorded_at: datetime


@router.get(
    "/tenants/{tenant}/editions/{edition}/ledger",
    response_model=list[JournalEntry],
    dependencies=[Depends(no_store)],
)
async def ledger_journal(
    tenant: str,
    edition: str,
    rt: RuntimeDep,
    caller: CallerDep,
    participant: Annotated[str | None, Query(description="a person or unit id")] = None,
) -> list[JournalEntry]:
    """The append-only ledger journal of the live generation: every credit and reversal, with the fact that
    earned the entry and the fact that changed it."""
    person = require_person(caller)
    rows = await ledger.journal(rt, caller, person, tenant, edition, participant)
    return [
        JournalEntry(
            **{k: getattr(r, k) for k in JournalEntry.model_fields if k not in ("time", "recorded_at")},
            time=r.time.astimezone(VN),
            recorded_at=r.recorded_at.astimezone(VN),
        )
        for r in rows
    ]
