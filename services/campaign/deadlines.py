"""The deadline clock (đồng hồ hạn chót): a background job on the shared clock, working from the database.

Every tick it reads "now" from the shared clock and, for every edition campaign keeps:

- sends the latest reminder offset already due for each open assignment, never at or after its deadline, and
  for the 90-day campaign's periodic reports (``report_every``) to units that have not reported for the period;
- decides a part's official deadline once it has passed, ``intake.closed`` for it has arrived and campaign has
  applied at least as many on-time receipts as submissions counted: ``deadline.missed`` per unfulfilled
  assignment and one ``deadline.passed``;
- decides each extended deadline the same way, from the ``intake.closed`` for that one assignee;
- emits ``edition.opened`` / ``edition.closed`` when their instants pass.

Being down only delays a decision. One replica of the deployment ticks: the holder of the clock's lease
(shared/lease.py); every write transaction of a tick is fenced by the lease's generation, so a replica that
stalled past its lease's expiry commits nothing after its successor took over. Beneath that, each decision is
still a row with a unique key inserted in the same transaction as its events, and every event id is
deterministic, so a decision is kept once even if two ticks ever met.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from services.campaign import domain, models, online
from services.campaign.assignments import emit_fulfilled, record_change
from shared import metrics
from shared.db import insert_ignore
from shared.documents import Edition, OnlineServicesCampaignPart, parse_duration
from shared.events.envelope import Envelope, deterministic_id
from shared.lease import Lease, periodic
from shared.service import Runtime

log = logging.getLogger("hoithi.campaign.clock")

CLOCKED_KINDS = ("initiative", "experience_report", "selection")


@dataclass
class ClockStatus:
    """What the last tick saw, for ``GET …/deadlines`` and for ops."""

    at: datetime | None = None
    ticks: int = 0
    last_error: str | None = None
    decided: int = 0
    reminders: int = 0
    sent: set[str] = field(default_factory=set)  # reminder ids known to be in the outbox (saves a query)
    campaigns_done: set[tuple[str, str, str, datetime]] = field(default_factory=set)
    lease: Lease | None = None  # the clock's lease: only its holder ticks


def status_of(rt: Runtime) -> ClockStatus:
    st = rt.extra.get("clock")
    if st is None:
        st = rt.extra["clock"] = ClockStatus()
    return st  # type: ignore[no-any-return]


CLOCK_LEASE = "campaign-deadline-clock"


async def deadline_clock(rt: Runtime) -> None:
    """The background job: tick, then wait ``HOITHI_CAMPAIGN_CLOCK_INTERVAL`` seconds (default 0.5) — in one
    replica of the deployment, the holder of the clock's lease; the others stand by and take over when it
    stops renewing. Every write of a tick is fenced by the lease's generation."""
    interval = float(os.environ.get("HOITHI_CAMPAIGN_CLOCK_INTERVAL", "0.5"))
    st = status_of(rt)
    lease = st.lease = Lease(rt.backbone.leases, CLOCK_LEASE, ttl=rt.settings.lease_ttl)

    async def one_pass() -> float:
        await tick(rt, rt.now(), lease)
        st.last_error = None
        return interval

    def failed(exc: Exception, failures: int) -> float:  # never stop the clock: log, back off, retry
        st.last_error = repr(exc)
        log.warning("deadline clock failed (attempt %d): %r", failures, exc)
        return min(0.2 * 2 ** min(failures, 6), 10.0)

    await periodic(
        rt.engine, lease, one_pass, standby=max(interval, rt.settings.lease_ttl / 5), on_error=failed
    )


async def latest_editions(conn: AsyncConnection) -> list[Edition]:
    e = models.copies.editions
    rows = (await conn.execute(sa.select(e.c.tenant, e.c.edition, e.c.version, e.c.doc))).all()
    latest: dict[tuple[str, str], tuple[int, str]] = {}
    for r in rows:
        key = (r.tenant, r.edition)
        if key not in latest or r.version > latest[key][0]:
            latest[key] = (r.version, r.doc)
    return [Edition.model_validate_json(doc) for _, doc in latest.values()]


async def tick(rt: Runtime, now: datetime, lease: Lease) -> None:
    """One pass of the clock at ``now``; every write is fenced by ``lease`` (``LeaseLost``: nothing of that
    transaction is committed, the successor decides)."""
    st = status_of(rt)
    async with rt.engine.connect() as conn:
        editions = await latest_editions(conn)
    for edition in editions:
        await _edition_lifecycle(rt, lease, edition, now)
        for part in edition.parts:
            if isinstance(part, OnlineServicesCampaignPart):
                await _report_reminders(rt, lease, edition, part, now)
                await _campaign_result(rt, lease, edition, part, now)
                continue
            if part.kind not in CLOCKED_KINDS:
                continue
            await _reminders(rt, lease, edition, part.id, part.reminders, now)
            await _decide(rt, lease, edition, part.id, part.kind, edition.deadline_of(part.id), "", now)
            async with rt.engine.connect() as conn:
                a = models.assignments
                extended = (
                    await conn.execute(
                        sa.select(a.c.assignee_id, a.c.extended_to).where(
                            a.c.tenant == edition.tenant,
                            a.c.edition == edition.edition,
                            a.c.part == part.id,
                            a.c.extended_to.is_not(None),
                            a.c.extended_to <= now,
                        )
                    )
                ).all()
            for assignee, until in extended:
                await _decide(rt, lease, edition, part.id, part.kind, until, assignee, now)
    st.at = now
    st.ticks += 1


async def _edition_lifecycle(rt: Runtime, lease: Lease, edition: Edition, now: datetime) -> None:
    for type_, at in (("edition.opened", edition.opens_at), ("edition.closed", edition.closes_at)):
        if now < at:
            continue
        event_id = deterministic_id(type_, edition.tenant, edition.edition)
        if event_id in status_of(rt).sent:
            continue
        try:
            async with lease.begin(rt.engine) as conn:
                await rt.outbox.emit(
                    conn,
                    type_,
                    {"at": at, "edition_version": edition.version},
                    tenant=edition.tenant,
                    edition=edition.edition,
                    subject=f"{edition.tenant}/{edition.edition}",
                    time=at,
                    event_id=event_id,
                )
        except IntegrityError:
            pass  # another replica recorded it first
        rt.outbox.committed()
        status_of(rt).sent.add(event_id)


REPORT_REMINDERS = ("P1D",)  # a 90-day part with ``report_every`` and no reminders of its own


async def _report_reminders(
    rt: Runtime, lease: Lease, edition: Edition, part: OnlineServicesCampaignPart, now: datetime
) -> None:
    """90-day campaign: remind each unit that has not yet reported for the period running now that its report
    is due at the period's end (``report_every``), by the part's reminder offsets (default one day before)."""
    if not part.report_every:
        return
    period = domain.report_period(
        part.starts_at(edition.tz), parse_duration(part.report_every), part.deadline_instant(edition.tz), now
    )
    if period is None:
        return
    start, end = period
    t = models.progress_reports
    async with rt.engine.connect() as conn:
        reported = set(
            (
                await conn.execute(
                    sa.select(t.c.unit_id).where(
                        t.c.tenant == edition.tenant,
                        t.c.edition == edition.edition,
                        t.c.part == part.id,
                        t.c.period_start < end,
                        t.c.period_end > start,
                    )
                )
            ).scalars()
        )
    await _reminders(
        rt,
        lease,
        edition,
        part.id,
        part.reminders or list(REPORT_REMINDERS),
        now,
        deadline_of=lambda row: None if row.unit_id in reported else end,
    )


async def _reminders(
    rt: Runtime,
    lease: Lease,
    edition: Edition,
    part: str,
    offsets: list[str],
    now: datetime,
    deadline_of: Callable[[Any], datetime | None] | None = None,
) -> None:
    """The latest due reminder for each open assignment of ``part`` (deadline in force, or ``deadline_of``)."""
    if not offsets:
        return
    st = status_of(rt)
    deltas = [(o, parse_duration(o)) for o in offsets]
    a = models.assignments
    async with rt.engine.connect() as conn:
        rows = (
            await conn.execute(
                sa.select(a).where(
                    a.c.tenant == edition.tenant,
                    a.c.edition == edition.edition,
                    a.c.part == part,
                    a.c.status == "open",
                )
            )
        ).all()
    due = []
    for row in rows:
        deadline = (row.extended_to or row.deadline) if deadline_of is None else deadline_of(row)
        if deadline is None:
            continue
        offset = domain.reminder_due(deadline, deltas, now)
        if offset is None:
            continue
        event_id = domain.reminder_id(row.id, offset, deadline)
        if event_id not in st.sent:
            due.append((row, deadline, offset, event_id))
    if not due:
        return
    # One transaction for the tick's reminders (hundreds at a catch-up): one commit, not one per assignment.
    emitted = 0
    try:
        async with lease.begin(rt.engine) as conn:
            for row, deadline, offset, event_id in due:
                # re-check inside the transaction: fulfilled meanwhile → no reminder
                current = (await conn.execute(sa.select(a.c.status).where(a.c.id == row.id))).scalar()
                if current != "open":
                    continue
                env = await rt.outbox.emit(
                    conn,
                    "deadline.approaching",
                    {
                        "assignment_id": row.id,
                        "part": row.part,
                        "assignee_kind": row.assignee_kind,
                        "assignee_id": row.assignee_id,
                        "unit_id": row.unit_id,
                        "deadline": deadline,
                        "offset": offset,
                    },
                    tenant=edition.tenant,
                    edition=edition.edition,
                    subject=row.id,
                    time=deadline - parse_duration(offset),
                    event_id=event_id,
                )
                if env is not None:
                    st.reminders += 1
                    emitted += 1
    except IntegrityError:
        return  # another replica sent some of them first: the next tick skips what is in the outbox
    rt.outbox.committed()
    metrics.deadlines_decided("reminder", emitted)
    st.sent.update(event_id for *_, event_id in due)


async def deadline_state(
    conn: AsyncConnection, edition: Edition, part: str, deadline: datetime, assignee: str, now: datetime
) -> tuple[str, int | None, int]:
    """(state, accepted_on_time or None, on-time receipts applied) of one deadline; state ``decided`` once done."""
    d = models.deadline_decisions
    key = (
        (d.c.tenant == edition.tenant)
        & (d.c.edition == edition.edition)
        & (d.c.part == part)
        & (d.c.deadline == deadline)
        & (d.c.assignee_id == assignee)
    )
    ic = models.intake_closures
    accepted = (
        await conn.execute(
            sa.select(ic.c.accepted_on_time).where(
                ic.c.tenant == edition.tenant,
                ic.c.edition == edition.edition,
                ic.c.part == part,
                ic.c.deadline == deadline,
                ic.c.assignee_id == assignee,
            )
        )
    ).scalar()
    r = models.receipts
    q = (
        sa.select(sa.func.count())
        .select_from(r)
        .where(
            r.c.tenant == edition.tenant,
            r.c.edition == edition.edition,
            r.c.part == part,
            r.c.received_at < deadline,
        )
    )
    if assignee:
        q = q.where(r.c.assignee_id == assignee)
    applied = int((await conn.execute(q)).scalar_one())
    if (await conn.execute(sa.select(d.c.decided_at).where(key))).first() is not None:
        return "decided", accepted, applied
    return domain.decision_ready(now, deadline, accepted, applied), accepted, applied


async def _decide(
    rt: Runtime,
    lease: Lease,
    edition: Edition,
    part: str,
    part_kind: str,
    deadline: datetime,
    assignee: str,
    now: datetime,
) -> None:
    """Decide one deadline (the part's when ``assignee`` is "", else that assignee's extended one), once."""
    async with rt.engine.connect() as conn:
        state, _, _ = await deadline_state(conn, edition, part, deadline, assignee, now)
    if state != "ready":
        return
    a = models.assignments
    async with lease.begin(rt.engine) as conn:
        q = sa.select(a).where(a.c.tenant == edition.tenant, a.c.edition == edition.edition, a.c.part == part)
        if assignee:
            q = q.where(a.c.assignee_id == assignee)
        rows = (await conn.execute(q)).all()
        clocked = [
            domain.ClockAssignment(
                r.id,
                r.assignee_id,
                r.unit_id,
                r.deadline,
                r.extended_to,
                r.status == "fulfilled" and bool(r.on_time),
            )
            for r in rows
        ]
        missed = domain.missed_at(clocked, deadline)
        fulfilled = sum(1 for c in clocked if c.fulfilled_on_time)
        # The decision's unique key: a second replica blocks here until the first commits, then inserts nothing.
        res = await conn.execute(
            insert_ignore(
                conn,
                models.deadline_decisions,
                {
                    "tenant": edition.tenant,
                    "edition": edition.edition,
                    "part": part,
                    "deadline": deadline,
                    "assignee_id": assignee,
                    "assigned": len(clocked),
                    "fulfilled": fulfilled,
                    "missed": len(missed),
                    "decided_at": now,
                },
            )
        )
        if not res.rowcount:
            return
        by_id = {r.id: r for r in rows}
        for m in missed:
            await _record_miss(rt, conn, edition, by_id[m.id], part_kind, deadline)
        if not assignee:
            await rt.outbox.emit(
                conn,
                "deadline.passed",
                {
                    "part": part,
                    "deadline": deadline,
                    "assigned": len(clocked),
                    "fulfilled": fulfilled,
                    "missed_by_unit": domain.missed_by_unit(missed),
                },
                tenant=edition.tenant,
                edition=edition.edition,
                subject=f"{edition.tenant}/{edition.edition}/{part}",
                time=deadline,
                event_id=domain.passed_id(edition.tenant, edition.edition, part, deadline),
            )
    rt.outbox.committed()
    status_of(rt).decided += 1
    metrics.deadlines_decided("deadline")
    metrics.deadlines_decided("missed", len(missed))
    log.info(
        "deadline decided: %s/%s %s %s%s: %d missed",
        edition.tenant,
        edition.edition,
        part,
        deadline.isoformat(),
        f" ({assignee})" if assignee else "",
        len(missed),
    )


async def _campaign_result(
    rt: Runtime, lease: Lease, edition: Edition, part: OnlineServicesCampaignPart, now: datetime
) -> None:
    """At the 90-day campaign's end: ``onlineservice.target.reached`` or ``.missed`` per unit, once."""
    end = part.deadline_instant(edition.tz)
    if now < end:
        return
    key = (edition.tenant, edition.edition, part.id, end)
    if key in status_of(rt).campaigns_done:
        return
    async with lease.begin(rt.engine) as conn:
        result = await online.progress(conn, edition, part, end)
        res = await conn.execute(
            insert_ignore(
                conn,
                models.deadline_decisions,
                {
                    "tenant": edition.tenant,
                    "edition": edition.edition,
                    "part": part.id,
                    "deadline": end,
                    "assignee_id": "",
                    "assigned": len(result["units"]),
                    "fulfilled": sum(1 for u in result["units"] if not u["unmet"]),
                    "missed": sum(1 for u in result["units"] if u["unmet"]),
                    "decided_at": now,
                },
            )
        )
        if res.rowcount:
            a = models.assignments
            rows = {
                r.id: r
                for r in await conn.execute(
                    sa.select(a).where(
                        a.c.tenant == edition.tenant, a.c.edition == edition.edition, a.c.part == part.id
                    )
                )
            }
            for u in result["units"]:
                type_ = "onlineservice.target.missed" if u["unmet"] else "onlineservice.target.reached"
                env = await rt.outbox.emit(
                    conn,
                    type_,
                    {
                        "assignment_id": u["assignment_id"],
                        "part": part.id,
                        "unit_id": u["unit_id"],
                        "at": end,
                        "figures": {k: v for k, v in u["figures"].items() if v is not None},
                        "targets": {k: v for k, v in result["targets"].items() if v is not None},
                        "unmet": u["unmet"],
                    },
                    tenant=edition.tenant,
                    edition=edition.edition,
                    subject=u["assignment_id"],
                    time=end,
                    event_id=deterministic_id(type_, edition.tenant, edition.edition, u["assignment_id"]),
                )
                row = rows.get(u["assignment_id"])
                if env is None or row is None or row.status == "fulfilled":
                    continue
                # Every assignment ends fulfilled or missed, once (under this decision's unique key).
                if u["unmet"]:  # ``deadline.missed`` once, as for any part
                    await _record_miss(rt, conn, edition, row, row.part_kind, end)
                else:
                    await _campaign_fulfilled(rt, conn, edition, part, row, end, env)
    rt.outbox.committed()
    status_of(rt).campaigns_done.add(key)


async def _campaign_fulfilled(
    rt: Runtime,
    conn: AsyncConnection,
    edition: Edition,
    part: OnlineServicesCampaignPart,
    row: Any,
    end: datetime,
    cause: Envelope,
) -> None:
    """A unit that reached its targets fulfilled its 90-day assignment, on time: when its last report before
    the end came in (the evidence), at the latest just before the end."""
    t = models.progress_reports
    last = (
        await conn.execute(
            sa.select(sa.func.max(t.c.reported_at)).where(
                t.c.tenant == edition.tenant,
                t.c.edition == edition.edition,
                t.c.part == part.id,
                t.c.unit_id == row.unit_id,
                t.c.period_start < end,
            )
        )
    ).scalar()
    at = min(last or part.starts_at(edition.tz), end - timedelta(microseconds=1))
    a = models.assignments
    await conn.execute(
        sa.update(a).where(a.c.id == row.id).values(status="fulfilled", fulfilled_at=at, on_time=True)
    )
    await record_change(conn, row, cause, status="fulfilled", fulfilled_at=at, on_time=True)
    await emit_fulfilled(
        rt,
        conn,
        row,
        at=at,
        deadline=end,
        on_time=True,
        cause=cause,
        event_id=deterministic_id(
            "assignment.fulfilled", edition.tenant, edition.edition, row.id, end.isoformat()
        ),
    )


async def _record_miss(
    rt: Runtime, conn: AsyncConnection, edition: Edition, row: Any, part_kind: str, deadline: datetime
) -> None:
    """``deadline.missed`` for assignment ``row`` and its row in ``misses``, under the miss's deterministic id
    (so once per assignment and deadline): a part's deadline or the 90-day campaign's end."""
    event_id = domain.miss_id(edition.tenant, edition.edition, row.id, deadline)
    await rt.outbox.emit(
        conn,
        "deadline.missed",
        {
            "assignment_id": row.id,
            "part": row.part,
            "part_kind": part_kind,
            "assignee_kind": row.assignee_kind,
            "assignee_id": row.assignee_id,
            "unit_id": row.unit_id,
            "deadline": deadline,
        },
        tenant=edition.tenant,
        edition=edition.edition,
        subject=row.id,
        time=deadline,
        event_id=event_id,
    )
    await conn.execute(
        insert_ignore(
            conn,
            models.misses,
            {
                "assignment_id": row.id,
                "deadline": deadline,
                "tenant": edition.tenant,
                "edition": edition.edition,
                "part": row.part,
                "assignee_id": row.assignee_id,
                "unit_id": row.unit_id,
                "event_id": event_id,
            },
        )
    )
