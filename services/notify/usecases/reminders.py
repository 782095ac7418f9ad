"""Reminders on request: a unit head, a union secretary or the secretariat asks notify to remind the people who
have not yet submitted a part (the portal's "Nhắc nộp" action).

Who may remind whom is the daily lists' rule (``domain.People.heads_of`` / ``secretaries_of``): the head of the
person's unit (a branch without a head of its own: its parent's), the secretary of a union the person belongs
to, and the secretariat (and the administrator) anyone. Only people with an open assignment of the part are
reminded. A reminder goes through notify's normal delivery (in-app and email, template ``reminder.manual``) and
is told **at most once per person, part and Vietnamese date**: the ``notify_reminders`` row, keyed by exactly
that, is the claim and the audit record (who asked, when), written in the messages' transaction; the in-app
message also leaves a ``notification.sent`` fact on the stream.

``remind`` is one use case in one unit of work (``shared/uow.py``: the claims, the messages and the idempotent
answer commit together); the router is ``api/reminders.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel, Field

from services.notify import domain, models
from services.notify.usecases import queue
from shared.clock import VN
from shared.db import insert_if_absent
from shared.documents import (
    deadline_label_en,
    deadline_label_vi,
    format_date_vn,
    format_datetime_vn,
)
from shared.errors import DomainError, Refusal, field_error
from shared.service import Runtime
from shared.uow import UnitOfWork

Uow = UnitOfWork[Runtime]

REMINDER = domain.REMINDER


class ReminderOutcome(BaseModel):
    part: str
    day: date = Field(description="the Vietnamese date the reminders count for (one per person and part)")
    reminded: list[str] = Field(description="person ids reminded now (in-app and email)")
    already_reminded: list[str] = Field(
        description="person ids already reminded of this part today: nothing sent"
    )


@dataclass(frozen=True)
class Remind:
    """Remind the named people (``assignees``) or everyone of a unit (``unit``) of a part, asked by ``by``."""

    tenant: str
    edition: str
    part: str
    assignees: tuple[str, ...] | None
    unit: str | None
    by_id: str
    by_name: str
    by_secretariat: bool  # the secretariat (or the administrator): may remind anyone


def _reminder_key(tenant: str, edition: str, part: str, person_id: str, day: date) -> str:
    return domain.deterministic_id("reminder", tenant, edition, part, person_id, day.isoformat())


async def remind(uow: Uow, cmd: Remind) -> ReminderOutcome:
    """Claim (person, part, day) for each person to remind and queue their messages; refuse when nobody is left
    to remind (409), when the part or a person's open assignment is unknown (422), or when a person is not the
    caller's to remind (403)."""
    rt, conn = uow.rt, uow.conn
    tenant, edition = cmd.tenant, cmd.edition
    now = uow.now()
    day = now.astimezone(VN).date()
    assert rt.copies is not None
    ed = await rt.copies.edition(conn, tenant, edition)
    if ed is None:
        raise DomainError(
            Refusal.NOT_FOUND, f"No edition {edition}.", f"Không có kỳ Hội thi {edition}.", code="no_edition"
        )
    try:
        part = ed.part(cmd.part)
    except KeyError:
        raise DomainError(
            Refusal.INVALID,
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
    if cmd.unit is not None:
        q = q.where(t.c.unit_id == cmd.unit)
    else:
        q = q.where(t.c.assignee_id.in_(list(cmd.assignees or [])))
    open_ = {r.assignee_id: r for r in (await conn.execute(q)).all()}
    if cmd.unit is not None and not open_:
        msg = (
            "Nobody of this unit has an open assignment of this part.",
            "Không ai trong đơn vị còn nhiệm vụ chưa nộp của phần thi này.",
        )
        raise DomainError(
            Refusal.INVALID, msg[0], msg[1], errors=[field_error("unit", *msg, code="nothing_open")]
        )
    missing = [pid for pid in cmd.assignees or [] if pid not in open_]
    if missing:
        en = f"No open assignment of this part: {', '.join(missing)}."
        vi = f"Không có nhiệm vụ chưa nộp của phần thi này: {', '.join(missing)}."
        raise DomainError(
            Refusal.INVALID, en, vi, errors=[field_error("assignees", en, vi, code="nothing_open")]
        )
    targets = []
    for pid in sorted(open_):
        person = who.person(pid)
        if person is None:
            continue
        if not _may_remind(cmd.by_id, cmd.by_secretariat, person, who):
            en = f"You may remind only the people of your unit or union ({pid} is not)."
            vi = (
                f"Ông/Bà chỉ được nhắc người thuộc đơn vị hoặc tổ chức đoàn thể mình phụ trách "
                f"({who.name_of(pid)} không thuộc phạm vi này)."
            )
            raise DomainError(Refusal.FORBIDDEN, en, vi, code="not_your_people")
        targets.append(person)
    reminded, already = [], []
    for person in targets:
        key = _reminder_key(tenant, edition, part.id, person.id, day)
        claimed = await insert_if_absent(
            conn,
            models.reminders,
            {
                "id": key,
                "tenant": tenant,
                "edition": edition,
                "part": part.id,
                "person_id": person.id,
                "day": day,
                "requested_by": cmd.by_id,
                "requested_at": now,
            },
        )
        if not claimed:
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
            context=_context(who, person, ed.title, part.title or part.id, deadline, now, cmd.by_name),
            cause_event_id=key,
            correlation_id=None,
            ids={ch: domain.notification_id(key, person.id, ch) for ch in (domain.IN_APP, domain.EMAIL)},
        )
        reminded.append(person.id)
    if not reminded:
        raise DomainError(
            Refusal.CONFLICT,
            "Already reminded of this part today: nothing was sent (one reminder per person and part a day).",
            "Đã nhắc phần thi này trong hôm nay: không gửi thêm (mỗi người chỉ được nhắc một lần "
            "mỗi ngày cho mỗi phần thi).",
            code="already_reminded_today",
            extra={"already_reminded": already, "day": day.isoformat()},
        )
    uow.after_commit(queue.wake_event(rt).set)  # the delivery loop sends now rather than at its next poll
    return ReminderOutcome(part=part.id, day=day, reminded=reminded, already_reminded=already)


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
