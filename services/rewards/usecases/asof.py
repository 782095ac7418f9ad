"""The list "as of" a moment, read from stored versions (``models.subject_versions``, ``domain.versions``).

Each subject's versions are written with its entries, in the consumer's transaction (at the batch's end when
folded in a batch: one delete and one insert for all its subjects). Reading the list as of ``t`` is one range read
of the versions in force at ``t`` and a total per participant — the cost of what is in force then, not a fold of
every fact of the edition.

Exact only when every subject of the tenant has its versions (``usable``): a database upgraded from a release
without them, or a subject the previous release folded during a rolling update, is versioned again by the
standings job (``Projection.fold_unfolded``); a re-pricing under way (``refolds``) leaves some subjects priced
under the old rules. Until then the caller folds the facts, as before.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from services.rewards import domain, models
from services.rewards.domain import standings
from services.rewards.domain.versions import ranked as rank_in_force

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
    return domain.LedgerEntry(*raw[:6], datetime.fromisoformat(raw[6]), *raw[7:])


def _mark(m: standings.Mark) -> list[Any]:
    return [m.subject, m.participant_kind, m.participant_id, m.mark, m.seq, m.ok, m.label]


async def replace(
    conn: AsyncConnection,
    generation: int,
    subjects: Sequence[tuple[str, str, str, Sequence[domain.Version]]],
) -> None:
    """Make the versions of these subjects ((tenant, edition, subject, versions) each) exactly those given."""
    t = models.subject_versions
    ids = sorted({s for _, _, s, _ in subjects})
    for i in range(0, len(ids), CHUNK):
        await conn.execute(
            sa.delete(t).where(t.c.generation == generation, t.c.subject.in_(ids[i : i + CHUNK]))
        )
    rows = [
        {
            "generation": generation,
            "subject": subject,
            "valid_from": v.valid_from,
            "valid_to": v.valid_to,
            "tenant": tenant,
            "edition": edition,
            "entries": orjson.dumps([_entry(e) for e in v.entries]).decode(),
            "marks": orjson.dumps([_mark(m) for m in v.marks]).decode(),
        }
        for tenant, edition, subject, versions in subjects
        for v in versions
    ]
    if rows:
        await conn.execute(t.insert(), rows)


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


def ranked(
    raw: Iterable[tuple[str, str]], rules: domain.Rules | None
) -> tuple[list[domain.LedgerEntry], list[domain.Ranked], list[domain.Ranked]]:
    """(entries in force, persons, units) from the versions ``in_force`` gives. CPU only: run it off the loop."""
    entries: list[domain.LedgerEntry] = []
    marks: list[standings.Mark] = []
    for es, ms in raw:
        entries += [_entry_of(e) for e in orjson.loads(es)]
        marks += [standings.Mark(*m) for m in orjson.loads(ms)]
    persons, units = rank_in_force(entries, marks, rules)
    return entries, persons, units


async def drop(conn: AsyncConnection, generation: int) -> None:
    await conn.execute(
        sa.delete(models.subject_versions).where(models.subject_versions.c.generation == generation)
    )
