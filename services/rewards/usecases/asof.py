"""The list "as of" an instant, read from what is stored, not folded from every fact (issue 16).

- **Subject versions** (``models.subject_versions``, pure in ``domain.versions``): what one subject contributes,
  from each business instant of one of its facts to the next, written with its entries at the batch's end
  (``replace``: one read, one delete and one insert for all the batch's subjects). The whole list as of ``t``
  is the versions in force at ``t``, totalled and ranked (``in_force``, ``ranked``).
- **Participant timelines** (``models.participant_versions``): each participant's standing from one instant to
  the next, kept from the version changes ``replace`` reports (``advance``, ``derive``), so a page as of ``t``
  is ranked by the database among the rows in force then (``readmodel.ranked(at=…)``), and its entries come from
  the versions of the page's subjects only (``in_force_of``).

Exact only when every subject of the tenant has its versions (``usable``): a database upgraded from a release
without them, or a subject the previous release folded during a rolling update, is versioned again by the
standings job (``Projection.fold_unfolded``); a re-pricing under way (``refolds``) leaves some subjects priced
under the old rules. Until then the caller folds the facts, as before.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from services.rewards import domain, models
from services.rewards.domain import standings
from services.rewards.domain.versions import ranked as rank_in_force
from shared.db import insert_all_if_absent, upsert_row

CHUNK = 500  # subjects per IN (…) clause


def _entry(e: domain.LedgerEntry) -> list[Any]:
    return [
        e.submission_id,
        e.participant_kind,
        e.participant_id,
        e.event_id,
        e.rule,
        e.points,
        e.time.isoformat(),
        e.edition,
        e.part,
        e.kind,
        e.reason_vi,
        e.reason_en,
    ]


def _entry_of(raw: list[Any]) -> domain.LedgerEntry:
    sid, kind, pid, event_id, rule, points, time, edition, part, sub_kind, vi, en = raw
    return domain.LedgerEntry(
        sid, kind, pid, event_id, rule, points, datetime.fromisoformat(time), edition, part, sub_kind, vi, en
    )


def _mark(m: standings.Mark) -> list[Any]:
    return [m.subject, m.participant_kind, m.participant_id, m.mark, m.seq, m.ok, m.label]


Stored = tuple[datetime, datetime, str, str]  # a version as stored: valid_from, valid_to, entries, marks JSON
Who = tuple[str, str, str, str]  # tenant, edition, participant kind, participant id


@dataclass
class Change:
    """What a batch's new versions did to one participant's timeline: from ``since`` on it may differ; ``until``
    is the latest instant at which any of the changed subjects' new versions changes (no later change: the
    timeline's tail is its standing now)."""

    since: datetime
    until: datetime


def _encoded(v: domain.Version) -> Stored:
    return (
        v.valid_from,
        v.valid_to,
        orjson.dumps([_entry(e) for e in v.entries]).decode(),
        orjson.dumps([_mark(m) for m in v.marks]).decode(),
    )


def _at(versions: Sequence[Stored], t: datetime) -> tuple[str, str] | None:
    return next(((es, ms) for f, to, es, ms in versions if f <= t < to), None)


def _bounds(versions: Iterable[Stored]) -> set[datetime]:
    return {b for v in versions for b in v[:2] if b != domain.FAR_FUTURE}


def earliest_change(old: Sequence[Stored], new: Sequence[Stored]) -> datetime | None:
    """The first instant at which two version lists of one subject say different things (None: the same)."""
    for b in sorted(_bounds(old) | _bounds(new)):
        if _at(old, b) != _at(new, b):
            return b
    return None


def _named(versions: Iterable[Stored]) -> set[tuple[str, str]]:
    """The participants some versions name (in an entry or a mark)."""
    out: set[tuple[str, str]] = set()
    for _, _, es, ms in versions:
        out |= {(e[1], e[2]) for e in orjson.loads(es)}
        out |= {(m[1], m[2]) for m in orjson.loads(ms)}
    return out


async def replace(
    conn: AsyncConnection,
    generation: int,
    subjects: Sequence[tuple[str, str, str, Sequence[domain.Version]]],
    *,
    repriced: Iterable[str] = (),
) -> dict[Who, Change]:
    """Make the versions of these subjects ((tenant, edition, subject, versions) each) exactly those given, link
    the participants they name to them, and return what changed for each participant named before or now.
    A ``repriced`` subject (new rules: a participant's standing may change where its versions do not, by a
    title or a cap) changes its participants from its first version on."""
    repriced = set(repriced)
    t = models.subject_versions
    ids = sorted({s for _, _, s, _ in subjects})
    old: dict[str, list[Stored]] = defaultdict(list)
    for i in range(0, len(ids), CHUNK):
        rows = await conn.execute(
            sa.select(t.c.subject, t.c.valid_from, t.c.valid_to, t.c.entries, t.c.marks).where(
                t.c.generation == generation, t.c.subject.in_(ids[i : i + CHUNK])
            )
        )
        for r in rows.all():
            old[r.subject].append((r.valid_from, r.valid_to, r.entries, r.marks))
        await conn.execute(
            sa.delete(t).where(t.c.generation == generation, t.c.subject.in_(ids[i : i + CHUNK]))
        )
    rows_out: list[dict[str, Any]] = []
    links: list[dict[str, Any]] = []
    changes: dict[Who, Change] = {}
    for tenant, edition, subject, versions in subjects:
        new = [_encoded(v) for v in versions]
        rows_out += [
            {
                "generation": generation,
                "subject": subject,
                "valid_from": f,
                "valid_to": to,
                "tenant": tenant,
                "edition": edition,
                "entries": es,
                "marks": ms,
            }
            for f, to, es, ms in new
        ]
        since = earliest_change(old[subject], new)
        if subject in repriced:
            since = min(_bounds(old[subject]) | _bounds(new), default=since)
        if since is None:
            continue
        until = max(_bounds(new), default=since)
        now_named = _named(new)
        links += [
            {
                "generation": generation,
                "tenant": tenant,
                "edition": edition,
                "participant_kind": kind,
                "participant_id": pid,
                "subject": subject,
            }
            for kind, pid in sorted(now_named)
        ]
        for kind, pid in now_named | _named(old[subject]):
            was = changes.get((tenant, edition, kind, pid))
            changes[(tenant, edition, kind, pid)] = (
                Change(since, until) if was is None else Change(min(was.since, since), max(was.until, until))
            )
    if rows_out:
        await conn.execute(t.insert(), rows_out)
    if links:
        await insert_all_if_absent(conn, models.timeline_subjects, links)
    return changes


async def advance(
    conn: AsyncConnection,
    generation: int,
    changes: Mapping[Who, Change],
    now: Mapping[Who, standings.Total],
    rules: Mapping[tuple[str, str], domain.Rules | None],
) -> None:
    """Bring the timelines of the participants a batch changed up to date (``participant_versions``).

    A change at or after the participant's horizon, with no later change to come, replaces the tail from then
    on with its standing ``now`` (the totals just re-derived; absent: not listed): three statements for the whole
    batch. Any other (a fact that arrived late, new rules) derives the timeline from the change on again, from
    the participant's subjects' versions in force then or later."""
    pv, tl = models.participant_versions, models.timelines
    horizons = {who: h for who, h in await _of_each(conn, tl, tl.c.horizon, generation, changes)}
    tail, again = [], []
    for who, ch in sorted(changes.items()):
        horizon = horizons.get(who)
        if ch.until <= ch.since and (horizon is None or horizon <= ch.since):
            tail.append(who)
        else:
            again.append(who)
    if tail:
        keys = [
            {"k_tenant": w[0], "k_edition": w[1], "k_kind": w[2], "k_id": w[3], "k_since": changes[w].since}
            for w in tail
        ]
        await _cut(conn, generation, keys)
        rows = [
            _row(generation, w, changes[w].since, domain.FAR_FUTURE, now[w])
            for w in tail
            if w in now and now[w].listed
        ]
        if rows:
            await conn.execute(pv.insert(), rows)
        await upsert_row(
            conn,
            tl,
            [{**_key(generation, w), "horizon": changes[w].since} for w in tail],
            update=("horizon",),
        )
    if again:
        await derive(conn, generation, {w: changes[w].since for w in again}, rules)


def _same(pv: sa.Table, generation: int) -> Any:
    """One participant's rows (executemany: ``k_tenant``, ``k_edition``, ``k_kind``, ``k_id``)."""
    return sa.and_(
        pv.c.generation == generation,
        pv.c.tenant == sa.bindparam("k_tenant"),
        pv.c.edition == sa.bindparam("k_edition"),
        pv.c.participant_kind == sa.bindparam("k_kind"),
        pv.c.participant_id == sa.bindparam("k_id"),
    )


def _key(generation: int, who: Who) -> dict[str, Any]:
    return {
        "generation": generation,
        "tenant": who[0],
        "edition": who[1],
        "participant_kind": who[2],
        "participant_id": who[3],
    }


def _row(
    generation: int, who: Who, since: datetime, until: datetime, total: standings.Total
) -> dict[str, Any]:
    from services.rewards.usecases.readmodel import eligibility_json

    return {
        **_key(generation, who),
        "valid_from": since,
        "valid_to": until,
        "points": total.points,
        "first_at": total.first_at,
        "misses": total.misses,
        "eligibility": eligibility_json(total.eligibility),
        "reason_totals": domain.sums_json(domain.rule_sums(total.counted)),
    }


async def _of_each(
    conn: AsyncConnection, t: sa.Table, column: Any, generation: int, whos: Iterable[Who]
) -> list[tuple[Who, Any]]:
    """(participant, value of ``column``) of the rows of ``t`` keyed by some participants (``CHUNK`` ids per
    read)."""
    wanted = sorted(set(whos))
    out: list[tuple[Who, Any]] = []
    for tenant, edition, kind in sorted({w[:3] for w in wanted}):
        ids = [w[3] for w in wanted if w[:3] == (tenant, edition, kind)]
        for i in range(0, len(ids), CHUNK):
            q = sa.select(t.c.participant_id, column).where(
                t.c.generation == generation,
                t.c.tenant == tenant,
                t.c.edition == edition,
                t.c.participant_kind == kind,
                t.c.participant_id.in_(ids[i : i + CHUNK]),
            )
            out += [((tenant, edition, kind, pid), v) for pid, v in (await conn.execute(q)).all()]
    return out


async def _linked(conn: AsyncConnection, generation: int, whos: Iterable[Who]) -> dict[Who, list[str]]:
    """The subjects linked to each of some participants."""
    ts = models.timeline_subjects
    out: dict[Who, list[str]] = defaultdict(list)
    for who, subject in await _of_each(conn, ts, ts.c.subject, generation, whos):
        out[who].append(subject)
    return out


async def _versions_of(
    conn: AsyncConnection,
    generation: int,
    subjects: Sequence[str],
    at: datetime | None = None,
    *,
    after: datetime | None = None,
    with_subject: bool = False,
) -> list[Any]:
    """The versions of some subjects: those in force at ``at``, or in force at ``after`` or later (each a
    ``Stored``, led by its subject ``with_subject``)."""
    t = models.subject_versions
    out: list[Any] = []
    cols = [t.c.valid_from, t.c.valid_to, t.c.entries, t.c.marks]
    for i in range(0, len(subjects), CHUNK):
        q = sa.select(*([t.c.subject] if with_subject else []), *cols).where(
            t.c.generation == generation, t.c.subject.in_(subjects[i : i + CHUNK])
        )
        if at is not None:
            q = q.where(t.c.valid_from <= at, t.c.valid_to > at)
        if after is not None:
            q = q.where(t.c.valid_to > after)
        out += [tuple(r) for r in (await conn.execute(q)).all()]
    return out


def _own(
    versions: Iterable[Stored], kind: str, pid: str
) -> tuple[list[domain.LedgerEntry], list[standings.Mark]]:
    entries: list[domain.LedgerEntry] = []
    marks: list[standings.Mark] = []
    for _, _, es, ms in versions:
        entries += [_entry_of(e) for e in orjson.loads(es) if e[1] == kind and e[2] == pid]
        marks += [standings.Mark(*m) for m in orjson.loads(ms) if m[1] == kind and m[2] == pid]
    return entries, marks


async def derive(
    conn: AsyncConnection,
    generation: int,
    since: Mapping[Who, datetime],
    rules: Mapping[tuple[str, str], domain.Rules | None],
) -> None:
    """Participants' timelines from ``since`` (each its own) on, again from their subjects' versions in force then
    or later: a standing at each instant any of them changes (spans with the same standing merged); what came
    before stays. Each one's horizon becomes its latest such instant. A few statements for all of them."""
    pv, tl = models.participant_versions, models.timelines
    whos = sorted(since)
    subjects = await _linked(conn, generation, whos)
    by_subject: dict[str, list[Stored]] = defaultdict(list)
    wanted = sorted({s for w in whos for s in subjects[w]})
    for v in await _versions_of(conn, generation, wanted, after=min(since.values()), with_subject=True):
        by_subject[v[0]].append(v[1:])
    rows: list[dict[str, Any]] = []
    horizons: list[dict[str, Any]] = []
    for who in whos:
        start, kind, pid = since[who], who[2], who[3]
        versions = [
            (f, to, *_own([(f, to, es, ms)], kind, pid))
            for s in subjects[who]
            for f, to, es, ms in by_subject.get(s, ())
            if to > start
        ]
        bounds = sorted({start} | {b for v in versions for b in v[:2] if start < b < domain.FAR_FUTURE})
        previous: tuple[Any, ...] | None = None
        mine: list[dict[str, Any]] = []
        for i, b in enumerate(bounds):
            entries = [e for f, to, es, _ in versions if f <= b < to for e in es]
            marks = [m for f, to, _, ms in versions if f <= b < to for m in ms]
            total = standings.total(kind, pid, entries, marks, rules.get(who[:2]))
            until = bounds[i + 1] if i + 1 < len(bounds) else domain.FAR_FUTURE
            same = (
                (
                    total.points,
                    total.first_at,
                    total.misses,
                    total.eligibility,
                    domain.rule_sums(total.counted),
                )
                if total.listed
                else None
            )
            if same is not None and same == previous and mine:
                mine[-1]["valid_to"] = until
            elif same is not None:
                mine.append(_row(generation, who, b, until, total))
            previous = same
        rows += mine
        horizons.append({**_key(generation, who), "horizon": bounds[-1]})
    keys = [
        {"k_tenant": w[0], "k_edition": w[1], "k_kind": w[2], "k_id": w[3], "k_since": since[w]} for w in whos
    ]
    await _cut(conn, generation, keys)
    if rows:
        await conn.execute(pv.insert(), rows)
    if horizons:
        await upsert_row(conn, tl, horizons, update=("horizon",))


async def _cut(conn: AsyncConnection, generation: int, keys: list[dict[str, Any]]) -> None:
    """End participants' timelines at their ``k_since`` (executemany: ``_same``'s keys and ``k_since``)."""
    pv = models.participant_versions
    await conn.execute(
        sa.delete(pv).where(_same(pv, generation), pv.c.valid_from >= sa.bindparam("k_since")), keys
    )
    # The one version in force at ``k_since`` (if any) is the latest that began before it, found by the primary
    # key; with ``valid_to >`` alone, a planner without statistics ranged over the in-force index — every
    # participant's current version, for each participant cut (48 ms a batch at 2,000 participants).
    before = pv.alias("before")
    latest = (
        sa.select(sa.func.max(before.c.valid_from))
        .where(_same(before, generation), before.c.valid_from < sa.bindparam("k_since"))
        .scalar_subquery()
    )
    await conn.execute(
        sa.update(pv)
        .where(_same(pv, generation), pv.c.valid_from == latest, pv.c.valid_to > sa.bindparam("k_since"))
        .values(valid_to=sa.bindparam("k_since")),
        keys,
    )


async def usable(conn: AsyncConnection, generation: int, tenant: str, edition: str) -> bool:
    """Whether the stored versions say exactly what a fold of the generation's facts would: every subject of the
    tenant versioned since its last fact, and no re-pricing of the edition under way."""
    s, r = models.submission_states, models.refolds
    unversioned = (
        await conn.execute(
            sa.select(s.c.submission_id).where(models.UNVERSIONED, s.c.tenant == tenant).limit(1)
        )
    ).first()
    if unversioned is not None:
        return False
    refolding = (
        await conn.execute(
            sa.select(r.c.edition).where(
                r.c.generation == generation, r.c.tenant == tenant, r.c.edition == edition
            )
        )
    ).first()
    return refolding is None


async def in_force(
    conn: AsyncConnection, generation: int, tenant: str, edition: str, at: datetime
) -> list[tuple[str, str]]:
    """The versions in force at ``at`` (``valid_from <= at < valid_to``): (entries, marks) JSON, one per subject."""
    t = models.subject_versions
    q = sa.select(t.c.entries, t.c.marks).where(
        t.c.generation == generation,
        t.c.tenant == tenant,
        t.c.edition == edition,
        t.c.valid_to > at,
        t.c.valid_from <= at,
    )
    return [(r.entries, r.marks) for r in (await conn.execute(q)).all()]


def decoded(raw: Iterable[tuple[str, str]]) -> tuple[list[domain.LedgerEntry], list[standings.Mark]]:
    """The entries and marks of some versions ((entries, marks) JSON each)."""
    entries: list[domain.LedgerEntry] = []
    marks: list[standings.Mark] = []
    for es, ms in raw:
        entries += [_entry_of(e) for e in orjson.loads(es)]
        marks += [standings.Mark(*m) for m in orjson.loads(ms)]
    return entries, marks


def ranked(
    raw: Iterable[tuple[str, str]], rules: domain.Rules | None
) -> tuple[list[domain.LedgerEntry], list[domain.Ranked], list[domain.Ranked]]:
    """(entries in force, persons, units) from the versions ``in_force`` gives. CPU only: run it off the loop."""
    entries, marks = decoded(raw)
    persons, units = rank_in_force(entries, marks, rules)
    return entries, persons, units


async def in_force_of(
    conn: AsyncConnection, generation: int, whos: Sequence[Who], at: datetime
) -> list[tuple[str, str]]:
    """The versions in force at ``at`` of every subject linked to these participants, each once."""
    subjects = sorted({s for linked in (await _linked(conn, generation, whos)).values() for s in linked})
    return [(es, ms) for _, _, es, ms in await _versions_of(conn, generation, subjects, at)]


async def drop(conn: AsyncConnection, generation: int) -> None:
    for t in (
        models.subject_versions,
        models.participant_versions,
        models.timelines,
        models.timeline_subjects,
    ):
        await conn.execute(sa.delete(t).where(t.c.generation == generation))
