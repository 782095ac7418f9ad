"""notify's event handlers: each runs inside the consumer's transaction, after the fact's inbox row is written.

Nothing here talks to SMTP: a handler writes the in-app message and a pending ``deliveries`` row in the same
transaction as the inbox row; the delivery loop (``delivery.py``) sends it after the commit.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from services.notify import domain, models, rendering
from shared.consumer import Handler
from shared.db import insert_ignore
from shared.events.catalogue import NotificationSent, SubmissionReceived
from shared.events.envelope import Envelope
from shared.service import Runtime
from shared.streams import consumers_of

log = logging.getLogger("hoithi.notify")

FACTS = "facts"
WAKE = "deliveries_wake"


class RecipientUnknown(Exception):
    """The person is not (yet) in notify's directory copy: the fact is retried later, never dropped."""


def wake_event(rt: Runtime) -> asyncio.Event:
    """Set when a delivery may be due, so the loop need not wait for its next poll."""
    ev: asyncio.Event = rt.extra.setdefault(WAKE, asyncio.Event())
    return ev


def build(rt: Runtime) -> dict[str, dict[str, Handler]]:
    copies = rt.copies
    assert copies is not None

    async def keep(conn: AsyncConnection, env: Envelope) -> None:
        """Kept in the inbox for later (reminders, misses, scores, selections); nothing sent yet."""

    async def keep_copy(conn: AsyncConnection, env: Envelope) -> None:
        await copies.apply(conn, env)

    async def submission_received(conn: AsyncConnection, env: Envelope) -> None:
        data = SubmissionReceived.model_validate(env.data)
        person = await copies.person(
            conn, env.tenant, data.author_id, data.received_at
        ) or await copies.person(conn, env.tenant, data.author_id, rt.now())
        if person is None:
            raise RecipientUnknown(
                f"person {data.author_id!r} of {env.tenant!r} is not in notify's directory copy"
            )
        edition_name = env.edition or ""
        document = await copies.edition(conn, env.tenant, edition_name) if env.edition else None
        unit = await copies.unit(conn, env.tenant, data.unit_id, data.received_at)
        receipt = domain.receipt_of(
            data,
            edition=edition_name,
            document=document,
            person_name=person.name,
            unit_name=unit.name if unit is not None else None,
        )
        message = rendering.render_receipt(receipt)
        now = rt.now()

        inapp_id = domain.notification_id(env.id, person.id, domain.IN_APP)
        added = await conn.execute(
            insert_ignore(
                conn,
                models.inapp,
                {
                    "id": inapp_id,
                    "tenant": env.tenant,
                    "person_id": person.id,
                    "channel": domain.IN_APP,
                    "template": domain.RECEIPT,
                    "title": message.subject,
                    "body": message.text,
                    "cause_event_id": env.id,
                    "created_at": now,
                },
            )
        )
        if added.rowcount:
            await rt.outbox.emit(
                conn,
                "notification.sent",
                NotificationSent(
                    notification_id=inapp_id,
                    channel=domain.IN_APP,
                    recipient=person.id,
                    template=domain.RECEIPT,
                    cause_event_id=env.id,
                    attempt=1,
                ),
                tenant=env.tenant,
                subject=inapp_id,
                time=now,
                edition=env.edition,
                causation_id=env.id,
                event_id=domain.sent_event_id(inapp_id),
            )

        await conn.execute(
            insert_ignore(
                conn,
                models.deliveries,
                {
                    "id": domain.notification_id(env.id, person.id, domain.EMAIL),
                    "tenant": env.tenant,
                    "edition": env.edition,
                    "channel": domain.EMAIL,
                    "template": domain.RECEIPT,
                    "recipient": person.id,
                    "to_address": person.email,
                    "subject": message.subject,
                    "text": message.text,
                    "html": message.html,
                    "cause_event_id": env.id,
                    "correlation_id": env.correlationid,
                    "status": "pending",
                    "attempts": 0,
                    "next_attempt_at": datetime.now(UTC),
                    "created_at": now,
                },
            )
        )
        # The row is not committed yet: the loop may find nothing now and catch it on its next poll.
        wake_event(rt).set()

    handlers: dict[str, Handler] = {t: keep for t in _facts_types()}
    handlers.update(
        {
            "directory.unit.changed": keep_copy,
            "directory.person.changed": keep_copy,
            "edition.published": keep_copy,
            "submission.received": submission_received,
        }
    )
    return {FACTS: handlers}


def _facts_types() -> tuple[str, ...]:
    return next(c.types for c in consumers_of("notify") if c.purpose == FACTS)
