"""Reminders on request (the portal's "Nhắc nộp"): who may remind whom, and the once-a-day rule, are the use
case's (``usecases/reminders.py``). Thin: parse → one use case → the answer."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, model_validator

from services.notify.usecases import reminders
from services.notify.usecases.reminders import ReminderOutcome
from shared.documents import Role
from shared.problems import bilingual_error, problem_responses
from shared.service import CallerDep, RuntimeDep, require_person
from shared.uow import Idempotent, run

__all__ = ["ReminderOutcome", "ReminderRequest", "router"]

router = APIRouter(tags=["notify", "reminders"])


class ReminderRequest(BaseModel):
    """Remind the named people (``assignees``) or everyone of a unit (``unit``) with an open assignment of the
    part."""

    model_config = ConfigDict(extra="forbid")
    part: str = Field(min_length=1, max_length=100, description="the edition's part id")
    assignees: list[str] | None = Field(
        default=None, min_length=1, max_length=500, description="person ids (or give `unit`)"
    )
    unit: str | None = Field(
        default=None, min_length=1, max_length=100, description="a unit id (or `assignees`)"
    )

    @model_validator(mode="after")
    def _one_target(self) -> ReminderRequest:
        if (self.assignees is None) == (self.unit is None):
            raise bilingual_error(
                "one_target",
                "Give either assignees or unit.",
                "Hãy chọn hoặc danh sách người (assignees) hoặc một đơn vị (unit).",
            )
        return self


@router.post(
    "/tenants/{tenant}/editions/{edition}/reminders",
    response_model=ReminderOutcome,
    responses=problem_responses(
        403,
        404,
        409,
        422,
        s403="the caller is not the unit head / union secretary of one of these people, nor the secretariat",
        s404="no such edition (not yet published to notify)",
        s409="every one of these people was already reminded of this part today: nothing was sent",
        s422="unknown part; a person or unit without an open assignment of the part; neither or both targets",
    ),
)
async def remind(
    tenant: str,
    edition: str,
    body: ReminderRequest,
    rt: RuntimeDep,
    caller: CallerDep,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> Any:
    """Remind people who have not yet submitted a part: in-app and by email, in Vietnamese (or the person's
    language), at most once per person, part and day (a second request that day sends nothing: 409 when
    nobody is left to remind, otherwise they are listed in ``already_reminded``)."""
    me = require_person(caller)
    cmd = reminders.Remind(
        tenant,
        edition,
        body.part,
        tuple(body.assignees) if body.assignees is not None else None,
        body.unit,
        by_id=me.id,
        by_name=me.name,
        by_secretariat=caller.has_role(Role.secretariat, Role.admin),
    )
    key = Idempotent(f"{tenant}|{me.id}|reminders|{edition}", idempotency_key, body.model_dump(mode="json"))
    done = await run(rt, reminders.remind, cmd, idempotent=key)
    if done.replayed is not None:  # a retry with the same key: the first answer, nothing sent again
        return JSONResponse(done.replayed.body, status_code=done.replayed.status)
    return done.value
