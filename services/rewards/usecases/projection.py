"""rewards' projection over its database: generations, the rules it accepted, the ledger and its journal, and
the list (from the incremental read model, ``readmodel``, or folded from the facts "as of" a moment).

Used by the live consumer's handlers, the API and ``hoithi rewards rebuild`` alike, so a rebuilt generation is
made by exactly the code that makes the live one.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.rewards import domain, models
from services.rewards.domain import standings
from services.rewards.usecases import asof, readmodel, view
from services.rewards.usecases.readmodel import refresh_totals
from shared import heavy
from shared.consumer import Inbox, after_commit, batch_local, batch_scope
from shared.copies import Copies
from shared.db import Backbone, insert_if_absent, upsert_row
from shared.documents import Edition
from shared.events.envelope import Envelope
from shared.outbox import Outbox
from shared.reward_rules import RuleError, check_rewards, parts_of

if TYPE_CHECKING:
    from shared.service import Runtime

log = logging.getLogger("hoithi.rewards")

FACTS = "facts"  # the live consumer's purpose, and generation 0's inbox


@dataclass(frozen=True)
class Generation:
    id: int
    purpose: str
    status: str


LIVE = Generation(0, FACTS, "active")


async def generations(conn: AsyncConnection, *statuses: str) -> list[Generation]:
    """Generations with these statuses (default: active and building). None recorded: generation 0 is live."""
    wanted = statuses or ("active", "building")
    g = models.generations
    rows = (await conn.execute(sa.select(g.c.id, g.c.purpose, g.c.status).order_by(g.c.id))).all()
    if not rows:
        return [LIVE] if "active" in wanted else []
    return [Generation(r.id, r.purpose, r.status) for r in rows if r.status in wanted]


async def generation_by_id(conn: AsyncConnection, gid: int) -> Generation | None:
    """Any generation whose inbox is still kept (a retired rebuild's is dropped at the next swap)."""
    if gid == LIVE.id:
        return LIVE
    g = models.generations
    row = (await conn.execute(sa.select(g.c.id, g.c.purpose, g.c.status).where(g.c.id == gid))).first()
    return (
        Generation(row.id, row.purpose, row.status) if row is not None and row.status != "abandoned" else None
    )


async def active_generation(conn: AsyncConnection) -> Generation:
    found = await generations(conn, "active")
    return found[-1] if found else LIVE


# ------------------------------------------------------------------------------------------------ rules


def check_rules(rewards: dict[str, Any], parts: Mapping[str, str] | None = None) -> list[RuleError]:
    """Every problem of a ``rewards`` section (the one check campaign and ``hoithi edition validate`` make too);
    ``parts`` are the edition's part ids and kinds."""
    return check_rewards(rewards, parts)


async def accept_rules(conn: AsyncConnection, env: Envelope) -> bool:
    """Record the rules of an ``edition.published``; True if they are valid and newer than those in force.

    A refused version is recorded with its errors and never applies: the previous valid version stays."""
    doc = env.data["document"]
    version = int(env.data.get("version", doc.get("version", 1)))
    rewards = doc.get("rewards") or {}
    errors = check_rules(rewards, parts_of(doc))
    if errors:
        log.error(
            "edition %s/%s version %d: reward rules refused, the previous rules stay: %s",
            env.tenant,
            doc["edition"],
            version,
            "; ".join(f"{e.field}: {e.en}" for e in errors),
        )
    before = await current_rules(conn, env.tenant, doc["edition"])
    await insert_if_absent(
        conn,
        models.rules,
        {
            "tenant": env.tenant,
            "edition": doc["edition"],
            "version": version,
            "rules_version": int(rewards.get("rules_version", 1)) if isinstance(rewards, dict) else 1,
            "doc": json.dumps(rewards, ensure_ascii=False, sort_keys=True),
            "valid": not errors,
            "errors": json.dumps([e.__dict__ for e in errors], ensure_ascii=False),
            "event_id": env.id,
            "published_at": env.time,
        },
    )
    return not errors and (before is None or before.edition_version <= version)


async def current_rules(conn: AsyncConnection, tenant: str, edition: str) -> domain.Rules | None:
    """The latest valid rules of an edition (None before any arrived)."""
    r = models.rules
    row = (
        await conn.execute(
            sa.select(r.c.version, r.c.doc)
            .where(r.c.tenant == tenant, r.c.edition == edition, r.c.valid.is_(True))
            .order_by(r.c.version.desc())
            .limit(1)
        )
    ).first()
    if row is None:
        return None
    return domain.Rules.from_document(json.loads(row.doc), edition_version=row.version)


def part_titles(edition: Edition | None) -> dict[str, str]:
    return {p.id: p.title for p in edition.parts if p.title} if edition is not None else {}


# ------------------------------------------------------------------------------------------------ facts


class Projection:
    """Applies facts to a generation's projection (inbox rows are the caller's, except for other generations)."""

    def __init__(
        self, backbone: Backbone, copies: Copies, outbox: Outbox, engine: AsyncEngine | None = None
    ) -> None:
        self.backbone = backbone
        self.copies = copies
        self.inbox = Inbox(backbone)
        self.outbox = outbox
        self.engine = engine  # for re-pricing in chunks after the consumer's commit (None: inline)

    async def handle(self, conn: AsyncConnection, env: Envelope, *, only: Generation | None = None) -> None:
        """The effect of one fact on every generation alive (or only one: the rebuild's). The live
        consumer's inbox row (purpose ``facts``) is already written; other generations keep their own."""
        if env.type in ("directory.unit.changed", "directory.person.changed"):
            await self.copies.apply(conn, env)  # units, unions and people alike
            return
        if only is not None:
            gens = [only]
        else:  # read once per batch of facts (a rebuild's swap commits on its own, between batches)
            alive = batch_local(FoldBatch, FoldBatch)
            gens = await (alive.generations(conn) if alive is not None else generations(conn))
        fresh: list[Generation] = []
        for g in gens:
            if g.purpose == FACTS and only is None:
                fresh.append(g)  # the consumer recorded it
            elif await self.inbox.record(conn, g.purpose, env, env.to_json()):
                fresh.append(g)
        batch = batch_local(FoldBatch, FoldBatch)
        if env.type == "edition.published":
            if batch is not None:  # the facts before it are folded under the rules and titles they came under
                await batch.fold_deferred(conn)
                batch.forget(env.tenant, env.data["document"]["edition"])
            await self.copies.apply(conn, env)
            if await accept_rules(conn, env) and fresh:
                edition = env.data["document"]["edition"]
                for g in gens:
                    # Minutes at 100k facts: in chunks after this commit, the message kept in progress.
                    if self.engine is not None and after_commit(
                        lambda g=g: self.continue_refold(g, env.tenant, edition)  # type: ignore[misc]
                    ):
                        await start_refold(conn, g, env.tenant, edition, cause=env.id)
                    else:
                        await self.refold_edition(conn, g, env.tenant, edition, cause=env.id)
            return
        kind = domain.subject_kind(env.type)
        if kind is None:
            return
        for g in fresh:
            if batch is not None:  # folded with the batch's other subjects at its end (``FoldBatch.flush``)
                batch.defer(self, Fold(g, env.tenant, env.subject, env.edition, [(0, env.id, env.id)]))
            else:
                await self.refold_subject(conn, g, env.tenant, env.subject, env.edition, cause=env.id)

    async def refold_subject(
        self,
        conn: AsyncConnection,
        g: Generation,
        tenant: str,
        subject: str,
        edition: str | None,
        *,
        cause: str | None,
        force: bool = False,
    ) -> None:
        """Re-fold one subject from every fact kept for it (``fold`` of one; ``force``: under new rules, every
        participant it touches re-derived)."""
        await self.fold(conn, [Fold(g, tenant, subject, edition, [(0, cause, None)], force)])

    async def fold(self, conn: AsyncConnection, folds: Sequence[Fold]) -> None:
        """Re-fold subjects from their kept facts, set by set: their state rows locked (one upsert, in subject
        order), their facts, ledger entries and marks read together, each subject folded once after each of its
        steps in turn — in memory, so its journal holds the credits and reversals one fold per arriving fact
        makes — and what changed written together (executemany). A subject's entries and marks end as its last
        fold says; the participants any step touched are re-derived at the batch's end (``FoldBatch.flush``)."""
        if not folds:
            return
        shared_batch = batch_local(FoldBatch, FoldBatch)
        batch = shared_batch or FoldBatch()  # alone: flushed at the end of this fold
        now = datetime.now(UTC)
        await lock_subjects(conn, {f.subject: (f.tenant, f.edition) for f in folds}, now)
        # in the order the facts came (their steps' places), then the generations', then as made
        journal: list[tuple[tuple[int, int, int], dict[str, Any]]] = []
        states: dict[str, dict[str, Any]] = {}
        unscored: list[str] = []
        by_generation: dict[int, list[Fold]] = {}
        for f in folds:
            by_generation.setdefault(f.g.id, []).append(f)
        for gid, of_generation in sorted(by_generation.items()):
            g = of_generation[0].g
            outbox = self.outbox if g.status == "active" else None
            subjects = sorted({f.subject for f in of_generation})
            histories = await self.inbox.histories(conn, g.purpose, subjects)
            entries_before = await _rows_of(conn, models.ledger, gid, "submission_id", subjects)
            marks_before = await _rows_of(conn, models.marks, gid, "subject", subjects)
            entries_after: dict[str, list[dict[str, Any]]] = {}
            marks_after: dict[str, list[dict[str, Any]]] = {}
            for f in of_generation:
                history = histories.get(f.subject, [])
                scored = [e for e in history if domain.subject_kind(e.type) is not None]
                if not scored:
                    unscored.append(f.subject)
                    continue
                current = {
                    (r.participant_kind, r.participant_id, r.rule): dict(r._mapping)
                    for r in entries_before.get(f.subject, [])
                }
                marks_now = {_mark_key(r) for r in marks_before.get(f.subject, [])}
                marks_then = marks_now
                rewritten = False
                later = [fact for _, _, fact in f.steps]
                for n, (position, cause, _) in enumerate(f.steps):
                    hidden = {fact for fact in later[n + 1 :] if fact is not None}
                    prefix = [e for e in scored if e.id not in hidden] if hidden else scored
                    edition_name = next((e.edition for e in prefix if e.edition), None) or f.edition
                    rules, titles = (
                        await batch.edition(conn, self.copies, f.tenant, edition_name)
                        if edition_name
                        else (None, {})
                    )
                    standing = domain.fold_edition(prefix, rules, part_titles=titles)
                    entries = [e for e in standing.entries if e.submission_id == f.subject]
                    rows, credits = _entry_changes(current, entries, gid, f.tenant, f.subject, cause, now)
                    touched = {(k[0], k[1]) for k in current} | {(k[0], k[1]) for k in rows}
                    made = len(journal)
                    journal += [((position, gid, made + i), c) for i, c in enumerate(credits)]
                    if credits:
                        current, rewritten = rows, True
                    state = (
                        standing.submissions[f.subject].status
                        if f.subject in standing.submissions
                        else "assignment"
                    )
                    if edition_name:
                        marks = {
                            (m.participant_kind, m.participant_id, m.mark, m.seq, m.ok, m.label, edition_name)
                            for m in standing.marks
                            if m.subject == f.subject
                        }
                        touched |= {(k[0], k[1]) for k in marks_now | marks}
                        if credits or marks != marks_now or f.force:
                            batch.refresh(g, f.tenant, edition_name, touched, outbox)
                        marks_now = marks
                        if n == len(f.steps) - 1:  # the versions of its last fold, which holds every fact
                            versions = domain.subject_versions(f.subject, prefix, rules, part_titles=titles)
                            batch.version(
                                g, outbox, f.tenant, edition_name, f.subject, versions, repriced=f.force
                            )
                if rewritten:
                    entries_after[f.subject] = list(current.values())
                if marks_now != marks_then:
                    marks_after[f.subject] = [
                        _mark_row(gid, f.subject, f.tenant, k) for k in sorted(marks_now)
                    ]
                states[f.subject] = {
                    "w_submission_id": f.subject,
                    "v_edition": edition_name,
                    "v_state": state,
                    "v_facts": len(history),
                    "v_folded_facts": len(history),
                    "v_versioned_facts": len(history),
                    "v_updated_at": now,
                }
            await _rewrite(conn, models.ledger, gid, "submission_id", entries_after)
            await _rewrite(conn, models.marks, gid, "subject", marks_after)
        if journal:
            journal.sort(key=lambda item: item[0])
            await conn.execute(models.ledger_journal.insert(), [row for _, row in journal])
        if states:
            await conn.execute(_state_update(), [states[s] for s in sorted(states)])
        if unscored:
            t = models.submission_states
            await conn.execute(
                sa.update(t)
                .where(t.c.submission_id.in_(sorted(set(unscored))))
                .values(folded_facts=t.c.facts, versioned_facts=t.c.facts)
            )
        if shared_batch is None:
            await batch.flush(conn)

    async def fold_unfolded(self, *, chunk: int = 0) -> int:
        """Fold again the subjects whose marks, totals or versions lag their facts (``models.UNFOLDED``): those a
        previous release folded during a rolling update — it keeps the ledger, not the read model or versions —
        and, after the upgrade, every subject it had. ``chunk`` subjects per transaction, until none is left; safe beside the
        consumer (``lock_subjects`` takes turns) and after a crash. Returns how many were folded."""
        assert self.engine is not None
        chunk = chunk or REFOLD_CHUNK
        t = models.submission_states
        done, after = 0, ""
        while True:
            async with self.engine.begin() as conn, batch_scope(conn):
                rows = (
                    await conn.execute(
                        sa.select(t.c.submission_id, t.c.tenant, t.c.edition)
                        .where(models.UNFOLDED, t.c.submission_id > after)
                        .order_by(t.c.submission_id)
                        .limit(chunk)
                    )
                ).all()
                gens = await generations(conn)
                await self.fold(
                    conn,
                    [
                        Fold(g, row.tenant, row.submission_id, row.edition, [(0, None, None)], force=True)
                        for g in gens
                        for row in rows
                    ],
                )
                if rows:
                    await conn.execute(
                        sa.update(t)
                        .where(t.c.submission_id.in_([row.submission_id for row in rows]))
                        .values(folded_facts=t.c.facts, versioned_facts=t.c.facts)
                    )
            done += len(rows)
            if len(rows) < chunk:
                if done:
                    log.info("%d subjects folded into the standings", done)
                return done
            after = rows[-1].submission_id

    async def refold_edition(
        self, conn: AsyncConnection, g: Generation, tenant: str, edition: str, *, cause: str | None
    ) -> None:
        """New rules: re-price every subject of the edition (reversals and credits in the journal)."""
        t = self.backbone.inbox
        subjects = (
            await conn.execute(
                sa.select(t.c.subject)
                .where(
                    t.c.purpose == g.purpose, t.c.tenant == tenant, t.c.event_type.in_(domain.SCORED_TYPES)
                )
                .distinct()
            )
        ).scalars()
        await self.fold(
            conn, [Fold(g, tenant, s, edition, [(0, cause, None)], True) for s in sorted(subjects)]
        )

    async def continue_refold(self, g: Generation, tenant: str, edition: str, *, chunk: int = 0) -> None:
        """Re-price the edition's subjects that the refold recorded by ``start_refold`` has not reached yet,
        ``chunk`` subjects per transaction (the cursor advances with them, and the totals of the participants
        each touches with it), then drop the record. Safe to run twice at once (each chunk re-derives from the facts; on
        PostgreSQL the record's row lock takes turns) and after a crash."""
        assert self.engine is not None
        chunk = chunk or REFOLD_CHUNK
        r, t = models.refolds, self.backbone.inbox
        key = sa.and_(r.c.generation == g.id, r.c.tenant == tenant, r.c.edition == edition)
        while True:
            async with self.engine.begin() as conn, batch_scope(conn):
                row = (await conn.execute(sa.select(r).where(key).with_for_update())).first()
                if row is None:
                    return
                subjects = (
                    (
                        await conn.execute(
                            sa.select(t.c.subject)
                            .where(
                                t.c.purpose == g.purpose,
                                t.c.tenant == tenant,
                                t.c.event_type.in_(domain.SCORED_TYPES),
                                t.c.subject > row.cursor,
                            )
                            .distinct()
                            .order_by(t.c.subject)
                            .limit(chunk)
                        )
                    )
                    .scalars()
                    .all()
                )
                await self.fold(
                    conn,
                    [Fold(g, tenant, s, edition, [(0, row.cause_event_id, None)], True) for s in subjects],
                )
                if len(subjects) < chunk:
                    await conn.execute(sa.delete(r).where(key))
                    log.info("edition %s/%s re-priced (generation %d)", tenant, edition, g.id)
                    return
                await conn.execute(
                    sa.update(r).where(key).values(cursor=subjects[-1], touched_at=datetime.now(UTC))
                )

    async def resume_refolds(self, *, stale_after: float) -> int:
        """Resume re-pricings nobody advanced for ``stale_after`` seconds (their consumer crashed). Returns how
        many were resumed."""
        assert self.engine is not None
        r = models.refolds
        before = datetime.now(UTC) - timedelta(seconds=stale_after)
        async with self.engine.connect() as conn:
            rows = (
                await conn.execute(
                    sa.select(r.c.generation, r.c.tenant, r.c.edition).where(r.c.touched_at < before)
                )
            ).all()
            gens = {g.id: g for g in await generations(conn)}
        for row in rows:
            g = gens.get(row.generation)
            if g is not None:
                await self.continue_refold(g, row.tenant, row.edition)
        return len(rows)


class FoldBatch:
    """What the folds of one batch of facts share (``shared.consumer.batch_local``): the subjects its facts
    changed, folded together at its end (``Projection.fold``: a handful of statements for the batch, not a
    handful per fact), or before a fact that changes an edition's rules; each edition's rules and part
    titles, read once; the participants whose totals the batch's subjects touched, re-derived once each,
    set by set, at the batch's end (a unit touched by 50 reports is re-derived once, not 50 times) under the rules
    in force then; and the subjects' versions, written together then."""

    def __init__(self) -> None:
        self._deferred: dict[tuple[int, str], Fold] = {}
        self._folder: Projection | None = None
        self._steps = 0
        self._editions: dict[tuple[str, str], tuple[domain.Rules | None, dict[str, str]]] = {}
        self._pending: dict[tuple[int, str, str], tuple[Generation, Outbox | None, set[tuple[str, str]]]] = {}
        self._versions: dict[int, dict[str, tuple[str, str, str, list[domain.Version]]]] = {}
        self._generations: dict[int, tuple[Generation, Outbox | None]] = {}
        self._repriced: set[tuple[int, str]] = set()
        self._alive: list[Generation] | None = None

    async def generations(self, conn: AsyncConnection) -> list[Generation]:
        """The generations alive (active and building), read once per batch."""
        if self._alive is None:
            self._alive = await generations(conn)
        return self._alive

    async def edition(
        self, conn: AsyncConnection, copies: Copies, tenant: str, edition: str
    ) -> tuple[domain.Rules | None, dict[str, str]]:
        """The rules in force and the part titles of an edition."""
        key = (tenant, edition)
        if key not in self._editions:
            rules = await current_rules(conn, tenant, edition)
            self._editions[key] = (rules, part_titles(await copies.edition(conn, tenant, edition)))
        return self._editions[key]

    def forget(self, tenant: str, edition: str) -> None:
        """A new version of the edition arrived: read it again."""
        self._editions.pop((tenant, edition), None)

    def refresh(
        self,
        g: Generation,
        tenant: str,
        edition: str,
        participants: Iterable[tuple[str, str]],
        outbox: Outbox | None,
    ) -> None:
        _, _, wanted = self._pending.setdefault((g.id, tenant, edition), (g, outbox, set()))
        wanted.update(participants)

    def version(
        self,
        g: Generation,
        outbox: Outbox | None,
        tenant: str,
        edition: str,
        subject: str,
        versions: list[domain.Version],
        *,
        repriced: bool = False,
    ) -> None:
        """A subject's versions, written at the batch's end (its latest fold wins); ``repriced``: folded under
        new rules (``asof.replace``)."""
        self._versions.setdefault(g.id, {})[subject] = (tenant, edition, subject, versions)
        self._generations[g.id] = (g, outbox)
        if repriced:
            self._repriced.add((g.id, subject))

    def defer(self, folder: Projection, fold: Fold) -> None:
        """Fold a subject at the batch's end, after the facts deferred before for it (in a generation)."""
        self._folder = folder
        self._steps += 1
        steps = [(self._steps, cause, fact) for _, cause, fact in fold.steps]
        pending = self._deferred.get((fold.g.id, fold.subject))
        if pending is None:
            self._deferred[(fold.g.id, fold.subject)] = Fold(
                fold.g, fold.tenant, fold.subject, fold.edition, steps, fold.force
            )
        else:
            pending.steps.extend(steps)
            pending.edition = pending.edition or fold.edition

    async def fold_deferred(self, conn: AsyncConnection) -> None:
        """Fold the subjects deferred so far."""
        if self._deferred:
            assert self._folder is not None
            folds, self._deferred = list(self._deferred.values()), {}
            await self._folder.fold(conn, folds)

    async def flush(self, conn: AsyncConnection) -> None:
        """The subjects deferred, then their versions, then the totals of every participant touched (by an entry,
        a mark or a version), then their timelines (``asof.advance``) with the totals just re-derived."""
        await self.fold_deferred(conn)
        changes: dict[int, dict[asof.Who, asof.Change]] = {}
        for gid in sorted(self._versions):
            repriced = {s for g_id, s in self._repriced if g_id == gid}
            changes[gid] = await asof.replace(
                conn, gid, list(self._versions[gid].values()), repriced=repriced
            )
            g, outbox = self._generations[gid]
            for tenant, edition, kind, pid in changes[gid]:
                self.refresh(g, tenant, edition, [(kind, pid)], outbox)
        self._versions.clear()
        self._repriced.clear()
        now: dict[int, dict[asof.Who, standings.Total]] = {}
        rules_of: dict[tuple[str, str], domain.Rules | None] = {}
        for key in sorted(self._pending):
            g, outbox, wanted = self._pending[key]
            _, tenant, edition = key
            rules = rules_of[(tenant, edition)] = await current_rules(conn, tenant, edition)
            totals = await refresh_totals(conn, g, tenant, edition, wanted, rules, outbox=outbox)
            now.setdefault(g.id, {}).update({(tenant, edition, *p): t for p, t in totals.items()})
        self._pending.clear()
        for gid, changed in sorted(changes.items()):
            await asof.advance(conn, gid, changed, now.get(gid, {}), rules_of)


def of_runtime(rt: Runtime) -> Projection:
    """The projection over a service's runtime: what the consumer's handlers and the standings job use."""
    assert rt.copies is not None
    return Projection(rt.backbone, rt.copies, rt.outbox, rt.engine)


REFOLD_CHUNK = 200  # subjects re-priced per transaction


async def start_refold(
    conn: AsyncConnection, g: Generation, tenant: str, edition: str, *, cause: str
) -> None:
    """Record (in the consumer's transaction) that the edition must be re-priced from its first subject: a newer
    rules change restarts a re-pricing still under way."""
    r = models.refolds
    now = datetime.now(UTC)
    values = {"cause_event_id": cause, "cursor": "", "touched_at": now}
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert  # type: ignore[assignment]
    stmt = insert(r).values(generation=g.id, tenant=tenant, edition=edition, **values)
    await conn.execute(
        stmt.on_conflict_do_update(index_elements=[r.c.generation, r.c.tenant, r.c.edition], set_=values)
    )


@dataclass
class Fold:
    """A subject to fold again in a generation, after each of its ``steps`` in turn: (its place in the batch, the
    cause journalled, the fact it added — None: every fact kept)."""

    g: Generation
    tenant: str
    subject: str
    edition: str | None
    steps: list[tuple[int, str | None, str | None]]
    force: bool = False


async def lock_subjects(
    conn: AsyncConnection, subjects: Mapping[str, tuple[str, str | None]], now: datetime
) -> None:
    """Upsert the subjects' state rows first (subject: tenant and edition), in subject order: on PostgreSQL this
    serialises folds of one subject, so the later of two concurrent folds waits and then sees the earlier one's
    fact, and two batches lock their common subjects in one order (SQLite writers are serial)."""
    rows = [
        {
            "submission_id": subject,
            "tenant": tenant,
            "edition": edition,
            "state": "pending",
            "facts": 0,
            "folded_facts": 0,
            "updated_at": now,
        }
        for subject, (tenant, edition) in sorted(subjects.items())
    ]
    await upsert_row(conn, models.submission_states, rows, update=("updated_at",))


IN_AT_ONCE = 500  # subjects per IN (…)


async def _rows_of(
    conn: AsyncConnection, table: sa.Table, generation: int, column: str, subjects: Sequence[str]
) -> dict[str, list[Any]]:
    """A generation's rows of ``table`` for some subjects (``column`` names the subject), by subject."""
    out: dict[str, list[Any]] = {}
    for i in range(0, len(subjects), IN_AT_ONCE):
        q = sa.select(table).where(
            table.c.generation == generation, table.c[column].in_(subjects[i : i + IN_AT_ONCE])
        )
        for r in (await conn.execute(q)).all():
            out.setdefault(getattr(r, column), []).append(r)
    return out


async def _rewrite(
    conn: AsyncConnection,
    table: sa.Table,
    generation: int,
    column: str,
    rows: Mapping[str, list[dict[str, Any]]],
) -> None:
    """Make the rows of these subjects exactly ``rows`` (by subject): theirs deleted, these inserted."""
    subjects = sorted(rows)
    for i in range(0, len(subjects), IN_AT_ONCE):
        await conn.execute(
            sa.delete(table).where(
                table.c.generation == generation, table.c[column].in_(subjects[i : i + IN_AT_ONCE])
            )
        )
    new = [r for s in subjects for r in rows[s]]
    if new:
        await conn.execute(table.insert(), new)


def _mark_key(r: Any) -> tuple[Any, ...]:
    return (r.participant_kind, r.participant_id, r.mark, r.seq, r.ok, r.label, r.edition)


def _mark_row(generation: int, subject: str, tenant: str, k: tuple[Any, ...]) -> dict[str, Any]:
    return {
        "generation": generation,
        "subject": subject,
        "participant_kind": k[0],
        "participant_id": k[1],
        "mark": k[2],
        "seq": k[3],
        "ok": k[4],
        "label": k[5],
        "tenant": tenant,
        "edition": k[6],
    }


@functools.cache
def _state_update() -> Any:
    """A subject's state after its fold (executemany: ``w_submission_id`` and the ``v_`` values)."""
    t = models.submission_states
    columns = ("edition", "state", "facts", "folded_facts", "versioned_facts", "updated_at")
    return (
        sa.update(t)
        .where(t.c.submission_id == sa.bindparam("w_submission_id"))
        .values({c: sa.bindparam(f"v_{c}") for c in columns})
    )


def _same(e: domain.LedgerEntry, r: Mapping[str, Any]) -> bool:
    return (e.points, e.event_id, e.reason_vi) == (r["points"], r["event_id"], r["reason_vi"])


def _entry_changes(
    current: Mapping[tuple[str, str, str], Mapping[str, Any]],
    entries: list[domain.LedgerEntry],
    generation: int,
    tenant: str,
    subject: str,
    cause: str | None,
    now: datetime,
) -> tuple[dict[tuple[str, str, str], dict[str, Any]], list[dict[str, Any]]]:
    """The ledger rows of a subject whose entries in force become ``entries`` (from ``current``: its rows), and
    the journal of that change: a reversal of each entry gone or changed, a credit of each new or changed one
    (none: nothing changed, and the rows need not be written)."""
    new = {_key(e): e for e in entries}
    journal: list[dict[str, Any]] = []
    for key, r in sorted(current.items()):  # reversals in the order of the ledger's key
        e = new.get(key)
        if e is not None and _same(e, r):
            continue
        journal.append(
            {
                "generation": generation,
                "tenant": tenant,
                "edition": r["edition"],
                "subject": subject,
                "participant_kind": r["participant_kind"],
                "participant_id": r["participant_id"],
                "rule": r["rule"],
                "event_id": r["event_id"],
                "cause_event_id": cause,
                "action": "reversal",
                "points": -r["points"],
                "time": r["time"],
                "reason_vi": f"Hủy ghi nhận: {r['reason_vi']}",
                "reason_en": f"Reversed: {r['reason_en']}",
                "recorded_at": now,
            }
        )
    rows: dict[tuple[str, str, str], dict[str, Any]] = {}
    for key, e in new.items():
        rows[key] = {
            "generation": generation,
            "submission_id": subject,
            "participant_kind": e.participant_kind,
            "participant_id": e.participant_id,
            "rule": e.rule,
            "tenant": tenant,
            "edition": e.edition,
            "part": e.part,
            "kind": e.kind,
            "event_id": e.event_id,
            "points": e.points,
            "time": e.time,
            "reason_vi": e.reason_vi,
            "reason_en": e.reason_en,
            "recorded_at": now,
        }
        prior = current.get(key)
        if prior is not None and _same(e, prior):
            continue
        journal.append(
            {
                "generation": generation,
                "tenant": tenant,
                "edition": e.edition,
                "subject": subject,
                "participant_kind": e.participant_kind,
                "participant_id": e.participant_id,
                "rule": e.rule,
                "event_id": e.event_id,
                "cause_event_id": cause,
                "action": "credit",
                "points": e.points,
                "time": e.time,
                "reason_vi": e.reason_vi,
                "reason_en": e.reason_en,
                "recorded_at": now,
            }
        )
    return rows, journal


def _key(e: domain.LedgerEntry) -> tuple[str, str, str]:
    return (e.participant_kind, e.participant_id, e.rule)


# ------------------------------------------------------------------------------------------------ the list


@dataclass(frozen=True)
class Computed:
    """An edition's list as one generation's facts say, as of a moment, under the rules in force."""

    generation: Generation
    rules: domain.Rules | None
    edition: Edition | None
    entries: tuple[domain.LedgerEntry, ...]  # every entry in force then
    persons: list[domain.Ranked]
    units: list[domain.Ranked]
    known: bool  # any fact of the edition kept (else: an unknown edition)


async def edition_facts(
    conn: AsyncConnection, backbone: Backbone, purpose: str, tenant: str, edition: str
) -> list[Envelope]:
    """Every scored fact a generation keeps for an edition (a fact without an edition belongs to any)."""
    return _parsed(await _edition_envelopes(conn, backbone, purpose, tenant), edition)


async def _edition_envelopes(
    conn: AsyncConnection, backbone: Backbone, purpose: str, tenant: str
) -> list[str | bytes]:
    t = backbone.inbox
    q = sa.select(t.c.envelope).where(
        t.c.purpose == purpose, t.c.tenant == tenant, t.c.event_type.in_(domain.SCORED_TYPES)
    )
    return list((await conn.execute(q)).scalars())


def _parsed(raw: Iterable[str | bytes], edition: str) -> list[Envelope]:
    out = []
    for r in raw:
        env = Envelope.from_json(r)
        if env.edition in (None, edition):
            out.append(env)
    return out


async def compute(
    conn: AsyncConnection,
    backbone: Backbone,
    copies: Copies,
    tenant: str,
    edition: str,
    *,
    as_of: datetime | None = None,
    generation: Generation | None = None,
) -> Computed:
    """The list as of a moment (or now): read from the stored versions (``asof``) of a generation alive when they
    are whole, else folded from every fact the generation keeps for the edition (a retired generation; during an
    upgrade or a re-pricing). Either runs off the event loop, one of a kind at a time (``shared/heavy.py``)."""
    g = generation or await active_generation(conn)
    rules = await current_rules(conn, tenant, edition)
    doc = await copies.edition(conn, tenant, edition)
    if (
        as_of is not None
        and g.status in ("active", "building")
        and await asof.usable(conn, g.id, tenant, edition)
    ):
        async with heavy.slot("asof"):  # the cost of what is in force then
            raw = await asof.in_force(conn, g.id, tenant, edition, as_of)
            entries, persons, units = await asyncio.to_thread(asof.ranked, raw, rules)
        known = bool(raw) or doc is not None or await readmodel.known(conn, tenant, edition)
        return Computed(g, rules, doc, tuple(entries), persons, units, known)
    titles = part_titles(doc)
    async with heavy.slot("fold"):  # a fold costs every fact kept for the edition
        raw_facts = await _edition_envelopes(conn, backbone, g.purpose, tenant)

        def fold() -> tuple[domain.Standing, list[domain.Ranked], list[domain.Ranked], int]:
            facts = _parsed(raw_facts, edition)
            standing = domain.fold_edition(facts, rules, as_of=as_of, part_titles=titles)
            return (standing, *domain.priority(standing, rules), len(facts))

        standing, persons, units, n = await asyncio.to_thread(fold)
    return Computed(g, rules, doc, standing.entries, persons, units, n > 0)


async def load_list(
    conn: AsyncConnection,
    backbone: Backbone,
    copies: Copies,
    tenant: str,
    edition: str,
    *,
    as_of: datetime | None,
    now: datetime,
    unit: str | None = None,
    union: str | None = None,
    role: str | None = None,
    generation: int | None = None,
    offset: int = 0,
    limit: int | None = None,
    ledger: bool = True,
) -> view.PriorityList | None:
    """The list as people read it (names from the directory copy as of ``as_of``, else ``now``); None when
    the edition is unknown; ``ledger=False``: without the ledger's rows (``view.build``).

    The list now (no ``as_of``) of a generation alive (the live one, or one being rebuilt) is read from the
    incremental read model (``readmodel``: totals ranked by the database); a page (``limit``) then costs the
    page: the people and units it names are read together, and the union roll-ups (which need every member)
    are left out. "As of" a moment is read from the stored versions (``compute``: the cost of what was in force
    then), and a retired generation whose facts are kept is folded from the facts; a page of either
    (unfiltered) then names only the page's people, as the read model's page does."""
    gen = await generation_by_id(conn, generation) if generation is not None else None
    alive = {g.id: g for g in await generations(conn)}
    filtered = unit is not None or union is not None or role is not None
    paged = limit is not None and not filtered
    live = (gen or await active_generation(conn)) if gen is None or gen.id in alive else None
    if live is not None and (as_of is None or (paged and await asof.usable(conn, live.id, tenant, edition))):
        g = live
        rules = await current_rules(conn, tenant, edition)
        doc = await copies.edition(conn, tenant, edition)
        if as_of is None:
            page = await readmodel.load(
                conn,
                g.id,
                tenant,
                edition,
                rules,
                offset=0 if filtered else offset,
                limit=None if filtered else limit,
                unit_entries=ledger,
            )
            every_unit = await readmodel.unit_points(conn, g.id, tenant, edition) if paged else {}
        else:  # a page as of a moment, ranked by the database from the participants' timelines
            assert limit is not None
            page = await page_as_of(
                conn, g.id, tenant, edition, rules, as_of, offset=offset, limit=limit, unit_entries=ledger
            )
            every_unit = await readmodel.unit_points(conn, g.id, tenant, edition, at=as_of)
        if (
            doc is None
            and not page.persons
            and not page.units
            and not await readmodel.known(conn, tenant, edition)
        ):
            return None
        persons, units, entries = page.persons, page.units, page.entries
        edition_version = rules.edition_version if rules else None
        rules_version = rules.rules_version if rules else None
        gid = g.id
        titles = part_titles(doc)
    else:
        computed = await compute(conn, backbone, copies, tenant, edition, as_of=as_of, generation=gen)
        if computed.edition is None and not computed.known:
            return None
        persons, units, entries = computed.persons, computed.units, computed.entries
        every_unit = {r.participant_id: r.points for r in units}
        if paged:  # as the read model's page: the page's participants, their entries and their subjects'
            assert limit is not None
            page = _page_of(persons, units, entries, offset, limit)
            persons, units, entries = page.persons, page.units, page.entries
        edition_version = computed.rules.edition_version if computed.rules else None
        rules_version = computed.rules.rules_version if computed.rules else None
        gid = computed.generation.id
        titles = part_titles(computed.edition)
    when = as_of or now
    if paged:
        people = await copies.people_in_force(conn, tenant, [r.participant_id for r in persons], when)
    else:
        people = {p.id: p for p in await copies.people_in(conn, tenant, when)}
    ids = {r.participant_id for r in units} | {p.unit for p in people.values()}
    if paged:
        ids |= set(every_unit)
    unit_docs = await copies.units_in_force(conn, tenant, ids, when)
    # parents of the units named (a branch's parent may have no entries of its own)
    parents = {u.parent for u in unit_docs.values() if u.parent and u.parent not in unit_docs}
    unit_docs |= await copies.units_in_force(conn, tenant, parents, when)
    pl = view.build(
        edition=edition,
        as_of=as_of,
        persons=persons,
        units=units,
        entries=entries,
        generation=gid,
        edition_version=edition_version,
        rules_version=rules_version,
        people=people,
        unit_docs=unit_docs,
        union_docs=await models.copies.unions_of(conn, tenant),
        unit=unit,
        union=union,
        role=role,
        unions=not paged,
        unit_points=every_unit if paged else None,
        ledger=ledger,
        unit_reasons=limit is None or ledger,
        part_titles=titles,
    )
    if limit is not None and not paged:  # filtered or as of a moment: the page of the built list
        shown_persons, shown_units = pl.persons[offset : offset + limit], pl.units[offset : offset + limit]
        listed = {("person", p.person_id) for p in shown_persons} | {("unit", u.unit_id) for u in shown_units}
        return pl.model_copy(
            update={
                "persons": shown_persons,
                "units": shown_units,
                "ledger": [e for e in pl.ledger if (e.participant_kind, e.participant_id) in listed],
                "page": view.Page(
                    offset=offset, limit=limit, persons_total=len(pl.persons), units_total=len(pl.units)
                ),
            }
        )
    if paged:
        assert limit is not None
        return pl.model_copy(
            update={
                "page": view.Page(
                    offset=offset, limit=limit, persons_total=page.persons_total, units_total=page.units_total
                )
            }
        )
    return pl


async def page_as_of(
    conn: AsyncConnection,
    generation: int,
    tenant: str,
    edition: str,
    rules: domain.Rules | None,
    at: datetime,
    *,
    offset: int,
    limit: int,
    unit_entries: bool = True,
) -> readmodel.Page:
    """A page of the list as of ``at`` from the participants' timelines (``asof``): ranked by the database among
    the standings in force then, with the page's entries from the versions in force of its persons' subjects
    (and of its units' with ``unit_entries``; else a unit is listed with its sums per rule) — the cost of the
    page, whatever the size of the edition or of its units."""
    found = {
        kind: await readmodel.ranked(
            conn, generation, tenant, edition, kind, rules, offset=offset, limit=limit, at=at
        )
        for kind in ("person", "unit")
    }
    brief = readmodel.briefly(found["unit"], unit_entries)
    versions = await asof.in_force_of(
        conn,
        generation,
        [
            (tenant, edition, r.participant_kind, r.participant_id)
            for rows in found.values()
            for _, r in rows
            if (r.participant_kind, r.participant_id) not in brief
        ],
        at,
    )
    entries, _ = asof.decoded(versions)
    out = {kind: readmodel.ranked_rows(rows, entries, rules, brief=brief) for kind, rows in found.items()}
    page = _page_of(out["person"], out["unit"], entries, 0, limit)
    return readmodel.Page(
        page.persons,
        page.units,
        page.entries,
        await readmodel.count(conn, generation, tenant, edition, "person", at=at),
        await readmodel.count(conn, generation, tenant, edition, "unit", at=at),
    )


def _page_of(
    persons: list[domain.Ranked],
    units: list[domain.Ranked],
    entries: Iterable[domain.LedgerEntry],
    offset: int,
    limit: int,
) -> readmodel.Page:
    """A page of a whole ranked list, holding what ``readmodel.load`` gives for a page: the page's persons and
    units, their entries and the other entries of their persons' subjects (a unit's reasons)."""
    shown_p, shown_u = persons[offset : offset + limit], units[offset : offset + limit]
    listed = {("person", r.participant_id) for r in shown_p} | {("unit", r.participant_id) for r in shown_u}
    all_entries = list(entries)
    subjects = {
        e.submission_id
        for e in all_entries
        if e.participant_kind == "person" and (e.participant_kind, e.participant_id) in listed
    }
    kept = tuple(
        e
        for e in all_entries
        if (e.participant_kind, e.participant_id) in listed or e.submission_id in subjects
    )
    return readmodel.Page(shown_p, shown_u, kept, len(persons), len(units))


# ------------------------------------------------------------------------------------------------ standings


async def tell_swap(
    conn: AsyncConnection,
    outbox: Outbox,
    tenant: str,
    edition: str,
    *,
    old: Generation,
    new: Generation,
    rules: domain.Rules | None,
    now: datetime,
) -> int:
    """At a rebuild's swap: tell (``reward.priority.changed``) each participant whose eligibility differs between
    the retiring generation's totals and the new one's, and carry the count of changes told over (so ids stay
    deterministic and never repeat). Returns the number of changes told."""
    t = models.totals
    cols = (t.c.participant_kind, t.c.participant_id, t.c.eligibility_keys, t.c.changes)

    async def rows(g: Generation) -> dict[tuple[str, str], Any]:
        q = sa.select(*cols).where(t.c.generation == g.id, t.c.tenant == tenant, t.c.edition == edition)
        return {(r.participant_kind, r.participant_id): r for r in (await conn.execute(q)).all()}

    before, after = await rows(old), await rows(new)
    told = 0
    for key in sorted(set(before) | set(after)):
        b, a = before.get(key), after.get(key)
        old_keys = b.eligibility_keys if b is not None else ""
        new_keys = a.eligibility_keys if a is not None else ""
        changes = b.changes if b is not None else 0
        if old_keys != new_keys:
            changes += 1
            total = await readmodel.participant_total(conn, new.id, tenant, edition, key[0], key[1], rules)
            rank = None
            if a is not None:
                row = (
                    await conn.execute(
                        sa.select(t).where(
                            t.c.generation == new.id,
                            t.c.tenant == tenant,
                            t.c.edition == edition,
                            t.c.participant_kind == key[0],
                            t.c.participant_id == key[1],
                        )
                    )
                ).one()
                rank = await readmodel.rank_of(conn, new.id, tenant, edition, row, rules)
            await readmodel.tell(
                conn, outbox, tenant, edition, total, old_keys, rank, None, changes, rules, now
            )
            told += 1
        if a is not None and a.changes != changes:
            await conn.execute(
                sa.update(t)
                .where(
                    t.c.generation == new.id,
                    t.c.tenant == tenant,
                    t.c.edition == edition,
                    t.c.participant_kind == key[0],
                    t.c.participant_id == key[1],
                )
                .values(changes=changes)
            )
    return told


def editions_of(facts: Iterable[Envelope]) -> set[str]:
    return {f.edition for f in facts if f.edition}
