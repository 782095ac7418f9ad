"""rewards' incremental read model over its database: per-subject marks, per-participant totals, and the ranked
list the database computes from them.

Written in the consumer's transaction (``Projection.fold``) for the participants the changed subjects
touch: each participant's total is re-derived from its own ledger entries and marks (indexed), never from a
fold of every fact. ``reward.priority.changed`` is emitted there, in the same transaction, only when a
participant's eligibility is gained or lost (notify tells people about titles, not rank moves).
Ranks come from ``RANK() OVER`` in the rules' order (points, then the tie-breakers), so a page of the list
costs the page.
"""

from __future__ import annotations

import functools
import json
from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from services.rewards import domain, models
from services.rewards.domain import standings
from shared.db import upsert_row
from shared.events.catalogue import RewardPriorityChanged
from shared.events.envelope import deterministic_id
from shared.outbox import Outbox
from shared.reward_rules import EARLIEST_FULFILMENT, FEWER_MISSED

CHUNK = 500  # ids per IN (…) clause


def _tie_breakers(rules: domain.Rules | None) -> Sequence[str]:
    return rules.tie_breakers if rules is not None else (EARLIEST_FULFILMENT,)


# ------------------------------------------------------------------------------------------------ writing


def entry_of(r: Any) -> domain.LedgerEntry:
    return domain.LedgerEntry(
        r.submission_id,
        "person" if r.participant_kind == "person" else "unit",
        r.participant_id,
        r.event_id,
        r.rule,
        r.points,
        r.time,
        r.edition,
        r.part,
        r.kind,
        r.reason_vi,
        r.reason_en,
    )


def mark_of(r: Any) -> standings.Mark:
    return standings.Mark(r.subject, r.participant_kind, r.participant_id, r.mark, r.seq, r.ok, r.label)


async def participant_total(
    conn: AsyncConnection,
    generation: int,
    tenant: str,
    edition: str,
    kind: str,
    pid: str,
    rules: domain.Rules | None,
) -> standings.Total:
    """A participant's standing from its own entries and marks (two indexed reads)."""
    lg, mk = models.ledger, models.marks
    entries = [
        entry_of(r)
        for r in (
            await conn.execute(
                sa.select(lg).where(
                    lg.c.generation == generation,
                    lg.c.tenant == tenant,
                    lg.c.edition == edition,
                    lg.c.participant_kind == kind,
                    lg.c.participant_id == pid,
                )
            )
        ).all()
    ]
    marks = [
        mark_of(r)
        for r in (
            await conn.execute(
                sa.select(mk).where(
                    mk.c.generation == generation,
                    mk.c.tenant == tenant,
                    mk.c.edition == edition,
                    mk.c.participant_kind == kind,
                    mk.c.participant_id == pid,
                )
            )
        ).all()
    ]
    return standings.total(kind, pid, entries, marks, rules)


def eligibility_json(elig: Iterable[domain.Eligibility]) -> str:
    return json.dumps(
        [
            {
                "key": e.key,
                "title_vi": e.title_vi,
                "title_en": e.title_en,
                "reasons": [list(r) for r in e.reasons],
            }
            for e in elig
        ],
        ensure_ascii=False,
    )


def eligibility_from_json(raw: str) -> tuple[domain.Eligibility, ...]:
    return tuple(
        domain.Eligibility(e["key"], e["title_vi"], e["title_en"], tuple((vi, en) for vi, en in e["reasons"]))
        for e in json.loads(raw)
    )


async def refresh_totals(
    conn: AsyncConnection,
    generation: Any,
    tenant: str,
    edition: str,
    participants: Iterable[tuple[str, str]],
    rules: domain.Rules | None,
    *,
    outbox: Outbox | None,
) -> dict[tuple[str, str], standings.Total]:
    """Re-derive the totals of ``participants``, set by set: their rows locked first (one multi-row upsert, in a
    stable order, so two consumers touching one participant take turns and the later one sees the earlier one's
    entries), then their entries and marks read together (indexed, ``CHUNK`` ids per read) and their rows
    written. With ``outbox`` (the live generation), a participant whose eligibility is gained or lost is told,
    in this transaction (ranks before and after: an indexed count each). Returns each one's standing now."""
    wanted = sorted(set(participants))
    news: dict[tuple[str, str], standings.Total] = {}
    for i in range(0, len(wanted), CHUNK):
        news |= await _refresh_chunk(
            conn, generation.id, tenant, edition, wanted[i : i + CHUNK], rules, outbox
        )
    return news


async def _refresh_chunk(
    conn: AsyncConnection,
    gid: int,
    tenant: str,
    edition: str,
    wanted: list[tuple[str, str]],
    rules: domain.Rules | None,
    outbox: Outbox | None,
) -> dict[tuple[str, str], standings.Total]:
    t = models.totals
    now = datetime.now(UTC)
    key = {"generation": gid, "tenant": tenant, "edition": edition}
    placeholders = [
        {
            **key,
            "participant_kind": kind,
            "participant_id": pid,
            "points": 0.0,
            "first_at": domain.FAR_FUTURE,
            "misses": 0,
            "entries": -1,
            "eligibility": "[]",
            "eligibility_keys": "",
            "reason_totals": None,
            "changes": 0,
            "updated_at": now,
        }
        for kind, pid in wanted
    ]
    await upsert_row(conn, t, placeholders, update=("updated_at",))  # the row locks
    base = sa.select(t).where(t.c.generation == gid, t.c.tenant == tenant, t.c.edition == edition)
    by_kind: dict[str, list[str]] = defaultdict(list)
    for kind, pid in wanted:
        by_kind[kind].append(pid)
    old: dict[tuple[str, str], Any] = {}
    for kind, ids in sorted(by_kind.items()):
        q = base.where(t.c.participant_kind == kind, t.c.participant_id.in_(ids))
        old.update({(r.participant_kind, r.participant_id): r for r in (await conn.execute(q)).all()})
    entries: dict[tuple[str, str], list[domain.LedgerEntry]] = defaultdict(list)
    for e in await _entries(conn, gid, tenant, edition, participants=wanted):
        entries[(e.participant_kind, e.participant_id)].append(e)
    marks = await _marks(conn, gid, tenant, edition, by_kind)
    news = {p: standings.total(p[0], p[1], entries[p], marks[p], rules) for p in wanted}
    # who is told, and their rank before any row of the set changes
    told: dict[tuple[str, str], int | None] = {}
    for p, new in news.items():
        was = old[p]
        old_keys = was.eligibility_keys if was.entries >= 0 else ""
        if outbox is not None and ",".join(new.eligibility_keys) != old_keys:
            told[p] = await rank_of(conn, gid, tenant, edition, was, rules) if _listed(was) else None
    # Off the list: the row goes, unless a change was told for it — its count keeps the next one's id new.
    gone = [p for p, new in news.items() if not new.listed and old[p].changes == 0 and p not in told]
    for kind in sorted({k for k, _ in gone}):
        ids = [pid for k, pid in gone if k == kind]
        await conn.execute(
            sa.delete(t).where(
                t.c.generation == gid,
                t.c.tenant == tenant,
                t.c.edition == edition,
                t.c.participant_kind == kind,
                t.c.participant_id.in_(ids),
            )
        )
    rows = [
        {
            "k_kind": p[0],
            "k_id": p[1],
            "points": new.points,
            "first_at": new.first_at,
            "misses": new.misses,
            "entries": len(new.counted),
            "eligibility": eligibility_json(new.eligibility),
            "eligibility_keys": ",".join(new.eligibility_keys),
            "reason_totals": domain.sums_json(domain.rule_sums(new.counted)),
            "changes": old[p].changes + (1 if p in told else 0),
            "updated_at": now,
        }
        for p, new in news.items()
        if p not in gone
    ]
    if rows:
        await conn.execute(_update_total(gid, tenant, edition), rows)
    for p, previous_rank in told.items():
        assert outbox is not None
        new = news[p]
        rank = await rank_of(conn, gid, tenant, edition, new, rules) if new.listed else None
        old_keys = old[p].eligibility_keys if old[p].entries >= 0 else ""
        await tell(
            conn, outbox, tenant, edition, new, old_keys, rank, previous_rank, old[p].changes + 1, rules, now
        )
    return news


def _listed(row: Any) -> bool:
    """A totals row of a participant on the list (``standings.Total.listed``); a row kept off it holds only
    the count of the changes told."""
    return bool(row.entries > 0 or row.eligibility_keys or row.misses > 0)


def _update_total(gid: int, tenant: str, edition: str) -> Any:
    """One participant's row of the set (executemany: ``k_kind``, ``k_id`` and the values)."""
    t = models.totals
    return (
        sa.update(t)
        .where(
            t.c.generation == gid,
            t.c.tenant == tenant,
            t.c.edition == edition,
            t.c.participant_kind == sa.bindparam("k_kind"),
            t.c.participant_id == sa.bindparam("k_id"),
        )
        .values(
            {
                c: sa.bindparam(c)
                for c in (
                    "points",
                    "first_at",
                    "misses",
                    "entries",
                    "eligibility",
                    "eligibility_keys",
                    "reason_totals",
                    "changes",
                    "updated_at",
                )
            }
        )
    )


async def _marks(
    conn: AsyncConnection, gid: int, tenant: str, edition: str, by_kind: dict[str, list[str]]
) -> dict[tuple[str, str], list[standings.Mark]]:
    """The marks of some participants (ids by kind), by participant."""
    mk = models.marks
    out: dict[tuple[str, str], list[standings.Mark]] = defaultdict(list)
    for kind, ids in sorted(by_kind.items()):
        q = sa.select(mk).where(
            mk.c.generation == gid,
            mk.c.tenant == tenant,
            mk.c.edition == edition,
            mk.c.participant_kind == kind,
            mk.c.participant_id.in_(ids),
        )
        for r in (await conn.execute(q)).all():
            out[(r.participant_kind, r.participant_id)].append(mark_of(r))
    return out


async def tell(
    conn: AsyncConnection,
    outbox: Outbox,
    tenant: str,
    edition: str,
    new: standings.Total,
    old_keys: str,
    rank: int | None,
    previous_rank: int | None,
    changes: int,
    rules: domain.Rules | None,
    now: datetime,
) -> None:
    """``reward.priority.changed`` for a participant whose eligibility went from ``old_keys`` to ``new``'s, its
    ``changes``-th change told (the id is deterministic: telling it again records nothing)."""
    new_keys = ",".join(new.eligibility_keys)
    await outbox.emit(
        conn,
        "reward.priority.changed",
        change_data(new, rank=rank, previous_rank=previous_rank, rules=rules),
        tenant=tenant,
        subject=new.participant_id,
        time=now,
        edition=edition,
        event_id=deterministic_id(
            "reward.priority.changed",
            tenant,
            edition,
            new.participant_kind,
            new.participant_id,
            old_keys or "-",
            new_keys or "-",
            changes,
        ),
    )


def change_data(
    new: standings.Total, *, rank: int | None, previous_rank: int | None, rules: domain.Rules | None
) -> RewardPriorityChanged:
    reasons = [{"vi": e.reason_vi, "en": e.reason_en} for e in new.counted] if new.listed else []
    for el in new.eligibility:
        reasons += [{"vi": f"{el.title_vi}: {vi}", "en": f"{el.title_en}: {en}"} for vi, en in el.reasons]
    return RewardPriorityChanged.model_validate(
        {
            "participant_kind": new.participant_kind,
            "participant_id": new.participant_id,
            "rank": rank,
            "previous_rank": previous_rank,
            "points": new.points if new.listed else 0.0,
            "eligibility": new.eligibility_keys,
            "reasons": reasons,
            "rules_version": max(1, rules.rules_version if rules is not None else 1),
        }
    )


# ------------------------------------------------------------------------------------------------ ranking


def _order_by(t: sa.Table, tie_breakers: Sequence[str]) -> list[Any]:
    cols: list[Any] = [t.c.points.desc()]
    for name in tie_breakers:
        if name == EARLIEST_FULFILMENT:
            cols.append(t.c.first_at.asc())
        elif name == FEWER_MISSED:
            cols.append(t.c.misses.asc())
    return cols


def _rank_names(rules: domain.Rules | None) -> tuple[str, ...]:
    return tuple(n for n in _tie_breakers(rules) if n in (EARLIEST_FULFILMENT, FEWER_MISSED))


def _rank_key(row: Any, names: tuple[str, ...]) -> tuple[Any, ...]:
    """What a rank compares: points, then the tie-break keys in the rules' order."""
    return (row.points, *(row.first_at if n == EARLIEST_FULFILMENT else row.misses for n in names))


async def rank_of(
    conn: AsyncConnection,
    generation: int,
    tenant: str,
    edition: str,
    row: Any,
    rules: domain.Rules | None,
    *,
    at: datetime | None = None,
) -> int:
    """1 + the participants of the same kind strictly ahead (equals share a rank), now or as of ``at``: one count
    per tie-break level — more points; as many and an earlier first fulfilment; … — now each a range of
    ``ix_totals_rank``, which holds only the participants on the list, so no table row is read (one ``OR`` of the
    levels was a filter over every participant of the kind)."""
    names = _rank_names(rules)
    params = {"generation": generation, "tenant": tenant, "edition": edition, "kind": row.participant_kind}
    if at is not None:
        params["at"] = at
    keys = {f"k{i}": v for i, v in enumerate(_rank_key(row, names))}
    ahead = (await conn.execute(_ahead(names, at is not None), params | keys)).one()
    return sum(int(n) for n in ahead) + 1


@functools.cache
def _ahead(tie_breakers: tuple[str, ...], as_of: bool = False) -> sa.Select[Any]:
    """``rank_of``'s counts for one order of tie-breakers, now or as of ``:at``, built once (``shared/db.py``:
    hot statements)."""
    t = models.participant_versions if as_of else models.totals
    keys: list[tuple[Any, bool]] = [(t.c.points, True)]  # (column, descending)
    keys += [(t.c.first_at, False) if n == EARLIEST_FULFILMENT else (t.c.misses, False) for n in tie_breakers]
    kind = [
        t.c.generation == sa.bindparam("generation"),
        t.c.tenant == sa.bindparam("tenant"),
        t.c.edition == sa.bindparam("edition"),
        t.c.participant_kind == sa.bindparam("kind"),
        *(
            (t.c.valid_to > sa.bindparam("at"), t.c.valid_from <= sa.bindparam("at"))
            if as_of
            else (models.ON_LIST,)
        ),
    ]
    levels = [
        sa.select(sa.func.count())
        .select_from(t)
        .where(
            *kind,
            *(c == sa.bindparam(f"k{j}") for j, (c, _) in enumerate(keys[:i])),
            col > sa.bindparam(f"k{i}") if desc else col < sa.bindparam(f"k{i}"),
        )
        .scalar_subquery()
        for i, (col, desc) in enumerate(keys)
    ]
    return sa.select(*levels)


@dataclass(frozen=True)
class Page:
    persons: list[domain.Ranked]
    units: list[domain.Ranked]
    entries: tuple[domain.LedgerEntry, ...]
    persons_total: int
    units_total: int


def _standings(
    generation: int, tenant: str, edition: str, kind: str, at: datetime | None
) -> tuple[sa.Table, Any]:
    """The standings of one kind on the list: now (``totals``), or as of ``at`` (the participants' timelines,
    ``participant_versions``: the rows in force then)."""
    t = models.totals if at is None else models.participant_versions
    where = [
        t.c.generation == generation,
        t.c.tenant == tenant,
        t.c.edition == edition,
        t.c.participant_kind == kind,
    ]
    if at is None:
        where.append(models.ON_LIST)
    else:
        where += [t.c.valid_to > at, t.c.valid_from <= at]
    return t, sa.and_(*where)


async def ranked(
    conn: AsyncConnection,
    generation: int,
    tenant: str,
    edition: str,
    kind: str,
    rules: domain.Rules | None,
    *,
    offset: int = 0,
    limit: int | None = None,
    at: datetime | None = None,
) -> list[tuple[int, Any]]:
    """(rank, standing row) of one kind in list order, now or as of ``at``, ranked by the database; a page when
    ``limit``. A page is read in the list's order from its offset with the row before it, keys only (now, a range
    of ``ix_totals_rank``, points descending then the tie-break keys: nothing sorted but equals; as of ``at``, the
    rows in force then sorted by their keys), and ranked from the keys (``page_ranks``): its first row is the next
    place unless it equals the row before it (then those strictly ahead are counted, ``rank_of``). Its rows are
    read after it by primary key. ``RANK() OVER`` every row of the list cost the list on every page (20 ms at
    20,000 participants now, 82 ms as of a moment, every column of every version in force materialised). Statements
    apart, not a join: a join let PostgreSQL without statistics read every row of the kind (and made SQLite slower
    as of a moment, 84 → 188 ms). The whole list is ranked by ``RANK() OVER``."""
    t, where = _standings(generation, tenant, edition, kind, at)
    order = _order_by(t, _tie_breakers(rules))
    if limit is None:
        rank = sa.func.rank().over(order_by=order).label("rank")
        inner = sa.select(t, rank).where(where).subquery()
        whole = sa.select(inner).order_by(inner.c.rank, inner.c.participant_id).offset(offset)
        return [(r.rank, r) for r in (await conn.execute(whole)).all()]
    # The page and the row before it (its rank tells the page's first: a different key, the next place).
    start = max(offset - 1, 0)
    keys = (t.c.participant_kind, t.c.participant_id, t.c.points, t.c.first_at, t.c.misses)
    page = sa.select(*keys).where(where).order_by(*order, t.c.participant_id)
    got = (await conn.execute(page.offset(start).limit(limit + offset - start))).all()
    before, shown = (got[0] if got else None, got[1:]) if offset else (None, got)
    if not shown:
        return []
    ids = [r.participant_id for r in shown]
    rows = {
        r.participant_id: r
        for r in (await conn.execute(sa.select(t).where(where, t.c.participant_id.in_(ids)))).all()
    }
    names = _rank_names(rules)
    if before is None:
        first = 1
    elif _rank_key(before, names) != _rank_key(shown[0], names):
        first = offset + 1
    else:  # equals across the page's edge: count those strictly ahead
        first = await rank_of(conn, generation, tenant, edition, shown[0], rules, at=at)
    return list(zip(page_ranks(shown, offset, first, rules), (rows[p] for p in ids), strict=True))


def page_ranks(shown: Sequence[Any], offset: int, first: int, rules: domain.Rules | None) -> list[int]:
    """The ranks of a page's rows in list order, the first one's given: a row whose keys differ from the one
    before it has every row before it strictly ahead (1 + its place in the list); equals share a rank."""
    names = _rank_names(rules)
    out = [first]
    for i in range(1, len(shown)):
        same = _rank_key(shown[i], names) == _rank_key(shown[i - 1], names)
        out.append(out[-1] if same else offset + i + 1)
    return out


async def count(
    conn: AsyncConnection,
    generation: int,
    tenant: str,
    edition: str,
    kind: str,
    *,
    at: datetime | None = None,
) -> int:
    t, where = _standings(generation, tenant, edition, kind, at)
    return int((await conn.execute(sa.select(sa.func.count()).select_from(t).where(where))).scalar_one())


async def _entries(
    conn: AsyncConnection,
    generation: int,
    tenant: str,
    edition: str,
    *,
    participants: Sequence[tuple[str, str]] | None = None,
    subjects: Sequence[str] | None = None,
) -> list[domain.LedgerEntry]:
    """Ledger entries of the edition: all, or those of some participants, or of some subjects."""
    lg = models.ledger
    base = sa.select(lg).where(lg.c.generation == generation, lg.c.tenant == tenant, lg.c.edition == edition)
    if participants is None and subjects is None:
        return [entry_of(r) for r in (await conn.execute(base)).all()]
    out: list[domain.LedgerEntry] = []
    by_kind: dict[str, list[str]] = defaultdict(list)
    for kind, pid in participants or ():
        by_kind[kind].append(pid)
    for kind, ids in sorted(by_kind.items()):
        for i in range(0, len(ids), CHUNK):
            q = base.where(lg.c.participant_kind == kind, lg.c.participant_id.in_(ids[i : i + CHUNK]))
            out += [entry_of(r) for r in (await conn.execute(q)).all()]
    # By the primary key alone (generation, subject): with the edition's columns too, SQLite without statistics
    # took the participants' index by its three equal columns and read every entry of the edition (32 ms for a
    # page's 50 subjects at 20,000 participants, against 0.6 ms).
    subs = list(subjects or ())
    for i in range(0, len(subs), CHUNK):
        q = sa.select(lg).where(lg.c.generation == generation, lg.c.submission_id.in_(subs[i : i + CHUNK]))
        out += [
            entry_of(r) for r in (await conn.execute(q)).all() if (r.tenant, r.edition) == (tenant, edition)
        ]
    return out


def briefly(rows: Iterable[tuple[int, Any]], unit_entries: bool) -> set[tuple[str, str]]:
    """The units of a page listed with their stored sums alone (``reason_totals``), their entries not read: all
    of them unless ``unit_entries`` is asked for, except a row written before the sums were kept."""
    if unit_entries:
        return set()
    return {
        ("unit", r.participant_id)
        for _, r in rows
        if r.participant_kind == "unit" and r.reason_totals is not None
    }


def ranked_rows(
    rows: list[tuple[int, Any]],
    entries: Iterable[domain.LedgerEntry],
    rules: domain.Rules | None,
    *,
    brief: Collection[tuple[str, str]] = (),
) -> list[domain.Ranked]:
    """The list's places from (rank, standing row) pairs, each with its entries that count (under the cap) and
    its sums per rule; a participant in ``brief`` with its sums alone (its entries were not read)."""
    by: dict[tuple[str, str], list[domain.LedgerEntry]] = defaultdict(list)
    for e in entries:
        by[(e.participant_kind, e.participant_id)].append(e)
    out = []
    for rank, r in rows:
        kind: domain.ParticipantKind = "person" if r.participant_kind == "person" else "unit"
        cap = rules.cap(kind) if rules is not None else None
        key = (kind, r.participant_id)
        out.append(
            domain.Ranked(
                rank=rank,
                participant_id=r.participant_id,
                points=r.points,
                first_at=r.first_at,
                entries=() if key in brief else tuple(domain.counted(by.get(key, []), per_part_cap=cap)),
                participant_kind=kind,
                eligibility=eligibility_from_json(r.eligibility),
                misses=r.misses,
                stored_sums=domain.sums_from_json(r.reason_totals),
            )
        )
    return out


async def load(
    conn: AsyncConnection,
    generation: int,
    tenant: str,
    edition: str,
    rules: domain.Rules | None,
    *,
    offset: int = 0,
    limit: int | None = None,
    unit_entries: bool = True,
) -> Page:
    """The ranked list from the read model: whole (every ledger entry of the edition, one query), or a page of
    persons and a page of units (the entries of the listed persons, of their subjects, and of the listed units
    when ``unit_entries`` is asked for: else a unit is listed with its sums per rule, whatever its size)."""
    persons = await ranked(conn, generation, tenant, edition, "person", rules, offset=offset, limit=limit)
    units = await ranked(conn, generation, tenant, edition, "unit", rules, offset=offset, limit=limit)
    brief: set[tuple[str, str]] = set()
    if limit is None:
        entries = await _entries(conn, generation, tenant, edition)
        n_persons, n_units = len(persons) + offset, len(units) + offset
    else:
        brief = briefly(units, unit_entries)
        listed = [
            (r.participant_kind, r.participant_id)
            for _, r in (*persons, *units)
            if (r.participant_kind, r.participant_id) not in brief
        ]
        own = await _entries(conn, generation, tenant, edition, participants=listed)
        subjects = sorted({e.submission_id for e in own if e.participant_kind == "person"})
        seen = {(e.submission_id, e.participant_kind, e.participant_id, e.rule) for e in own}
        more = [
            e
            for e in await _entries(conn, generation, tenant, edition, subjects=subjects)
            if (e.submission_id, e.participant_kind, e.participant_id, e.rule) not in seen
        ]
        entries = [*own, *more]
        n_persons = await count(conn, generation, tenant, edition, "person")
        n_units = await count(conn, generation, tenant, edition, "unit")
    return Page(
        persons=ranked_rows(persons, entries, rules),
        units=ranked_rows(units, entries, rules, brief=brief),
        entries=tuple(entries),
        persons_total=n_persons,
        units_total=n_units,
    )


async def unit_points(
    conn: AsyncConnection, generation: int, tenant: str, edition: str, *, at: datetime | None = None
) -> dict[str, float]:
    """Every listed unit's points, now or as of ``at`` (units are few: the roll-up of a page's units needs their
    branches')."""
    t, where = _standings(generation, tenant, edition, "unit", at)
    rows = await conn.execute(sa.select(t.c.participant_id, t.c.points).where(where))
    return {pid: pts for pid, pts in rows.all()}


async def known(conn: AsyncConnection, tenant: str, edition: str) -> bool:
    """Whether any subject of the edition was seen."""
    s = models.submission_states
    row = (
        await conn.execute(
            sa.select(s.c.submission_id).where(s.c.tenant == tenant, s.c.edition == edition).limit(1)
        )
    ).first()
    return row is not None


async def drop(conn: AsyncConnection, generation: int) -> None:
    await conn.execute(sa.delete(models.totals).where(models.totals.c.generation == generation))
    await conn.execute(sa.delete(models.marks).where(models.marks.c.generation == generation))
