"""The deadline clock (đồng hồ hạn chót): a background job on the shared clock, working from the database.

At each pass it reads "now" from the shared clock and, for every edition campaign keeps:

- sends the latest reminder offset already due for each open assignment, never at or after its deadline, and
  for the 90-day campaign's periodic reports (``report_every``) to units that have not reported for the period;
- decides a part's official deadline once it has passed, ``intake.closed`` for it has arrived and campaign has
  applied at least as many on-time receipts as submissions counted: ``deadline.missed`` per unfulfilled
  assignment and one ``deadline.passed``;
- decides each extended deadline the same way, from the ``intake.closed`` for that one assignee;
- emits ``edition.opened`` / ``edition.closed`` when their instants pass.

It touches only what is due. Each assignment carries its next reminder instant (``remind_at``, indexed, planned
by the clock for the deadline in force ``remind_for``), so a pass selects the due reminders by that index, in
chunks of ``HOITHI_CAMPAIGN_CLOCK_CHUNK`` (one bounded transaction each), and plans only assignments that are new
or whose deadline was extended. A deadline's misses are recorded in chunks too, the decision row and
``deadline.passed`` last. Every full pass ends knowing the next instant anything is due; until then the clock
only looks (every ``HOITHI_CAMPAIGN_CLOCK_INTERVAL`` seconds, default 0.5: the clock's anchor and one indexed
``max`` of campaign's outbox, which any change that matters to the clock — an assignment created, fulfilled,
reopened or extended, an edition published — moves) and runs a full pass only when something is due, something
changed, a decision waits for intake or receipts, or ``HOITHI_CAMPAIGN_CLOCK_FULL_EVERY`` seconds (default 30)
passed. That cap also bounds how late a change is seen whose outbox position was taken before the mark was read
but committed after it (concurrent writers on PostgreSQL), and an assignment reopened after its reminder came due
while it was fulfilled gets the next reminder still ahead, not the one it skipped.

Being down only delays a decision. One replica of the deployment ticks: the holder of the clock's lease
(shared/lease.py); every write transaction of a pass is fenced by the lease's generation, so a replica that
stalled past its lease's expiry commits nothing after its successor took over. Beneath that, each decision is
still a row with a unique key inserted in the same transaction as its summary event, each miss a row with a
unique key, and every event id is deterministic, so a decision is kept once even if two passes ever met.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from services.campaign import domain, models
from services.campaign.usecases import online
from services.campaign.usecases.assignments import emit_fulfilled, record_change
from services.campaign.usecases.extensions import edition_in_force, vn
from services.campaign.usecases.participation import restand
from shared import metrics
from shared.db import insert_if_absent
from shared.documents import Edition, OnlineServicesCampaignPart, deadline_label_vi, parse_duration
from shared.events.envelope import Envelope, deterministic_id
from shared.lease import Lease, periodic
from shared.service import Runtime

log = logging.getLogger("hoithi.campaign.clock")

CLOCKED_KINDS = ("initiative", "experience_report", "selection")


@dataclass
class ClockStatus:
    """What the clock last saw, for ``GET …/deadlines`` and for ops."""

    at: datetime | None = None
    ticks: int = 0  # every look at the clock, full pass or not
    passes: int = 0  # full passes
    last_error: str | None = None
    decided: int = 0
    reminders: int = 0
    sent: set[str] = field(
        default_factory=set
    )  # lifecycle event ids known to be in the outbox (saves a query)
    campaigns_done: set[tuple[str, str, str, datetime]] = field(default_factory=set)
    decided_keys: set[tuple[str, str, str, datetime, str]] = field(default_factory=set)
    report_batches: set[tuple[str, str, str, datetime, str]] = field(default_factory=set)
    planned: dict[tuple[str, str], int] = field(
        default_factory=dict
    )  # edition → version reminders planned for
    next_due: datetime | None = None  # the earliest instant anything is due, after the last full pass
    waiting: bool = False  # a passed deadline waits for intake or receipts: every look is a full pass
    token: Any = None  # campaign's outbox high-water mark when the last full pass began
    anchor: Any = None  # the clock's anchor when the last full pass began
    full_at: float = 0.0  # time.monotonic() of the last full pass
    lease: Lease | None = None  # the clock's lease: only its holder ticks


def status_of(rt: Runtime) -> ClockStatus:
    st = rt.extra.get("clock")
    if st is None:
        st = rt.extra["clock"] = ClockStatus()
    return st  # type: ignore[no-any-return]


CLOCK_LEASE = "campaign-deadline-clock"


def _chunk() -> int:
    return max(1, int(os.environ.get("HOITHI_CAMPAIGN_CLOCK_CHUNK", "500")))


async def deadline_clock(rt: Runtime) -> None:
    """The background job: look at the clock every ``HOITHI_CAMPAIGN_CLOCK_INTERVAL`` seconds (default 0.5) and
    run a full pass only when something is due or changed (see the module's doc) — in one replica of the
    deployment, the holder of the clock's lease; the others stand by and take over when it stops renewing.
    Every write of a pass is fenced by the lease's generation."""
    interval = float(os.environ.get("HOITHI_CAMPAIGN_CLOCK_INTERVAL", "0.5"))
    full_every = float(os.environ.get("HOITHI_CAMPAIGN_CLOCK_FULL_EVERY", "30"))
    st = status_of(rt)
    lease = st.lease = Lease(rt.backbone.leases, CLOCK_LEASE, ttl=rt.settings.lease_ttl)

    async def one_pass() -> float:
        await look(rt, lease, full_every=full_every)
        st.last_error = None
        return interval

    def failed(exc: Exception, failures: int) -> float:  # never stop the clock: log, back off, retry
        st.last_error = repr(exc)
        st.next_due = None  # whatever the failed pass planned is unknown: the next look is a full pass
        log.warning("deadline clock failed (attempt %d): %r", failures, exc)
        return min(0.2 * 2 ** min(failures, 6), 10.0)

    await periodic(
        rt.engine, lease, one_pass, standby=max(interval, rt.settings.lease_ttl / 5), on_error=failed
    )


def _anchor(rt: Runtime) -> tuple[Any, ...]:
    c = rt.clock
    return (c.simulated_at, c.real_at, c.rate)


async def _token(rt: Runtime) -> Any:
    """Campaign's outbox high-water mark: one indexed ``max``. Every write that changes what the clock must do
    (an assignment created, fulfilled, reopened, extended; an edition published) emits through this outbox."""
    o = rt.backbone.outbox
    async with rt.engine.connect() as conn:
        return (await conn.execute(sa.select(sa.func.max(o.c.position)))).scalar()


async def look(rt: Runtime, lease: Lease, *, full_every: float = 30.0) -> bool:
    """One look at the clock: a full pass (:func:`tick`) only if something is due at ``now``, something changed
    since the last pass, a decision waits, or the last pass is ``full_every`` seconds old. True if it ran one."""
    st = status_of(rt)
    now = rt.now()  # re-reads the clock's anchor file if it changed
    anchor = _anchor(rt)
    token = await _token(rt)
    if (
        st.next_due is not None
        and now < st.next_due
        and not st.waiting
        and token == st.token
        and anchor == st.anchor
        and time.monotonic() - st.full_at < full_every
    ):
        st.at = now
        st.ticks += 1
        return False
    await tick(rt, now, lease)
    # The mark read *before* the pass: the pass's own writes move it, so one more pass follows and finds
    # nothing to do; a change committed during the pass is never taken as seen.
    st.token, st.anchor, st.full_at = token, anchor, time.monotonic()
    return True


async def tick(rt: Runtime, now: datetime, lease: Lease) -> None:
    """One full pass of the clock at ``now``; every write is fenced by ``lease`` (``LeaseLost``: nothing of that
    transaction is committed, the successor decides). Leaves in the status the next instant anything is due."""
    st = status_of(rt)
    async with rt.engine.connect() as conn:
        editions = await models.copies.latest_editions(conn)
    due: list[datetime] = []
    waiting = False
    for edition in editions:
        due += await _edition_lifecycle(rt, lease, edition, now)
        await _replan_if_new_version(rt, lease, edition)
    by_key = {(e.tenant, e.edition): e for e in editions}
    passed: dict[tuple[str, str, str], list[tuple[str, datetime]]] = {}
    async with rt.engine.connect() as conn:
        for r in await conn.execute(extended_assignments(until=now)):
            passed.setdefault((r.tenant, r.edition, r.part), []).append((r.assignee_id, r.extended_to))
    await _plan_reminders(rt, lease, by_key, now)
    await _send_due_reminders(rt, lease, by_key, now)
    for edition in editions:
        for part in edition.parts:
            if isinstance(part, OnlineServicesCampaignPart):
                due += await _report_reminders(rt, lease, edition, part, now)
                due += await _campaign_result(rt, lease, edition, part, now)
                continue
            if part.kind not in CLOCKED_KINDS:
                continue
            deadline = edition.deadline_of(part.id)
            if now < deadline:
                due.append(deadline)
            else:
                waiting |= (
                    await _decide(rt, lease, edition, part.id, part.kind, deadline, "", now) == "waiting"
                )
            extended = passed.get((edition.tenant, edition.edition, part.id), [])
            for assignee, until in extended:
                waiting |= (
                    await _decide(rt, lease, edition, part.id, part.kind, until, assignee, now) == "waiting"
                )
    a = models.assignments
    async with rt.engine.connect() as conn:
        for nxt in (
            sa.select(sa.func.min(a.c.remind_at)),
            sa.select(sa.func.min(a.c.extended_to)).where(a.c.extended_to > now),
        ):
            at = (await conn.execute(nxt)).scalar()
            if at is not None:
                due.append(at)
    st.next_due = min(due) if due else now + timedelta(days=36500)
    st.waiting = waiting
    st.at = now
    st.ticks += 1
    st.passes += 1


# The bounds of every deadline: "extended" as a two-sided range of ix_assignments_extended_to, which every
# planner takes (``extended_to IS NOT NULL`` is no range to SQLite, and PostgreSQL without statistics prices an
# open range as a third of the table: a scan).
EVER = datetime(1970, 1, 1, tzinfo=UTC)
FOREVER = datetime(9999, 12, 31, tzinfo=UTC)


def extended_by(until: datetime = FOREVER) -> sa.ColumnElement[bool]:
    """The assignment was granted an extension, and its deadline in force is by ``until``."""
    a = models.assignments
    return sa.and_(a.c.extended_to > EVER, a.c.extended_to <= until)


def extended_assignments(*, until: datetime = FOREVER) -> sa.Select[Any]:
    """(tenant, edition, part, assignee_id, extended_to) of every assignment granted an extension whose deadline
    in force is by ``until``: a range of ``ix_assignments_extended_to`` — extensions are few. The edition and
    part are the caller's filter, not the statement's: with them as equalities, SQLite without statistics takes
    ``ix_assignments_standing`` and reads every assignment of the part (20,000 at a national contest, at every
    pass of the clock)."""
    a = models.assignments
    return sa.select(a.c.tenant, a.c.edition, a.c.part, a.c.assignee_id, a.c.extended_to).where(
        extended_by(until)
    )


async def _edition_lifecycle(rt: Runtime, lease: Lease, edition: Edition, now: datetime) -> list[datetime]:
    """``edition.opened`` / ``edition.closed`` once their instants pass; returns the instants still ahead."""
    ahead = []
    for type_, at in (("edition.opened", edition.opens_at), ("edition.closed", edition.closes_at)):
        if now < at:
            ahead.append(at)
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
    return ahead


# ---------------------------------------------------------------------------------------- reminders (nhắc hạn)


def _offsets(edition: Edition | None, part: str) -> list[tuple[str, timedelta]]:
    """The reminder offsets of a clocked part (the 90-day campaign's are per reporting period, not here)."""
    if edition is None:
        return []
    for p in edition.parts:
        if p.id == part:
            if isinstance(p, OnlineServicesCampaignPart) or p.kind not in CLOCKED_KINDS:
                return []
            return [(o, parse_duration(o)) for o in p.reminders]
    return []


def first_reminder_at(
    deadline: datetime, offsets: list[tuple[str, timedelta]], now: datetime
) -> datetime | None:
    """Where a newly planned assignment's agenda starts: the latest reminder instant already due (sent at once),
    else the earliest still ahead; None at or after the deadline or without offsets."""
    if now >= deadline or not offsets:
        return None
    instants = [deadline - d for _, d in offsets]
    passed = [t for t in instants if t <= now]
    return max(passed) if passed else min(instants)


def next_reminder_at(
    deadline: datetime, offsets: list[tuple[str, timedelta]], now: datetime
) -> datetime | None:
    """The next reminder instant strictly after ``now`` and before the deadline, if any."""
    ahead = [deadline - d for _, d in offsets if now < deadline - d < deadline]
    return min(ahead) if ahead else None


async def _set_agenda(conn: AsyncConnection, plans: dict[str, tuple[datetime, datetime | None]]) -> None:
    """Write ``assignment id → (remind_for, remind_at)``, one UPDATE per distinct plan (most share one)."""
    a = models.assignments
    groups: dict[tuple[datetime, datetime | None], list[str]] = {}
    for assignment_id, plan in plans.items():
        groups.setdefault(plan, []).append(assignment_id)
    for (remind_for, remind_at), ids in groups.items():
        await conn.execute(
            sa.update(a).where(a.c.id.in_(ids)).values(remind_for=remind_for, remind_at=remind_at)
        )


async def _replan_if_new_version(rt: Runtime, lease: Lease, edition: Edition) -> None:
    """A new version of an edition may change its offsets or deadlines: its assignments are planned again."""
    st = status_of(rt)
    key = (edition.tenant, edition.edition)
    if st.planned.get(key) == edition.version:
        return
    rp, a = models.reminder_plans, models.assignments
    async with rt.engine.connect() as conn:
        stored = (
            await conn.execute(sa.select(rp.c.version).where(rp.c.tenant == key[0], rp.c.edition == key[1]))
        ).scalar()
    if stored != edition.version:
        while True:  # forget the old plans in bounded transactions; planning picks the rows up again
            async with lease.begin(rt.engine) as conn:
                ids = (
                    (
                        await conn.execute(
                            sa.select(a.c.id)
                            .where(a.c.tenant == key[0], a.c.edition == key[1], a.c.remind_for.is_not(None))
                            .limit(_chunk())
                        )
                    )
                    .scalars()
                    .all()
                )
                if ids:
                    await conn.execute(
                        sa.update(a).where(a.c.id.in_(ids)).values(remind_for=None, remind_at=None)
                    )
                else:
                    await conn.execute(sa.delete(rp).where(rp.c.tenant == key[0], rp.c.edition == key[1]))
                    await conn.execute(
                        rp.insert().values(tenant=key[0], edition=key[1], version=edition.version)
                    )
            if not ids:
                break
    st.planned[key] = edition.version


async def _plan_reminders(
    rt: Runtime, lease: Lease, editions: dict[tuple[str, str], Edition], now: datetime
) -> None:
    """Plan the agenda of every assignment not planned yet (new) or planned for another deadline (extended)."""
    a = models.assignments
    cols = (a.c.id, a.c.tenant, a.c.edition, a.c.part, a.c.deadline, a.c.extended_to)
    for where in (
        a.c.remind_for.is_(None),
        sa.and_(
            extended_by(),
            sa.or_(a.c.remind_for.is_(None), a.c.remind_for != a.c.extended_to),
        ),
    ):
        while True:
            async with lease.begin(rt.engine) as conn:
                rows = (await conn.execute(sa.select(*cols).where(where).limit(_chunk()))).all()
                plans = {}
                for r in rows:
                    deadline = r.extended_to or r.deadline
                    offsets = _offsets(editions.get((r.tenant, r.edition)), r.part)
                    plans[r.id] = (deadline, first_reminder_at(deadline, offsets, now))
                await _set_agenda(conn, plans)
            if len(rows) < _chunk():
                break


async def _send_due_reminders(
    rt: Runtime, lease: Lease, editions: dict[tuple[str, str], Edition], now: datetime
) -> None:
    """Every assignment whose ``remind_at`` has come: its latest due reminder if it is still open, then its next
    instant — by the index, in bounded transactions."""
    st = status_of(rt)
    a = models.assignments
    while True:
        emitted = 0
        async with lease.begin(rt.engine) as conn:
            rows = (
                await conn.execute(
                    sa.select(a).where(a.c.remind_at <= now).order_by(a.c.remind_at).limit(_chunk())
                )
            ).all()
            plans = {}
            for row in rows:
                deadline = row.extended_to or row.deadline
                offsets = _offsets(editions.get((row.tenant, row.edition)), row.part)
                offset = domain.reminder_due(deadline, offsets, now)
                if (
                    offset is not None
                    and row.status == "open"
                    and await _emit_reminder(rt, conn, row, deadline, offset) is not None
                ):
                    emitted += 1
                plans[row.id] = (deadline, next_reminder_at(deadline, offsets, now))
            await _set_agenda(conn, plans)
        rt.outbox.committed()
        st.reminders += emitted
        metrics.deadlines_decided("reminder", emitted)
        if len(rows) < _chunk():
            return


async def _emit_reminder(
    rt: Runtime, conn: AsyncConnection, row: Any, deadline: datetime, offset: str
) -> Envelope | None:
    return await rt.outbox.emit(
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
        tenant=row.tenant,
        edition=row.edition,
        subject=row.id,
        time=deadline - parse_duration(offset),
        event_id=domain.reminder_id(row.id, offset, deadline),
    )


REPORT_REMINDERS = ("P1D",)  # a 90-day part with ``report_every`` and no reminders of its own


async def _report_reminders(
    rt: Runtime, lease: Lease, edition: Edition, part: OnlineServicesCampaignPart, now: datetime
) -> list[datetime]:
    """90-day campaign: remind each unit that has not yet reported for the period running now that its report
    is due at the period's end (``report_every``), by the part's reminder offsets (default one day before) —
    once per period and offset, when that offset comes due. Returns the next instant one comes due."""
    if not part.report_every:
        return []
    starts, ends = part.starts_at(edition.tz), part.deadline_instant(edition.tz)
    period = domain.report_period(starts, parse_duration(part.report_every), ends, now)
    if period is None:
        return [starts] if now < starts else []
    start, end = period
    offsets = [(o, parse_duration(o)) for o in (part.reminders or list(REPORT_REMINDERS))]
    ahead = [end] + [end - d for _, d in offsets if end - d > now]
    offset = domain.reminder_due(end, offsets, now)
    st = status_of(rt)
    key = (edition.tenant, edition.edition, part.id, end, offset or "")
    if offset is None or key in st.report_batches:
        return ahead
    t, a = models.progress_reports, models.assignments
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
    cursor = ""
    while True:
        emitted = 0
        async with lease.begin(rt.engine) as conn:
            rows = (
                await conn.execute(
                    sa.select(a)
                    .where(
                        a.c.tenant == edition.tenant,
                        a.c.edition == edition.edition,
                        a.c.part == part.id,
                        a.c.assignee_id > cursor,
                    )
                    .order_by(a.c.assignee_id)
                    .limit(_chunk())
                )
            ).all()
            for row in rows:
                if (
                    row.status == "open"
                    and row.unit_id not in reported
                    and await _emit_reminder(rt, conn, row, end, offset) is not None
                ):
                    emitted += 1
        rt.outbox.committed()
        st.reminders += emitted
        metrics.deadlines_decided("reminder", emitted)
        if len(rows) < _chunk():
            break
        cursor = rows[-1].assignee_id
    st.report_batches.add(key)
    return ahead


def receipts_before(
    tenant: str, edition: str, part: str, deadline: datetime, assignee: str
) -> sa.Select[Any]:
    """How many receipts of the part campaign has applied from before ``deadline``: everyone's (``assignee`` "",
    the part's deadline) or one assignee's (their extended deadline). A range of ``ix_receipts_part_assignee``."""
    r = models.receipts
    q = sa.select(sa.func.count()).select_from(r)
    q = q.where(r.c.tenant == tenant, r.c.edition == edition, r.c.part == part)
    if assignee:
        q = q.where(r.c.assignee_id == assignee)
    return q.where(r.c.received_at < deadline)


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
    before = receipts_before(edition.tenant, edition.edition, part, deadline, assignee)
    applied = int((await conn.execute(before)).scalar_one())
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
) -> str:
    """Decide one deadline (the part's when ``assignee`` is "", else that assignee's extended one), once: its
    misses in bounded transactions (each miss is kept once under its own key), then the decision row and
    ``deadline.passed``. Returns ``decided`` or ``waiting`` (for intake or receipts)."""
    st = status_of(rt)
    key = (edition.tenant, edition.edition, part, deadline, assignee)
    if key in st.decided_keys:
        return "decided"
    async with rt.engine.connect() as conn:
        state, _, _ = await deadline_state(conn, edition, part, deadline, assignee, now)
    if state == "decided":
        st.decided_keys.add(key)
        return state
    if state != "ready":
        return "waiting"
    a, m = models.assignments, models.misses
    scope = (a.c.tenant == edition.tenant) & (a.c.edition == edition.edition) & (a.c.part == part)
    if assignee:
        scope &= a.c.assignee_id == assignee
    cursor = ""
    while True:
        async with lease.begin(rt.engine) as conn:
            rows = (
                await conn.execute(
                    sa.select(a)
                    .where(scope, a.c.assignee_id > cursor)
                    .order_by(a.c.assignee_id)
                    .limit(_chunk())
                )
            ).all()
            by_id = {r.id: r for r in rows}
            for miss in domain.missed_at((_clocked(r) for r in rows), deadline):
                await _record_miss(rt, conn, edition, by_id[miss.id], part_kind, deadline)
        rt.outbox.committed()
        if len(rows) < _chunk():
            break
        cursor = rows[-1].assignee_id
    async with lease.begin(rt.engine) as conn:
        assigned = (await conn.execute(sa.select(sa.func.count()).select_from(a).where(scope))).scalar_one()
        fulfilled = (
            await conn.execute(
                sa.select(sa.func.count())
                .select_from(a)
                .where(scope, a.c.status == "fulfilled", a.c.on_time.is_(True))
            )
        ).scalar_one()
        mq = sa.select(m.c.assignment_id, m.c.assignee_id, m.c.unit_id).where(
            m.c.tenant == edition.tenant,
            m.c.edition == edition.edition,
            m.c.part == part,
            m.c.deadline == deadline,
        )
        if assignee:
            mq = mq.where(m.c.assignee_id == assignee)
        missed = [
            domain.ClockAssignment(r.assignment_id, r.assignee_id, r.unit_id, deadline, None, False)
            for r in await conn.execute(mq)
        ]
        # The decision's unique key: a second replica blocks here until the first commits, then inserts nothing.
        res = await insert_if_absent(
            conn,
            models.deadline_decisions,
            {
                "tenant": edition.tenant,
                "edition": edition.edition,
                "part": part,
                "deadline": deadline,
                "assignee_id": assignee,
                "assigned": int(assigned),
                "fulfilled": int(fulfilled),
                "missed": len(missed),
                "decided_at": now,
            },
        )
        if res and not assignee:
            await rt.outbox.emit(
                conn,
                "deadline.passed",
                {
                    "part": part,
                    "deadline": deadline,
                    "assigned": int(assigned),
                    "fulfilled": int(fulfilled),
                    "missed_by_unit": domain.missed_by_unit(missed),
                },
                tenant=edition.tenant,
                edition=edition.edition,
                subject=f"{edition.tenant}/{edition.edition}/{part}",
                time=deadline,
                event_id=domain.passed_id(edition.tenant, edition.edition, part, deadline),
            )
    rt.outbox.committed()
    st.decided_keys.add(key)
    if not res:
        return "decided"
    st.decided += 1
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
    return "decided"


def _clocked(r: Any) -> domain.ClockAssignment:
    return domain.ClockAssignment(
        r.id, r.assignee_id, r.unit_id, r.deadline, r.extended_to, r.status == "fulfilled" and bool(r.on_time)
    )


async def _campaign_result(
    rt: Runtime, lease: Lease, edition: Edition, part: OnlineServicesCampaignPart, now: datetime
) -> list[datetime]:
    """At the 90-day campaign's end: ``onlineservice.target.reached`` or ``.missed`` per unit, once. Returns the
    end while it is ahead."""
    end = part.deadline_instant(edition.tz)
    if now < end:
        return [end]
    key = (edition.tenant, edition.edition, part.id, end)
    if key in status_of(rt).campaigns_done:
        return []
    d = models.deadline_decisions
    async with rt.engine.connect() as conn:  # decided before (another replica, or before a restart)
        done = (
            await conn.execute(
                sa.select(d.c.decided_at).where(
                    d.c.tenant == edition.tenant,
                    d.c.edition == edition.edition,
                    d.c.part == part.id,
                    d.c.deadline == end,
                    d.c.assignee_id == "",
                )
            )
        ).first()
    if done is not None:
        status_of(rt).campaigns_done.add(key)
        return []
    async with lease.begin(rt.engine) as conn:
        result = await online.progress(conn, edition, part, end)
        res = await insert_if_absent(
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
        if res:
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
    return []


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
    await insert_if_absent(
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
    await restand(conn, [row.id])


# ---------------------------------------------------------------------------------------- where each deadline stands


async def board(rt: Runtime, tenant: str, edition: str) -> dict[str, Any]:
    """Per part: the official deadline, whether intake is closed, how many on-time receipts campaign has applied
    and whether misses are decided; then each extended deadline the same way; and the clock's own state."""
    now = rt.now()
    st = status_of(rt)
    out: list[dict[str, Any]] = []
    d = models.deadline_decisions
    async with rt.engine.connect() as conn:
        doc = await edition_in_force(conn, tenant, edition)
        extended = [
            r
            for r in await conn.execute(extended_assignments())
            if (r.tenant, r.edition) == (tenant, edition)
        ]
        for part in doc.parts:
            if part.kind not in CLOCKED_KINDS:
                continue
            targets: list[tuple[datetime, str]] = [(doc.deadline_of(part.id), "")]
            targets += [(r.extended_to, r.assignee_id) for r in extended if r.part == part.id]
            for deadline, assignee in targets:
                state, accepted, applied = await deadline_state(conn, doc, part.id, deadline, assignee, now)
                decision = (
                    await conn.execute(
                        sa.select(d).where(
                            d.c.tenant == tenant,
                            d.c.edition == edition,
                            d.c.part == part.id,
                            d.c.deadline == deadline,
                            d.c.assignee_id == assignee,
                        )
                    )
                ).first()
                out.append(
                    {
                        "part": part.id,
                        "assignee_id": assignee or None,
                        "deadline": vn(deadline),
                        "deadline_display": deadline_label_vi(deadline),
                        "state": state,
                        "intake_accepted_on_time": accepted,
                        "receipts_applied": applied,
                        "missed": decision.missed if decision else None,
                        "decided_at": vn(decision.decided_at) if decision else None,
                    }
                )
    return {
        "now": vn(now),
        "clock_at": vn(st.at),
        "clock_ticks": st.ticks,
        # Only the replica holding the clock's lease ticks; the others stand by (generation: the fencing token).
        "clock_lease": {
            "held": st.lease is not None and st.lease.held,
            "generation": st.lease.generation if st.lease is not None else None,
        },
        "clock_error": st.last_error,
        "deadlines": out,
    }
