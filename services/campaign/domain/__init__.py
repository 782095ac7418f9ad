"""Campaign's rules, pure: who must deliver what by when, and whether a submission's facts fulfil it."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from shared import lifecycle
from shared.documents import Directory, Edition, ExperienceReportPart, InitiativePart
from shared.events.envelope import deterministic_id


@dataclass(frozen=True)
class PlannedAssignment:
    id: str
    part: str
    part_kind: str
    assignee_kind: str  # unit | person | council
    assignee_id: str
    unit_id: str | None
    deadline: datetime


def assignment_id(tenant: str, edition: str, part: str, assignee_id: str) -> str:
    return deterministic_id("assignment", tenant, edition, part, assignee_id)


def derive_assignments(
    edition: Edition, directory: Directory, as_of: date | None = None
) -> list[PlannedAssignment]:
    """One assignment per assignee of each part, from the directory as of the edition's opening."""
    day = as_of or edition.opens
    out: list[PlannedAssignment] = []
    for part in edition.parts:
        deadline = edition.deadline_of(part.id)
        a = part.assignees

        def plan(
            kind: str, assignee: str, unit: str | None, part: Any = part, deadline: datetime = deadline
        ) -> PlannedAssignment:
            return PlannedAssignment(
                assignment_id(edition.tenant, edition.edition, part.id, assignee),
                part.id,
                part.kind,
                kind,
                assignee,
                unit,
                deadline,
            )

        if a.units is not None:
            out += [plan("unit", u.id, u.id) for u in directory.select_units(a.units, day)]
        if a.people is not None:
            out += [plan("person", p.id, p.unit) for p in directory.select_people(a.people, day)]
        if a.council is not None:
            out.append(plan("council", a.council, None))
    return out


def fulfilling_assignee(
    part: InitiativePart | ExperienceReportPart | object, author_id: str, unit_id: str
) -> str:
    """Whose assignment a submission fulfils: the unit's for an initiative, the author's for a report."""
    return unit_id if getattr(part, "kind", None) == "initiative" else author_id


@dataclass(frozen=True)
class Fulfilment:
    """What fulfils an assignment: the earliest of its assignee's live submissions (for a selection part, the
    council's earliest standing selection), judged against the deadline in force (exclusive end)."""

    submission_id: str
    at: datetime
    on_time: bool


@dataclass(frozen=True)
class FulfilmentChange:
    """The assignment's derived state changed at business time ``at`` (``cause_id``: the fact at that time)."""

    at: datetime
    cause_id: str
    fulfilment: Fulfilment | None  # None: open


def fulfilment(
    submissions: Iterable[lifecycle.Lifecycle], deadline: datetime, *, selection: bool = False
) -> Fulfilment | None:
    """The assignment's state as a function of the *set* of its assignee's submissions, whatever the order
    their facts arrived in: fulfilled by the earliest live one (ties: the smaller submission id), else open.

    ``deadline`` is the deadline in force (an extension included); on time means strictly before it."""
    if selection:
        found = [(s.selected_at, s.submission_id) for s in submissions if s.selected]
    else:
        found = [(s.received_at, s.submission_id) for s in submissions if s.live]
    candidates = [(at, sid) for at, sid in found if at is not None and sid is not None]
    if not candidates:
        return None
    at, sid = min(candidates, key=lambda c: (c[0], c[1]))
    return Fulfilment(sid, at, at < deadline)


def fulfilment_history(
    facts: Mapping[str, Sequence[lifecycle.SubmissionFact]], deadline: datetime, *, selection: bool = False
) -> list[FulfilmentChange]:
    """Every change of the derived state by business time: at each instant a fact happened, the state folded
    from the facts at or before it. ``facts``: each of the assignee's submissions' kept facts. The last change
    is the current state (none: open all along). Participation "as of" reads this history."""
    instants: dict[datetime, str] = {}
    for fs in facts.values():
        for f in fs:
            if f.type in lifecycle.LIFECYCLE_TYPES:
                t = lifecycle.fact_time(f)
                instants[t] = max(instants.get(t, ""), f.id)
    out: list[FulfilmentChange] = []
    current: Fulfilment | None = None
    for t in sorted(instants):
        state = fulfilment(
            (lifecycle.fold(fs, as_of=t) for fs in facts.values()), deadline, selection=selection
        )
        if state != current:
            out.append(FulfilmentChange(t, instants[t], state))
            current = state
    return out


# ------------------------------------------------------------------------------------ the deadline clock
# Ids are deterministic (UUIDv5): every replica, restart or rebuild deciding the same fact gets the same id, so
# the outbox's unique event id and the stream's duplicate window keep it once.


def _instant(at: datetime) -> str:
    """One spelling per instant (UTC), whatever zone the caller's datetime carries."""
    return at.astimezone(UTC).isoformat()


def miss_id(tenant: str, edition: str, assignment_id: str, deadline: datetime) -> str:
    """``deadline.missed`` of (tenant, edition, assignment, deadline in force)."""
    return deterministic_id("deadline.missed", tenant, edition, assignment_id, _instant(deadline))


def reminder_id(assignment_id: str, offset: str, deadline: datetime) -> str:
    """``deadline.approaching`` of (assignment, offset, deadline in force)."""
    return deterministic_id("deadline.approaching", assignment_id, offset, _instant(deadline))


def passed_id(tenant: str, edition: str, part: str, deadline: datetime) -> str:
    """``deadline.passed`` of (part, deadline)."""
    return deterministic_id("deadline.passed", tenant, edition, part, _instant(deadline))


def reminder_due(deadline: datetime, offsets: Iterable[tuple[str, timedelta]], now: datetime) -> str | None:
    """The one reminder offset to send at ``now``: the latest (closest to the deadline) already due.

    None at or after the deadline — a catch-up after downtime never sends a stale reminder — and None before
    the earliest offset is due.
    """
    if now >= deadline:
        return None
    due = [(delta, name) for name, delta in offsets if deadline - delta <= now]
    return min(due)[1] if due else None


def report_period(
    starts: datetime, every: timedelta, ends: datetime, now: datetime
) -> tuple[datetime, datetime] | None:
    """The 90-day campaign's reporting period running at ``now`` (báo cáo định kỳ): ``[start, end)`` with the
    report due by ``end``; the last period is cut at the campaign's end. None outside the campaign."""
    if now < starts or now >= ends or every <= timedelta(0):
        return None
    start = starts + every * ((now - starts) // every)
    return start, min(start + every, ends)


@dataclass(frozen=True)
class ClockAssignment:
    """What the clock needs of an assignment to decide a deadline."""

    id: str
    assignee_id: str
    unit_id: str | None
    deadline: datetime  # the part's official deadline
    extended_to: datetime | None
    fulfilled_on_time: bool

    @property
    def deadline_in_force(self) -> datetime:
        return self.extended_to if self.extended_to is not None else self.deadline


def decision_ready(
    now: datetime, deadline: datetime, accepted_on_time: int | None, receipts_applied: int
) -> str:
    """Where one deadline stands: ``open`` | ``waiting_for_intake`` | ``waiting_for_receipts`` | ``ready``.

    Misses are decided only once the deadline has passed, submissions has closed the intake for it, and
    campaign has applied at least as many on-time receipts as submissions accepted: a receipt still in flight
    at midnight is never turned into a miss.
    """
    if now < deadline:
        return "open"
    if accepted_on_time is None:
        return "waiting_for_intake"
    if receipts_applied < accepted_on_time:
        return "waiting_for_receipts"
    return "ready"


def missed_at(assignments: Iterable[ClockAssignment], deadline: datetime) -> list[ClockAssignment]:
    """The assignments whose deadline in force is ``deadline`` and that were not fulfilled on time for it.

    An assignee with an extension beyond ``deadline`` is not missed at it; their own deadline decides later.
    """
    return [a for a in assignments if a.deadline_in_force == deadline and not a.fulfilled_on_time]


def missed_by_unit(missed: Iterable[ClockAssignment]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for a in missed:
        out.setdefault(a.unit_id or "", []).append(a.assignee_id)
    return {k: sorted(v) for k, v in sorted(out.items())}


# ------------------------------------------------------------------------------------ participation (tham gia)

STANDINGS = ("assigned", "fulfilled", "fulfilled_late", "missed", "extended", "open")


@dataclass(frozen=True)
class StatusChange:
    """One change of an assignment's status at the business time of the fact that caused it."""

    at: datetime
    fulfilled: bool  # False: reopened (withdrawn, rejected)
    on_time: bool | None = None


@dataclass(frozen=True)
class AssignmentFacts:
    """What campaign knows of one assignment, each with its business time."""

    id: str
    part: str
    assignee_id: str
    unit_id: str | None  # the assignee's unit when the assignment was made
    changes: tuple[StatusChange, ...] = ()  # in the order they happened
    missed_at: tuple[datetime, ...] = ()  # deadlines (in force) that were missed
    extended_at: tuple[datetime, ...] = ()  # when extensions were granted


def standing(a: AssignmentFacts, as_of: datetime) -> str:
    """One of fulfilled | fulfilled_late | missed | extended | open, by business time ``as_of``: the last status
    change at or before it decides fulfilment (a withdrawal after ``as_of`` does not undo it)."""
    last = None
    for change in a.changes:
        if change.at <= as_of:
            last = change
    if last is not None and last.fulfilled:
        return "fulfilled" if last.on_time else "fulfilled_late"
    if any(m <= as_of for m in a.missed_at):
        return "missed"
    if any(e <= as_of for e in a.extended_at):
        return "extended"
    return "open"


def tally(assignments: Iterable[AssignmentFacts], as_of: datetime, key: Any) -> dict[str, dict[str, int]]:
    """Counts per group (``key(assignment)`` → group id, or a list of ids, or None to skip)."""
    pairs = []
    for a in assignments:
        groups = key(a)
        if groups is None:
            continue
        s = standing(a, as_of)
        pairs += [(g, s) for g in ([groups] if isinstance(groups, str) else groups)]
    return counts(pairs)


def counts(pairs: Iterable[tuple[str, str]]) -> dict[str, dict[str, int]]:
    """(group, standing) pairs → per group, in group order: assigned and each standing."""
    return totals(Counter(pairs))


def totals(counted: Counter[tuple[str, str]]) -> dict[str, dict[str, int]]:
    """How many per (group, standing) → per group, in group order: assigned and each standing."""
    out: dict[str, dict[str, int]] = {}
    for (group, s), n in sorted(counted.items()):
        c = out.setdefault(group, dict.fromkeys(STANDINGS, 0))
        c["assigned"] += n
        c[s] += n
    return out


# ------------------------------------------------------------------------------ the 90-day campaign (chiến dịch 90 ngày)

TARGET_NAMES = ("full_process_share_of_eligible", "online_dossier_share", "on_time_share")


@dataclass(frozen=True)
class CatalogueEntry:
    """One procedure of a unit's catalogue (thủ tục hành chính), as of the catalogue's date."""

    code: str  # national code d.dddddd
    level: str  # full_process | partial | not_offered
    eligible_full_process: bool


@dataclass(frozen=True)
class DossierCount:
    """One procedure's dossiers (hồ sơ) in one reported period."""

    code: str
    received: int
    online: int
    on_time: int


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 6) if whole else None


def campaign_figures(
    catalogue: Iterable[CatalogueEntry], dossiers: Iterable[DossierCount]
) -> dict[str, float | None]:
    """The three target figures, shares 0..1 (None when there is nothing to divide by):

    - full_process_share_of_eligible: eligible procedures offered full-process / eligible procedures;
    - online_dossier_share: dossiers received online / dossiers received;
    - on_time_share: dossiers processed on time / dossiers received.

    Pass several units' catalogues and dossiers together for the department's pooled figures.
    """
    eligible = [c for c in catalogue if c.eligible_full_process]
    full = sum(1 for c in eligible if c.level == "full_process")
    counts = list(dossiers)
    received = sum(d.received for d in counts)
    return {
        "full_process_share_of_eligible": _share(full, len(eligible)),
        "online_dossier_share": _share(sum(d.online for d in counts), received),
        "on_time_share": _share(sum(d.on_time for d in counts), received),
    }


def unmet_targets(figures: dict[str, float | None], targets: dict[str, float | None]) -> list[str]:
    """Names of the targets set and not reached (a figure with nothing to measure does not reach its target)."""
    out = []
    for name in TARGET_NAMES:
        target = targets.get(name)
        if target is None:
            continue
        value = figures.get(name)
        if value is None or value < target - 1e-9:
            out.append(name)
    return out
