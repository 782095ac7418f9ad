"""rewards' projection over its database: generations, the rules it accepted, the ledger and its journal, the
list, and the standings it has told others about (``reward.priority.changed``).

Used by the live consumer's handlers, the API and ``hoithi rewards rebuild`` alike, so a rebuilt generation is
made by exactly the code that makes the live one.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.rewards import domain, models, view
from shared.consumer import Inbox, after_commit
from shared.copies import Copies
from shared.db import Backbone, insert_ignore, upsert
from shared.documents import Edition
from shared.events.catalogue import RewardPriorityChanged
from shared.events.envelope import Envelope, deterministic_id
from shared.lease import Lease
from shared.outbox import Outbox
from shared.reward_rules import RuleError, check_rewards, parts_of

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
    await conn.execute(
        insert_ignore(
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
        gens = [only] if only is not None else await generations(conn)
        fresh: list[Generation] = []
        for g in gens:
            if g.purpose == FACTS and only is None:
                fresh.append(g)  # the consumer recorded it
            elif await self.inbox.record(conn, g.purpose, env, env.to_json()):
                fresh.append(g)
        if env.type == "edition.published":
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
    ) -> None:
        await lock_subject(conn, tenant, subject, edition)
        history = await self.inbox.history(conn, g.purpose, subject)
        scored = [f for f in history if domain.subject_kind(f.type) is not None]
        if not scored:
            return
        edition_name = next((f.edition for f in scored if f.edition), None) or edition
        rules = await current_rules(conn, tenant, edition_name) if edition_name else None
        doc = await self.copies.edition(conn, tenant, edition_name) if edition_name else None
        standing = domain.fold_edition(scored, rules, part_titles=part_titles(doc))
        entries = [e for e in standing.entries if e.submission_id == subject]
        state = "assignment"
        if subject in standing.submissions:
            state = standing.submissions[subject].status
        await replace_entries(conn, g.id, tenant, subject, entries, cause=cause)
        await conn.execute(
            sa.update(models.submission_states)
            .where(models.submission_states.c.submission_id == subject)
            .values(edition=edition_name, state=state, facts=len(history), updated_at=datetime.now(UTC))
        )
        if edition_name:
            await mark_dirty(conn, tenant, edition_name)

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
        for subject in sorted(subjects):
            await self.refold_subject(conn, g, tenant, subject, edition, cause=cause)
        await mark_dirty(conn, tenant, edition)

    async def continue_refold(self, g: Generation, tenant: str, edition: str, *, chunk: int = 0) -> None:
        """Re-price the edition's subjects that the refold recorded by ``start_refold`` has not reached yet,
        ``chunk`` subjects per transaction (the cursor advances with them), then drop the record and mark the
        edition for the standings job. Safe to run twice at once (each chunk re-derives from the facts; on
        PostgreSQL the record's row lock takes turns) and after a crash."""
        assert self.engine is not None
        chunk = chunk or REFOLD_CHUNK
        r, t = models.refolds, self.backbone.inbox
        key = sa.and_(r.c.generation == g.id, r.c.tenant == tenant, r.c.edition == edition)
        while True:
            async with self.engine.begin() as conn:
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
                for subject in subjects:
                    await self.refold_subject(conn, g, tenant, subject, edition, cause=row.cause_event_id)
                if len(subjects) < chunk:
                    await conn.execute(sa.delete(r).where(key))
                    await mark_dirty(conn, tenant, edition)
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


async def lock_subject(conn: AsyncConnection, tenant: str, subject: str, edition: str | None) -> None:
    """Upsert the subject's state row first: on PostgreSQL this serialises folds of one subject, so the later
    of two concurrent folds waits and then sees the earlier one's fact (SQLite writers are serial)."""
    t = models.submission_states
    now = datetime.now(UTC)
    row = {"submission_id": subject, "tenant": tenant, "edition": edition, "state": "pending", "facts": 0}
    await conn.execute(upsert(conn, t, {**row, "updated_at": now}, set_={"updated_at": now}))


async def mark_dirty(conn: AsyncConnection, tenant: str, edition: str) -> None:
    """Mark an edition for the standings job (insert-only: no row lock shared by concurrent consumers)."""
    await conn.execute(
        insert_ignore(conn, models.dirty, {"tenant": tenant, "edition": edition, "since": datetime.now(UTC)})
    )


def _key(e: domain.LedgerEntry) -> tuple[str, str, str]:
    return (e.participant_kind, e.participant_id, e.rule)


async def replace_entries(
    conn: AsyncConnection,
    generation: int,
    tenant: str,
    subject: str,
    entries: list[domain.LedgerEntry],
    *,
    cause: str | None,
) -> None:
    """Make the subject's entries in force exactly ``entries``, journalling each credit and reversal."""
    t = models.ledger
    where = sa.and_(t.c.generation == generation, t.c.submission_id == subject)
    old = {
        (r.participant_kind, r.participant_id, r.rule): r
        for r in (await conn.execute(sa.select(t).where(where))).all()
    }
    new = {_key(e): e for e in entries}
    now = datetime.now(UTC)
    journal: list[dict[str, Any]] = []
    for key, r in old.items():
        e = new.get(key)
        if e is not None and (e.points, e.event_id, e.reason_vi) == (r.points, r.event_id, r.reason_vi):
            continue
        journal.append(
            {
                "generation": generation,
                "tenant": tenant,
                "edition": r.edition,
                "subject": subject,
                "participant_kind": r.participant_kind,
                "participant_id": r.participant_id,
                "rule": r.rule,
                "event_id": r.event_id,
                "cause_event_id": cause,
                "action": "reversal",
                "points": -r.points,
                "time": r.time,
                "reason_vi": f"Hủy ghi nhận: {r.reason_vi}",
                "reason_en": f"Reversed: {r.reason_en}",
                "recorded_at": now,
            }
        )
    rows = []
    for key, e in new.items():
        prior = old.get(key)
        row = {
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
        rows.append(row)
        if prior is not None and (e.points, e.event_id, e.reason_vi) == (
            prior.points,
            prior.event_id,
            prior.reason_vi,
        ):
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
    if not journal:
        return
    await conn.execute(sa.delete(t).where(where))
    if rows:
        await conn.execute(t.insert(), rows)
    await conn.execute(models.ledger_journal.insert(), journal)


# ------------------------------------------------------------------------------------------------ the list


@dataclass(frozen=True)
class Computed:
    """An edition's list as one generation's facts say, as of a moment, under the rules in force."""

    generation: Generation
    rules: domain.Rules | None
    edition: Edition | None
    standing: domain.Standing
    persons: list[domain.Ranked]
    units: list[domain.Ranked]
    facts: int


async def edition_facts(
    conn: AsyncConnection, backbone: Backbone, purpose: str, tenant: str, edition: str
) -> list[Envelope]:
    """Every scored fact a generation keeps for an edition (a fact without an edition belongs to any)."""
    t = backbone.inbox
    raw = (
        await conn.execute(
            sa.select(t.c.envelope).where(
                t.c.purpose == purpose, t.c.tenant == tenant, t.c.event_type.in_(domain.SCORED_TYPES)
            )
        )
    ).scalars()
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
    g = generation or await active_generation(conn)
    facts = await edition_facts(conn, backbone, g.purpose, tenant, edition)
    rules = await current_rules(conn, tenant, edition)
    doc = await copies.edition(conn, tenant, edition)
    standing = domain.fold_edition(facts, rules, as_of=as_of, part_titles=part_titles(doc))
    persons, units = domain.priority(standing, rules)
    return Computed(g, rules, doc, standing, persons, units, len(facts))


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
) -> view.PriorityList | None:
    """The list as people read it (names from the directory copy as of ``as_of``, else ``now``); None when
    the edition is unknown."""
    gen = await generation_by_id(conn, generation) if generation is not None else None
    computed = await compute(conn, backbone, copies, tenant, edition, as_of=as_of, generation=gen)
    if computed.edition is None and not computed.facts:
        return None
    when = as_of or now
    people = {p.id: p for p in await copies.people_in(conn, tenant, when)}
    ids = {r.participant_id for r in computed.units} | {p.unit for p in people.values()}
    unit_docs = {}
    for uid in sorted(ids):
        u = await copies.unit(conn, tenant, uid, when)
        if u is not None:
            unit_docs[uid] = u
    # parents of the units named (a branch's parent may have no entries of its own)
    for u in list(unit_docs.values()):
        if u.parent and u.parent not in unit_docs:
            parent = await copies.unit(conn, tenant, u.parent, when)
            if parent is not None:
                unit_docs[parent.id] = parent
    return view.build(
        edition=edition,
        as_of=as_of,
        persons=computed.persons,
        units=computed.units,
        entries=computed.standing.entries,
        generation=computed.generation.id,
        edition_version=computed.rules.edition_version if computed.rules else None,
        rules_version=computed.rules.rules_version if computed.rules else None,
        people=people,
        unit_docs=unit_docs,
        union_docs=await models.copies.unions_of(conn, tenant),
        unit=unit,
        union=union,
        role=role,
    )


# ------------------------------------------------------------------------------------------------ standings


async def publish_changes(
    conn: AsyncConnection,
    outbox: Outbox,
    tenant: str,
    edition: str,
    computed: Computed,
    *,
    told: int,
    now: datetime,
    clear_old: Sequence[int] = (),
) -> int:
    """Compare the list with what generation ``told`` last told others; emit ``reward.priority.changed`` for
    each participant whose rank, points or eligibility differ; keep the new standings under the computed
    generation. Returns the number of changes. Ids are deterministic: the same change is never told twice."""
    s = models.standings
    rows = (
        await conn.execute(
            sa.select(s).where(s.c.generation == told, s.c.tenant == tenant, s.c.edition == edition)
        )
    ).all()
    before = {(r.participant_kind, r.participant_id): r for r in rows}
    after = {(r.participant_kind, r.participant_id): r for r in (*computed.persons, *computed.units)}
    rules_version = computed.rules.rules_version if computed.rules is not None else 1
    emitted = 0
    new_rows: list[dict[str, Any]] = []
    for key in sorted(set(before) | set(after)):
        old, new = before.get(key), after.get(key)
        digest = new.digest() if new is not None else None
        changes = old.changes if old is not None else 0
        if (old.digest if old is not None else None) != digest and not (old is None and new is None):
            changes += 1
            await outbox.emit(
                conn,
                "reward.priority.changed",
                _change_data(key, old, new, rules_version),
                tenant=tenant,
                subject=key[1],
                time=now,
                edition=edition,
                event_id=deterministic_id(
                    "reward.priority.changed",
                    tenant,
                    edition,
                    key[0],
                    key[1],
                    old.digest if old is not None else "-",
                    digest or "-",
                    changes,
                ),
            )
            emitted += 1
        new_rows.append(
            {
                "generation": computed.generation.id,
                "tenant": tenant,
                "edition": edition,
                "participant_kind": key[0],
                "participant_id": key[1],
                "rank": new.rank if new is not None else None,
                "points": new.points if new is not None else 0.0,
                "eligibility": json.dumps(sorted(e.key for e in new.eligibility) if new is not None else []),
                "digest": digest,
                "changes": changes,
                "rules_version": rules_version,
                "updated_at": now,
            }
        )
    await conn.execute(
        sa.delete(s).where(
            s.c.generation.in_({told, computed.generation.id, *clear_old}),
            s.c.tenant == tenant,
            s.c.edition == edition,
        )
    )
    if new_rows:
        await conn.execute(s.insert(), new_rows)
    return emitted


def _change_data(
    key: tuple[str, str], old: Any, new: domain.Ranked | None, rules_version: int
) -> RewardPriorityChanged:
    reasons = []
    if new is not None:
        reasons = [{"vi": e.reason_vi, "en": e.reason_en} for e in new.entries]
        for el in new.eligibility:
            reasons += [{"vi": f"{el.title_vi}: {vi}", "en": f"{el.title_en}: {en}"} for vi, en in el.reasons]
    return RewardPriorityChanged.model_validate(
        {
            "participant_kind": key[0],
            "participant_id": key[1],
            "rank": new.rank if new is not None else None,
            "previous_rank": old.rank if old is not None else None,
            "points": new.points if new is not None else 0.0,
            "eligibility": sorted(e.key for e in new.eligibility) if new is not None else [],
            "reasons": reasons,
            "rules_version": max(1, rules_version),
        }
    )


async def refresh_standings(
    engine: AsyncEngine, backbone: Backbone, copies: Copies, outbox: Outbox, now: datetime, *, lease: Lease
) -> int:
    """The standings job's one pass over the editions touched since the last one (live generation). The list
    is computed on a read connection (a long fold never holds the write lock the consumer needs); only the
    comparison and the events are written, each edition in one short transaction fenced by ``lease``: a pass
    whose lease was taken over meanwhile (it stalled past the expiry) commits nothing — its computation may be
    older than what the successor already told — and raises ``LeaseLost``. Returns changes emitted."""
    d = models.dirty
    async with engine.connect() as conn:
        rows = (await conn.execute(sa.select(d.c.tenant, d.c.edition, d.c.since))).all()
        seen: dict[tuple[str, str], list[datetime]] = {}
        for tenant, edition, since in rows:
            seen.setdefault((tenant, edition), []).append(since)
        g = await active_generation(conn)
        computed = {k: await compute(conn, backbone, copies, k[0], k[1], generation=g) for k in sorted(seen)}
    total = 0
    for (tenant, edition), c in computed.items():
        async with lease.begin(engine) as conn:
            if (await active_generation(conn)).id != g.id:
                return total  # a rebuild swapped in meanwhile: it told what differs
            # Only the marks this pass saw go (one committed meanwhile stays: the next pass recomputes).
            marks = seen[(tenant, edition)]
            for i in range(0, len(marks), 500):
                await conn.execute(
                    sa.delete(d).where(
                        d.c.tenant == tenant, d.c.edition == edition, d.c.since.in_(marks[i : i + 500])
                    )
                )
            total += await publish_changes(conn, outbox, tenant, edition, c, told=g.id, now=now)
    return total


def editions_of(facts: Iterable[Envelope]) -> set[str]:
    return {f.edition for f in facts if f.edition}
