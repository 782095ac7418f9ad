"""Reminders on request: a unit head, a union secretary or the secretariat asks notify to remind the people who
have not yet submitted a part (the portal's "Nhắc nộp" action).

Who may remind whom is the daily lists' rule (``domain.People.heads_of`` / ``secretaries_of``): the head of the
person's unit (a branch without a head of its own: its parent's), the secretary of a union the person belongs
to, and the secretariat (and the administrator) anyone. Only people with an open assignment of the part are
reminded. A reminder goes through notify's normal delivery (in-app and email, template ``reminder.manual``) and
is told **at most once per person, part and Vietnamese date**: the ``notify_reminders`` row, keyed by exactly
that, is the claim and the audit record (who asked, when), written in the messages' transaction; the in-app
message also leaves a ``notification.sent`` fact on the stream.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Header
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, model_validator

from services.notify import domain, models
from services.notify.usecases import queue
from shared.clock import VN
from shared.db import insert_ignore
from shared.documents import (
    Role,
    deadline_label_en,
    deadline_label_vi,
    format_date_vn,
    format_datetime_vn,
)
from shared.idempotency import request_hash
from shared.problems import Problem, bilingual_error, field_error, problem_responses
from shared.service import CallerDep, RuntimeDep, require_person

router = APIRouter(tags=["reminders"])

REMINDER = domain.REMINDER


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


class ReminderOutcome(BaseModel):
    part: str
    day: date = Field(description="the Vietnamese date the reminders count for (one per person and part)")
    reminded: list[str] = Field(description="person ids reminded now (in-app and email)")
    already_reminded: list[str] = Field(
        description="person ids already reminded of this part today: nothing sent"
    )


def _reminder_key(tenant: str, edition: str, part: str, person_id: str, day: date) -> str:
    return domain.deterministic_id("reminder", tenant, edition, part, person_id, day.isoformat())


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
    now = rt.now()
    day = now.astimezone(VN).date()
    scope = f"{tenant}|{me.id}|reminders|{edition}"
    digest = request_hash(body.model_dump(mode="json"))
    async with rt.engine.begin() as conn:
        stored = await rt.idempotency.lookup(conn, scope, idempotency_key, digest)
        if stored is not None:  # a retry with the same key: the first answer, nothing sent again
            return JSONResponse(stored.body, status_code=stored.status)
        assert rt.copies is not None
        ed = await rt.copies.edition(conn, tenant, edition)
        if ed is None:
            raise Problem(404, f"No edition {edition}.", f"Không có kỳ Hội thi {edition}.", code="no_edition")
        try:
            part = ed.part(body.part)
        except KeyError:
            raise Problem(
                422,
                "Unknown part.",
                "Phần thi không có trong kỳ Hội thi.",
                errors=[field_error("part", "Unknown part.", "Phần thi không có trong kỳ Hội thi.")],
            ) from None
        who = await queue.people(conn, rt, tenant, now)
        t = models.assignments
        q = sa.select(t).where(
            t.c.tenant == tenant,
            t.c.edition == edition,
            t.c.part == part.id,
            t.c.open.is_(True),
            t.c.assignee_kind == "person",
            t.c.deadline > now,
        )
        if body.unit is not None:
            q = q.where(t.c.unit_id == body.unit)
        else:
            q = q.where(t.c.assignee_id.in_(body.assignees or []))
        open_ = {r.assignee_id: r for r in (await conn.execute(q)).all()}
        if body.unit is not None and not open_:
            msg = (
                "Nobody of this unit has an open assignment of this part.",
                "Không ai trong đơn vị còn nhiệm vụ chưa nộp của phần thi này.",
            )
            raise Problem(422, msg[0], msg[1], errors=[field_error("unit", *msg, code="nothing_open")])
        missing = [pid for pid in body.assignees or [] if pid not in open_]
        if missing:
            en = f"No open assignment of this part: {', '.join(missing)}."
            vi = f"Không có nhiệm vụ chưa nộp của phần thi này: {', '.join(missing)}."
            raise Problem(422, en, vi, errors=[field_error("assignees", en, vi, code="nothing_open")])
        targets = []
        for pid in sorted(open_):
            person = who.person(pid)
            if person is None:
                continue
            if not _may_remind(me.id, caller.has_role(Role.secretariat, Role.admin), person, who):
                en = f"You may remind only the people of your unit or union ({pid} is not)."
                vi = (
                    f"Ông/Bà chỉ được nhắc người thuộc đơn vị hoặc tổ chức đoàn thể mình phụ trách "
                    f"({who.name_of(pid)} không thuộc phạm vi này)."
                )
                raise Problem(403, en, vi, code="not_your_people")
            targets.append(person)
        reminded, already = [], []
        for person in targets:
            key = _reminder_key(tenant, edition, part.id, person.id, day)
            claimed = await conn.execute(
                insert_ignore(
                    conn,
                    models.reminders,
                    {
                        "id": key,
                        "tenant": tenant,
                        "edition": edition,
                        "part": part.id,
                        "person_id": person.id,
                        "day": day,
                        "requested_by": me.id,
                        "requested_at": now,
                    },
                )
            )
            if not claimed.rowcount:
                already.append(person.id)
                continue
            deadline = open_[person.id].deadline
            await queue.enqueue(
                conn,
                rt,
                tenant=tenant,
                edition=edition,
                person=person,
                template=REMINDER,
                context=_context(who, person, ed.title, part.title or part.id, deadline, now, me.name),
                cause_event_id=key,
                correlation_id=None,
                ids={ch: domain.notification_id(key, person.id, ch) for ch in (domain.IN_APP, domain.EMAIL)},
            )
            reminded.append(person.id)
        if not reminded:
            raise Problem(
                409,
                "Already reminded of this part today: nothing was sent (one reminder per person and part a day).",
                "Đã nhắc phần thi này trong hôm nay: không gửi thêm (mỗi người chỉ được nhắc một lần "
                "mỗi ngày cho mỗi phần thi).",
                code="already_reminded_today",
                extra={"already_reminded": already, "day": day.isoformat()},
            )
        outcome = ReminderOutcome(part=part.id, day=day, reminded=reminded, already_reminded=already)
        answer = outcome.model_dump(mode="json")
        await rt.idempotency.remember(conn, scope, idempotency_key, digest, 200, answer, rt.now())
    if reminded:
        queue.wake_event(rt).set()  # the delivery loop sends now rather than at its next poll
    return outcome


def _may_remind(me: str, secretariat: bool, person: Any, who: domain.People) -> bool:
    if secretariat:
        return True
    if any(h.id == me for h in who.heads_of(person.unit)):
        return True
    return any(s.id == me for s in who.secretaries_of(person))


def _context(
    who: domain.People,
    person: Any,
    edition_title: str,
    part_title: str,
    deadline: datetime,
    now: datetime,
    asked_by: str,
) -> dict[str, Any]:
    return {
        **who.signature(),
        "person_name": person.name,
        "edition_title": edition_title,
        "part_title": part_title,
        "deadline_vn": format_datetime_vn(deadline),
        "deadline_label_vi": deadline_label_vi(deadline),
        "deadline_label_en": deadline_label_en(deadline),
        "day_vn": format_date_vn(now.astimezone(VN).date()),
        "now_vn": format_datetime_vn(now),
        "asked_by": asked_by,
    }
