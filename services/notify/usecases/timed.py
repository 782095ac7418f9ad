"""Timed messages on the shared clock: the daily "not yet submitted" lists and the 07:30 digests.

A background job looks every ``TICK`` seconds at the business clock (``rt.now()``, which ``hoithi clock set``
and ``System.set_clock`` move) — in one replica of the deployment, the holder of the ``notify-timed`` lease
(shared/lease.py); the others stand by and take over once it stops renewing. Every write transaction of a pass
is fenced by the lease's generation: a replica that stalled mid-pass past its lease (after reading the clock,
before writing) commits nothing after its successor took over — no yesterday's list after today's.

Beneath the lease, each timed message has a deterministic id per (kind, recipient, Vietnamese date), and each
daily run is claimed by a row in ``notify_timed_runs`` inserted with ON CONFLICT DO NOTHING in the same
transaction as its messages: a restart never sends a list or a digest twice. After downtime only the latest
list still due is sent (no stale lists).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from services.notify import domain, models
from services.notify.usecases import queue
from services.notify.usecases.queue import wake_event
from shared.db import insert_if_absent
from shared.documents import (
    Edition,
    ExperienceReportPart,
    deadline_label_en,
    deadline_label_vi,
    format_date_vn,
    format_datetime_vn,
)
from shared.lease import Lease, fenced_begin, periodic
from shared.service import Runtime

log = logging.getLogger("hoithi.notify.timed")

TICK = 1.0


TIMED_LEASE = "notify-timed"


async def timed_loop(rt: Runtime) -> None:
    """Run until cancelled (``ServiceSpec.background``) in the replica holding the timed lease; a failure
    (database down) is retried with backoff."""
    lease = rt.extra["timed_lease"] = Lease(rt.backbone.leases, TIMED_LEASE, ttl=rt.settings.lease_ttl)

    async def one_pass() -> float:
        if await run_due(rt, lease=lease):
            wake_event(rt).set()
        return TICK

    def failed(exc: Exception, failures: int) -> float:  # never give up; the next tick tries again
        delay = min(TICK * 2 ** min(failures, 5), 30.0)
        log.warning("timed messages failed (%d), retrying in %.1fs: %r", failures, delay, exc)
        return delay

    await periodic(rt.engine, lease, one_pass, standby=max(TICK, rt.settings.lease_ttl / 5), on_error=failed)


async def run_due(rt: Runtime, now: datetime | None = None, *, lease: Lease | None = None) -> int:
    """Write every timed message due at ``now`` (business time); return how many rows were written. Each
    write transaction is fenced by ``lease`` (``LeaseLost``: that transaction committed nothing)."""
    now = now or rt.now()
    return await mobilisation_due(rt, now, lease) + await digests_due(rt, now, lease)


async def _claim(conn: AsyncConnection, kind: str, tenant: str, day: Any, *scope: str) -> bool:
    key = domain.deterministic_id("timed-run", kind, tenant, *scope, day.isoformat())
    return await insert_if_absent(
        conn,
        models.timed_runs,
        {"key": key, "kind": kind, "tenant": tenant, "day": day, "done_at": datetime.now(UTC)},
    )


async def mobilisation_due(rt: Runtime, now: datetime, lease: Lease | None = None) -> int:
    async with rt.engine.connect() as conn:
        editions = await models.copies.latest_editions(conn)
    written = 0
    # The lists this process saw claimed (a claim is a row for good): not looked at again at every tick.
    claimed: set[tuple[Any, ...]] = rt.extra.setdefault("timed_claimed", set())
    for edition in editions:
        for part in edition.parts:
            if not isinstance(part, ExperienceReportPart) or part.mobilisation_lists is None:
                continue
            deadline = edition.deadline_of(part.id)
            day = domain.mobilisation_day(part, deadline, now)
            key = ("mobilisation", edition.tenant, edition.edition, part.id, day)
            if day is None or key in claimed:
                continue
            async with fenced_begin(rt.engine, lease) as conn:
                # Not before any assignment of the part is known: a list claimed on an empty copy is lost.
                if not await _assignments_known(conn, edition, part.id):
                    continue
                if await _claim(conn, "mobilisation", edition.tenant, day, edition.edition, part.id):
                    written += await _mobilisation(conn, rt, edition, part, day, now)
            claimed.add(key)  # committed: by this pass or an earlier one
    return written


async def _assignments_known(conn: AsyncConnection, edition: Edition, part: str) -> bool:
    t = models.assignments
    row = await conn.execute(
        sa.select(t.c.assignment_id)
        .where(t.c.tenant == edition.tenant, t.c.edition == edition.edition, t.c.part == part)
        .limit(1)
    )
    return row.first() is not None


async def _mobilisation(
    conn: AsyncConnection, rt: Runtime, edition: Edition, part: ExperienceReportPart, day: Any, now: datetime
) -> int:
    t = models.assignments
    rows = (
        await conn.execute(
            sa.select(t).where(
                t.c.tenant == edition.tenant,
                t.c.edition == edition.edition,
                t.c.part == part.id,
                t.c.open.is_(True),
                t.c.deadline > now,
            )
        )
    ).all()
    open_ = [domain.OpenAssignment(r.assignment_id, r.part, r.assignee_id, r.unit_id) for r in rows]
    who = await queue.people(conn, rt, edition.tenant, now)
    roles = [str(r) for r in part.assignees.mobilised_by] or ["unit_head", "union_secretary"]
    lists = domain.mobilisation_lists(open_, who, roles)
    cause = domain.deterministic_id("mobilisation", edition.tenant, edition.edition, part.id, day.isoformat())
    written = 0
    for person, names in lists.values():
        context = {
            **who.signature(),
            "person_name": person.name,
            "edition": edition.edition,
            "edition_title": edition.title,
            "part_title": part.title or part.id,
            "deadline_vn": format_datetime_vn(edition.deadline_of(part.id)),
            "deadline_label_vi": deadline_label_vi(edition.deadline_of(part.id)),
            "deadline_label_en": deadline_label_en(edition.deadline_of(part.id)),
            "day_vn": format_date_vn(day),
            "now_vn": format_datetime_vn(now),
            "names": list(names),
            "count": len(names),
        }
        written += await queue.enqueue(
            conn,
            rt,
            tenant=edition.tenant,
            edition=edition.edition,
            person=person,
            template=domain.MOBILISATION,
            context=context,
            cause_event_id=cause,
            correlation_id=None,
            ids={
                ch: domain.timed_id(
                    domain.MOBILISATION, person.id, day, ch, edition.tenant, edition.edition, part.id
                )
                for ch in (domain.IN_APP, domain.EMAIL)
            },
        )
    log.info("mobilisation lists of %s/%s for %s: %d recipients", edition.edition, part.id, day, len(lists))
    return written


async def digests_due(rt: Runtime, now: datetime, lease: Lease | None = None) -> int:
    t = models.deliveries
    async with rt.engine.connect() as conn:
        due = (
            await conn.execute(
                sa.select(t.c.tenant, t.c.recipient, t.c.digest_on)
                .where(t.c.status == "held", t.c.digest_on <= now.astimezone(domain.VN).date())
                .distinct()
            )
        ).all()
    written = 0
    for tenant, recipient, day in due:
        if not domain.digest_due(day, now):
            continue
        async with fenced_begin(rt.engine, lease) as conn:
            written += await _digest(conn, rt, tenant, recipient, day, now)
    return written


async def _digest(
    conn: AsyncConnection, rt: Runtime, tenant: str, recipient: str, day: Any, now: datetime
) -> int:
    t = models.deliveries
    held = (
        await conn.execute(
            sa.select(t)
            .where(
                t.c.tenant == tenant, t.c.recipient == recipient, t.c.status == "held", t.c.digest_on <= day
            )
            .order_by(t.c.created_at, t.c.id)
        )
    ).all()
    if not held:
        return 0
    digest_id = domain.timed_id(domain.DIGEST, recipient, day, domain.EMAIL, tenant)
    # Claim the held rows first: a second replica doing the same finds none left (conditional update).
    claimed = await conn.execute(
        sa.update(t)
        .where(t.c.id.in_([r.id for r in held]), t.c.status == "held")
        .values(status="digested", digest_id=digest_id)
    )
    if claimed.rowcount != len(held):
        raise RuntimeError("held rows changed meanwhile; the digest is retried on the next tick")
    assert rt.copies is not None
    person = await rt.copies.person(conn, tenant, recipient, now)
    if person is None:
        return 0
    context = {
        "person_name": person.name,
        "day_vn": format_date_vn(day),
        "items": [{"subject": r.subject, "text": r.text.strip()} for r in held],
    }
    return int(
        await queue.enqueue(
            conn,
            rt,
            tenant=tenant,
            edition=held[0].edition,
            person=person,
            template=domain.DIGEST,
            context=context,
            cause_event_id=digest_id,
            correlation_id=None,
            ids={domain.EMAIL: digest_id},
            channels=(domain.EMAIL,),
        )
    )
