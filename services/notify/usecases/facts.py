"""What notify does with each fact it consumes: one use case per kind of fact, each run inside the consumer's
transaction (``UnitOfWork.joining``: the inbox row, the copy, the messages and their events commit together).

Nothing here talks to SMTP or HTTP: a use case writes in-app messages and pending ``deliveries`` rows
(``queue.py``); the delivery loop (``delivery.py``) sends them after the commit. What each event sends, and to
whom, is ``domain.TRIGGERS`` (README: "What triggers what"). The routing of facts to these use cases is
``handlers.py``.
"""

from __future__ import annotations

import functools
from typing import Any

import sqlalchemy as sa

from services.notify import domain, models
from services.notify.domain import compose
from services.notify.usecases import queue
from services.notify.usecases.queue import wake_event
from shared.consumer import Inbox
from shared.db import upsert_newer
from shared.events.envelope import Envelope
from shared.service import Runtime
from shared.uow import UnitOfWork

Uow = UnitOfWork[Runtime]

FACTS = "facts"  # the purpose of notify's one durable consumer (shared/streams.py)
ASSIGNMENT_FACTS = ("assignment.created", "assignment.fulfilled", "assignment.reopened")


class RecipientUnknown(Exception):
    """The person is not (yet) in notify's directory copy: the fact is retried later, never dropped."""


async def keep_copy(uow: Uow, env: Envelope) -> None:
    copies = uow.rt.copies
    assert copies is not None
    # Units, unions and people alike. Each row written changes the tenant's directory version in this
    # transaction (triggers: models.directory_versions), which is what queue.people checks its cache against;
    # the batch's later facts read it (and the edition) again.
    await copies.apply(uow.conn, env)
    batch = queue.batch_reads()
    if batch is not None:
        batch.forget(env.tenant)


async def fold_assignment(uow: Uow, env: Envelope) -> None:
    """notify's copy of an assignment (whom the daily lists name) says what the assignment's latest fact by
    campaign's sequence says, whatever order they arrived in: re-derived from every ``assignment.*`` fact
    kept for it. A reopening that arrives before the assignment's creation is kept and counts once the
    creation (the first fact carrying a deadline) arrives."""
    conn = uow.conn
    kept = [
        f
        for f in await Inbox(uow.rt.backbone).history(conn, FACTS, env.subject)
        if f.type in ASSIGNMENT_FACTS and f.tenant == env.tenant
    ]
    facts = sorted({f.id: f for f in (*kept, env)}.values(), key=lambda f: (f.sequence, f.id))
    latest, dated = facts[-1], [f for f in facts if "deadline" in f.data]
    if not dated:
        await _webhooks(uow, env)
        return  # not created here yet: nothing to list (the facts are kept)
    d = latest.data
    row = {
        "edition": latest.edition,
        "part": d["part"],
        "assignee_kind": d.get("assignee_kind", "person"),
        "assignee_id": d["assignee_id"],
        "unit_id": d.get("unit_id"),
        "open": latest.type != "assignment.fulfilled",
        "sequence": latest.sequence,
        "deadline": dated[-1].parsed().deadline,  # type: ignore[attr-defined]
    }
    key = {"tenant": env.tenant, "assignment_id": d["assignment_id"]}
    await upsert_newer(conn, models.assignments, {**key, **row})
    await _webhooks(uow, env)


async def notify_of(uow: Uow, env: Envelope) -> None:
    """The messages a fact of ``domain.TRIGGERS`` sends (each recipient, in-app and by email), and its webhooks."""
    rt, conn = uow.rt, uow.conn
    data = env.parsed().model_dump(mode="json")  # type: ignore[attr-defined]
    at = env.time or rt.now()
    who = await queue.people(conn, rt, env.tenant, at)
    if env.type == "submission.received" and who.person(data["author_id"]) is None:
        who = await queue.people(conn, rt, env.tenant, rt.now())
        if who.person(data["author_id"]) is None:
            raise RecipientUnknown(
                f"person {data['author_id']!r} of {env.tenant!r} is not in notify's directory copy"
            )
    edition = await queue.edition_of(conn, rt, env.tenant, env.edition) if env.edition else None
    if env.type == "reward.priority.changed":
        data["previous_eligibility"] = await _previous_eligibility(uow, env)
    scored = 0
    if env.type == "initiative.scored":
        scored = await _score_sheets(uow, data["submission_id"])
    for m in compose.plan(
        env.type,
        data,
        edition=edition,
        edition_name=env.edition,
        who=who,
        event_time=at,
        scored_count=scored,
        now=rt.now(),
    ):
        await queue.enqueue(
            conn,
            rt,
            tenant=env.tenant,
            edition=env.edition,
            person=m.person,
            template=m.template,
            context=m.context,
            cause_event_id=env.id,
            correlation_id=env.correlationid,
            ids={
                ch: domain.notification_id(env.id, m.person.id, ch, m.template)
                for ch in (domain.IN_APP, domain.EMAIL)
            },
        )
    await _webhooks(uow, env)
    # The rows are not committed yet: the loop may find nothing now and catch them on its next poll.
    wake_event(rt).set()


async def forward(uow: Uow, env: Envelope) -> None:
    """A fact no message is sent for: kept in the inbox (history) and POSTed to the matching webhooks."""
    await _webhooks(uow, env)
    wake_event(uow.rt).set()


async def _webhooks(uow: Uow, env: Envelope) -> None:
    await queue.enqueue_webhooks(
        uow.conn,
        uow.rt,
        tenant=env.tenant,
        edition=env.edition,
        event_id=env.id,
        event_type=env.type,
        body=env.to_json(),
        correlation_id=env.correlationid,
    )


async def _previous_eligibility(uow: Uow, env: Envelope) -> list[str]:
    """The eligibility notify last saw for this participant in this edition: the latest earlier (by the
    producer's sequence) ``reward.priority.changed`` kept in the inbox; none seen: none."""
    params = {"type": env.type, "tenant": env.tenant, "subject": env.subject, "sequence": env.sequence}
    rows = (await uow.conn.execute(_earlier_of_type(uow.rt.backbone.inbox), params)).scalars()
    for raw in rows:
        earlier = Envelope.from_json(raw)
        if earlier.edition == env.edition and earlier.data.get("participant_kind") == env.data.get(
            "participant_kind"
        ):
            return list(earlier.data.get("eligibility") or [])
    return []


@functools.cache
def _earlier_of_type(t: sa.Table) -> sa.Select[Any]:
    """The facts of a type kept for a subject before a sequence, latest first; built once (hot statements)."""
    return (
        sa.select(t.c.envelope)
        .where(
            t.c.purpose == FACTS,
            t.c.event_type == sa.bindparam("type"),
            t.c.tenant == sa.bindparam("tenant"),
            t.c.subject == sa.bindparam("subject"),
            t.c.sequence < sa.bindparam("sequence"),
        )
        .order_by(t.c.sequence.desc())
    )


async def _score_sheets(uow: Uow, submission_id: str) -> int:
    """How many members' score sheets notify has seen for ``submission_id`` (this one included)."""
    t = uow.rt.backbone.inbox
    rows = (
        await uow.conn.execute(
            sa.select(t.c.envelope).where(t.c.purpose == FACTS, t.c.event_type == "initiative.scored")
        )
    ).scalars()
    members = set()
    for raw in rows:
        env = Envelope.from_json(raw)
        if env.data.get("submission_id") == submission_id:
            members.add(env.data.get("member_id"))
    return len(members)
