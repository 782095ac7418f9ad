"""What notify records of a batch's hand-overs to SMTP: each accepted e-mail marked sent once with one
``notification.sent``, each refused one left pending for a retry with one ``notification.failed`` — recorded in
groups (``delivery.Outcomes``), and the same outcome recorded again (a group whose commit was not heard, then
recorded alone) changes nothing. On SQLite, with the real handlers and delivery pass, a sender standing in for the
SMTP server."""

from __future__ import annotations

import itertools
import json
from collections import Counter
from email.message import Message
from typing import Any

import pytest
import sqlalchemy as sa

from services.notify import models
from services.notify.usecases import delivery
from shared.documents import load_directory
from shared.service import Runtime
from tests.support.notify import seeded_notify, vn
from tests.support.system import SEED

AT = vn("2023-10-20T09:00:00")


async def _outbox(rt: Runtime) -> Counter[tuple[str, str]]:
    """(type, notification id) of every fact in notify's outbox."""
    async with rt.engine.connect() as conn:
        payloads = (await conn.execute(sa.select(rt.backbone.outbox.c.payload))).scalars().all()
    facts = [json.loads(p) for p in payloads]
    return Counter(
        (f["type"], f["data"]["notification_id"]) for f in facts if f["type"].startswith("notification.")
    )


async def test_accepted_and_refused_hand_overs_are_each_recorded_once(rt: Runtime) -> None:
    rt.own = rt.own.model_copy(update={"smtp_host": "smtp.test"})  # e-mail rows are due
    run = await seeded_notify(rt)
    people = load_directory(SEED / "directory.yaml").people[:6]
    await run.apply(*[run.receipt(i, p.id, p.unit, AT) for i, p in enumerate(people)])
    refused_to = people[0].email
    accepted: list[str] = []

    async def send(_own: Any, message: Message) -> None:
        if message["To"] == refused_to:
            raise ConnectionResetError("the server hung up")
        accepted.append(message["To"])

    attempted = await delivery.deliver_due(rt, send)

    d = models.deliveries
    async with rt.engine.connect() as conn:
        rows = (await conn.execute(sa.select(d).where(d.c.channel == "email"))).all()
    assert attempted == len(rows) == len(people)
    sent = {r.id for r in rows if r.status == "sent"}
    assert sorted(r.to_address for r in rows if r.status == "sent") == sorted(accepted)
    [failed] = [r for r in rows if r.to_address == refused_to]
    assert (failed.status, failed.attempts) == ("pending", 1) and "hung up" in failed.last_error
    assert all(r.attempts == 1 and r.lease_until is None for r in rows)
    facts = await _outbox(rt)
    assert facts[("notification.failed", failed.id)] == 1
    assert all(facts[("notification.sent", n)] == 1 for n in sent)

    # the accepted outcomes recorded again (their group's commit not heard): nothing more
    for r in rows:
        if r.id in sent:
            await delivery._mark(rt, r, None)
    async with rt.engine.connect() as conn:
        again = (await conn.execute(sa.select(d).where(d.c.channel == "email"))).all()
    assert [(r.id, r.status, r.attempts) for r in again] == [(r.id, r.status, r.attempts) for r in rows]
    assert await _outbox(rt) == facts


async def test_receipts_go_out_before_the_reminders_fanned_out_ahead_of_them(
    rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The clock's reminders to every assignee fall due first; the receipts written after them are still the first
    handed to SMTP, and the reminders follow in the order they fell due (``domain.lane``)."""
    rt.own = rt.own.model_copy(update={"smtp_host": "smtp.test"})
    run = await seeded_notify(rt)
    people = load_directory(SEED / "directory.yaml").people
    reminded, receipted = people[:8], people[8:11]
    await run.apply(
        *[
            run.event(
                "deadline.approaching",
                {
                    "assignment_id": f"a-r{i}",
                    "part": "experience",
                    "assignee_kind": "person",
                    "assignee_id": p.id,
                    "unit_id": p.unit,
                    "deadline": vn("2023-10-25T17:00:00"),
                    "offset": "P3D",
                },
                f"a-r{i}",
                AT,
            )
            for i, p in enumerate(reminded)
        ]
    )
    await run.apply(*[run.receipt(i, p.id, p.unit, AT) for i, p in enumerate(receipted)])
    monkeypatch.setattr(delivery, "BATCH", 4)  # a pass takes fewer than are due
    passes: list[list[str]] = []

    async def send(_own: Any, message: Message) -> None:
        passes[-1].append(str(message["To"]))

    while True:
        passes.append([])
        if not await delivery.deliver_due(rt, send):
            break
    first, *_ = passes
    assert {p.email for p in receipted} <= set(first)  # every receipt in the first pass
    d = models.deliveries
    async with rt.engine.connect() as conn:
        rows = (await conn.execute(sa.select(d).where(d.c.channel == "email"))).all()
    templates = Counter((r.template, r.status) for r in rows)
    assert templates == {("submission.received", "sent"): 3, ("deadline.approaching", "sent"): 8}
    due = {r.to_address: r.next_attempt_at for r in rows if r.template == "deadline.approaching"}
    by_pass = [[due[to] for to in p if to in due] for p in passes]
    by_pass = [p for p in by_pass if p]
    assert all(max(a) <= min(b) for a, b in itertools.pairwise(by_pass))  # in the order they fell due
