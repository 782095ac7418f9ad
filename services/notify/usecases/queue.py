"""Writing messages: in-app rows and pending deliveries, inside the caller's transaction.

Every row's id is deterministic — (cause event, recipient, channel[, template]) for an event's message,
(kind, recipient, date) for a timed one — and inserted with ON CONFLICT DO NOTHING, so a redelivered event,
a replay or a second notify replica writes nothing twice. Sending happens after the commit (``delivery.py``).
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, date, datetime, time
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from services.notify import domain, models
from services.notify.domain import rendering
from shared.clock import VN
from shared.consumer import batch_local
from shared.copies import directory_version
from shared.db import insert_if_absent, select_rows
from shared.documents import Edition, Person, Union, Unit
from shared.events.catalogue import NotificationSent
from shared.service import Runtime

SNAPSHOTS = "directory_snapshots"
PARSED = "directory_parsed"  # per tenant: (table, id, effective_from, sequence) -> parsed document
WAKE = "deliveries_wake"


def wake_event(rt: Runtime) -> asyncio.Event:
    """Set when a delivery may be due, so the loop need not wait for its next poll."""
    ev: asyncio.Event = rt.extra.setdefault(WAKE, asyncio.Event())
    return ev


async def _version(conn: AsyncConnection, tenant: str) -> tuple[int, str]:
    """The version of notify's directory copy for ``tenant`` (``shared.copies.directory_version``)."""
    return await directory_version(conn, models.directory_versions, tenant)


class BatchReads:
    """What the facts of one consumer batch read alike (``shared.consumer.batch_local``), read once per batch
    instead of once per fact: each tenant's directory version and webhook subscriptions, each edition's document.
    A copy the batch itself changes (``facts.keep_copy``) is forgotten and read again, so a person added by the
    batch's first fact is found by its next; a change another replica commits meanwhile is seen by the next
    batch (as a webhook created through the API is)."""

    def __init__(self) -> None:
        self.versions: dict[str, tuple[int, str]] = {}
        self.webhooks: dict[str, list[Any]] = {}
        self.editions: dict[tuple[str, str], Any] = {}

    def forget(self, tenant: str) -> None:
        """The batch changed the tenant's directory or an edition: read them again."""
        self.versions.pop(tenant, None)
        for key in [k for k in self.editions if k[0] == tenant]:
            del self.editions[key]

    async def flush(self, conn: AsyncConnection) -> None:
        """Nothing is written at the batch's end (``BatchLocal``)."""


def batch_reads() -> BatchReads | None:
    """The batch's reads (None outside a consumer batch: everything is read where it is needed)."""
    return batch_local(BatchReads, BatchReads)


async def edition_of(conn: AsyncConnection, rt: Runtime, tenant: str, edition: str) -> Edition | None:
    """The edition's latest version, read once per batch."""
    assert rt.copies is not None
    batch = batch_reads()
    if batch is not None and (tenant, edition) in batch.editions:
        return batch.editions[(tenant, edition)]  # type: ignore[no-any-return]
    found = await rt.copies.edition(conn, tenant, edition)
    if batch is not None:
        batch.editions[(tenant, edition)] = found
    return found


async def people(conn: AsyncConnection, rt: Runtime, tenant: str, at: datetime) -> domain.People:
    """notify's directory on the Vietnamese date of ``at``: people, units and unions.

    Kept per (tenant, date) while the copy's version is unchanged — one primary-key read in this connection,
    so a change applied by this transaction or by another replica is seen — instead of parsing the directory
    per event. The version is read before the copy: a snapshot is never older than the version it is kept
    under (at worst newer, and then read again once that newer version is seen).
    """
    day = at.astimezone(VN).date()
    batch = batch_reads()
    version = batch.versions.get(tenant) if batch is not None else None
    if version is None:
        version = await _version(conn, tenant)
        if batch is not None:
            batch.versions[tenant] = version
    cache: dict[tuple[str, object], tuple[tuple[int, str], domain.People]] = rt.extra.setdefault(
        SNAPSHOTS, {}
    )
    hit = cache.get((tenant, day))
    if hit is not None and hit[0] == version:
        return hit[1]
    snapshot = await _people(conn, rt, tenant, at)
    if len(cache) > 64:
        cache.clear()
    cache[(tenant, day)] = (version, snapshot)
    return snapshot


async def _people(conn: AsyncConnection, rt: Runtime, tenant: str, at: datetime) -> domain.People:
    """The directory in force on the date of ``at``, read from the copies' keys: which row of each person, unit
    and union is in force is decided on (id, effective_from, sequence) alone, and only a document not parsed
    before (a new row, or one a newer fact replaced: a higher sequence) is read and parsed. Equal to
    :func:`rebuild_people`, which parses everything."""
    day = at.astimezone(VN).date()
    parsed: dict[tuple[Any, ...], Any] = rt.extra.setdefault(PARSED, {}).setdefault(tenant, {})
    c = models.copies
    used: set[tuple[Any, ...]] = set()
    persons = [
        p
        for p in await _in_force(conn, c.people, "person_id", tenant, day, Person, parsed, used)
        if p.effective_to is None or p.effective_to >= day
    ]
    units = {u.id: u for u in await _in_force(conn, c.units, "unit_id", tenant, day, Unit, parsed, used)}
    unions = {u.id: u for u in await _in_force(conn, c.unions, "union_id", tenant, None, Union, parsed, used)}
    if len(parsed) > 2 * len(used) + 1000:  # forget superseded rows (kept while other dates may need them)
        for k in [k for k in parsed if k not in used]:
            del parsed[k]
    return domain.People(tuple(persons), units, unions)


async def _in_force(
    conn: AsyncConnection,
    t: sa.Table,
    key: str,
    tenant: str,
    day: date | None,
    model: Any,
    parsed: dict[tuple[Any, ...], Any],
    used: set[tuple[Any, ...]],
) -> list[Any]:
    """Per id (in id order), the row in force on ``day`` (the latest ``effective_from`` not after it; ``day``
    None: an undated table), parsed — from ``parsed`` when its (table, id, effective_from, sequence) was seen."""
    dated = day is not None
    cols = [t.c[key], t.c.effective_from if dated else sa.literal(None), t.c.sequence]
    q = sa.select(*cols).where(t.c.tenant == tenant)
    if dated:
        q = q.where(t.c.effective_from <= day).order_by(t.c[key], t.c.effective_from.desc())
    else:
        q = q.order_by(t.c[key])
    latest: list[tuple[Any, ...]] = []
    last_id = None
    for row_id, since, sequence in await conn.execute(q):
        if row_id != last_id:
            latest.append((t.name, row_id, since, sequence))
            last_id = row_id
    missing = [k for k in latest if k not in parsed]
    for i in range(0, len(missing), 500):
        ids = [k[1] for k in missing[i : i + 500]]
        wanted = set(missing[i : i + 500])
        docs = sa.select(
            t.c[key], t.c.effective_from if dated else sa.literal(None), t.c.sequence, t.c.doc
        ).where(t.c.tenant == tenant, t.c[key].in_(ids))
        for row_id, since, sequence, doc in await conn.execute(docs):
            k = (t.name, row_id, since, sequence)
            if k in wanted:
                parsed[k] = model.model_validate_json(doc)
    used.update(latest)
    return [parsed[k] for k in latest if k in parsed]


async def rebuild_people(conn: AsyncConnection, rt: Runtime, tenant: str, at: datetime) -> domain.People:
    """The same directory parsed whole from the copies (the reference :func:`_people` is tested against)."""
    assert rt.copies is not None
    persons = await rt.copies.people_in(conn, tenant, at)
    units = {}
    day = at.astimezone(VN).date()
    t = models.copies.units
    rows = (
        await conn.execute(
            sa.select(t.c.unit_id, t.c.doc)
            .where(t.c.tenant == tenant, t.c.effective_from <= day)
            .order_by(t.c.unit_id, t.c.effective_from)
        )
    ).all()

    for uid, doc in rows:
        units[uid] = Unit.model_validate_json(doc)  # the latest in force wins (ordered by effective_from)
    unions = await models.copies.unions_of(conn, tenant)
    return domain.People(tuple(persons), units, unions)


def _hhmm(value: str | None) -> time | None:
    return time.fromisoformat(value) if value else None


async def preference(conn: AsyncConnection, tenant: str, person_id: str) -> domain.Preference:
    rows = await select_rows(conn, models.preferences, tenant=tenant, person_id=person_id)
    row = rows[0] if rows else None
    if row is None:
        return domain.Preference()
    return domain.Preference(
        mode="digest" if row.mode == "digest" else "immediate",
        quiet_from=_hhmm(row.quiet_from),
        quiet_to=_hhmm(row.quiet_to),
        language="en" if row.language == "en" else "vi",
    )


async def enqueue(
    conn: AsyncConnection,
    rt: Runtime,
    *,
    tenant: str,
    edition: str | None,
    person: Person,
    template: str,
    context: dict[str, Any],
    cause_event_id: str,
    correlation_id: str | None,
    ids: dict[domain.Channel, str],
    channels: tuple[domain.Channel, ...] = (domain.IN_APP, domain.EMAIL),
) -> bool:
    """Write the in-app message and the email delivery of one message to one person; False if already there."""
    pref = await preference(conn, tenant, person.id)
    message = rendering.render(template, context, pref.language)
    now = rt.now()
    wrote = False
    if domain.IN_APP in channels:
        inapp_id = ids[domain.IN_APP]
        added = await insert_if_absent(
            conn,
            models.inapp,
            {
                "id": inapp_id,
                "tenant": tenant,
                "person_id": person.id,
                "channel": domain.IN_APP,
                "template": template,
                "title": message.subject,
                "body": message.text,
                "cause_event_id": cause_event_id,
                "created_at": now,
            },
        )
        if added:
            wrote = True
            await rt.outbox.emit(
                conn,
                "notification.sent",
                NotificationSent(
                    notification_id=inapp_id,
                    channel=domain.IN_APP,
                    recipient=person.id,
                    template=template,
                    cause_event_id=cause_event_id,
                    attempt=1,
                ),
                tenant=tenant,
                subject=inapp_id,
                time=now,
                edition=edition,
                causation_id=cause_event_id,
                event_id=domain.sent_event_id(inapp_id),
            )
    if domain.EMAIL in channels:
        plan = domain.schedule(template, pref, now)
        added = await insert_if_absent(
            conn,
            models.deliveries,
            {
                "id": ids[domain.EMAIL],
                "tenant": tenant,
                "edition": edition,
                "channel": domain.EMAIL,
                "template": template,
                "recipient": person.id,
                "to_address": person.email,
                "subject": message.subject,
                "text": message.text,
                "html": message.html,
                "cause_event_id": cause_event_id,
                "correlation_id": correlation_id,
                "status": "held" if plan.held else "pending",
                "lane": domain.lane(template),
                "digest_on": plan.digest_on,
                "due_at": plan.due_at,
                "attempts": 0,
                "next_attempt_at": datetime.now(UTC),
                "created_at": now,
            },
        )
        wrote = wrote or added
    return wrote


async def enqueue_webhooks(
    conn: AsyncConnection,
    rt: Runtime,
    *,
    tenant: str,
    edition: str | None,
    event_id: str,
    event_type: str,
    body: bytes,
    correlation_id: str | None,
) -> int:
    """One delivery per enabled subscription of ``tenant`` that wants ``event_type``."""
    w = models.webhooks
    batch = batch_reads()
    subs = batch.webhooks.get(tenant) if batch is not None else None
    if subs is None:
        subs = list((await conn.execute(sa.select(w).where(w.c.tenant == tenant))).all())
        if batch is not None:
            batch.webhooks[tenant] = subs
    n = 0
    for sub in subs:
        if not domain.webhook_wants(json.loads(sub.event_types), event_type):
            continue
        res = await insert_if_absent(
            conn,
            models.deliveries,
            {
                "id": domain.notification_id(event_id, sub.id, domain.WEBHOOK),
                "tenant": tenant,
                "edition": edition,
                "channel": domain.WEBHOOK,
                "template": event_type,
                "recipient": sub.id,
                "to_address": sub.url,
                "subject": event_type,
                "text": body.decode(),
                "html": None,
                "cause_event_id": event_id,
                "correlation_id": correlation_id,
                # a disabled subscription keeps what it misses, sent when it is enabled again
                "status": "pending" if sub.enabled else "paused",
                "attempts": 0,
                "next_attempt_at": datetime.now(UTC),
                "created_at": rt.now(),
            },
        )
        n += res
    return n
