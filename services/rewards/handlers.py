"""rewards' event handlers: each runs inside the consumer's transaction, after the fact's inbox row is written.

A submission fact re-folds everything kept for that submission and makes the ledger say what the fold says,
so duplicates, redelivery and reordering converge on the same ledger.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from services.rewards import domain, models
from shared.consumer import Handler, Inbox
from shared.db import insert_ignore
from shared.documents import Edition
from shared.events.envelope import Envelope
from shared.service import Runtime
from shared.streams import consumers_of

log = logging.getLogger("hoithi.rewards")

FACTS = "facts"


def build(rt: Runtime) -> dict[str, dict[str, Handler]]:
    copies = rt.copies
    assert copies is not None
    inbox = Inbox(rt.backbone)

    async def keep(conn: AsyncConnection, env: Envelope) -> None:
        """Kept in the inbox for later folds (deadlines, selections, the 90-day campaign); no effect yet."""

    async def directory(conn: AsyncConnection, env: Envelope) -> None:
        await copies.apply(conn, env)

    async def edition_published(conn: AsyncConnection, env: Envelope) -> None:
        await copies.apply(conn, env)
        edition = await copies.edition(conn, env.tenant, env.data["document"]["edition"])
        if edition is not None:
            await repoint(conn, env.tenant, edition)

    async def submission(conn: AsyncConnection, env: Envelope) -> None:
        await lock_submission(conn, env)
        history = await inbox.history(conn, FACTS, env.subject)
        state = domain.fold_submission(env.subject, history)
        edition_name = state.edition or env.edition
        entries: list[domain.LedgerEntry] = []
        if state.active:
            edition = await copies.edition(conn, env.tenant, edition_name) if edition_name else None
            if edition_name is None:
                log.warning("submission %s has no edition: default points", env.subject)
            entries = domain.ledger_entries(
                state,
                points=edition.rewards.points if edition is not None and edition.rewards else None,
                part_title=_part_title(edition, state.part),
            )
        await replace_entries(conn, env.tenant, env.subject, entries)
        await conn.execute(
            sa.update(models.submission_states)
            .where(models.submission_states.c.submission_id == env.subject)
            .values(
                edition=edition_name, state=state.status, facts=len(history), updated_at=datetime.now(UTC)
            )
        )

    handlers: dict[str, Handler] = {t: keep for t in _facts_types()}
    handlers.update(
        {
            "directory.unit.changed": directory,
            "directory.person.changed": directory,
            "edition.published": edition_published,
            **{t: submission for t in domain.SUBMISSION_TYPES},
        }
    )
    return {FACTS: handlers}


def _facts_types() -> tuple[str, ...]:
    return next(c.types for c in consumers_of("rewards") if c.purpose == FACTS)


def _part_title(edition: Edition | None, part: str | None) -> str | None:
    if edition is None or part is None:
        return None
    try:
        return edition.part(part).title
    except KeyError:
        return None


async def lock_submission(conn: AsyncConnection, env: Envelope) -> None:
    """Upsert the submission's state row first: on PostgreSQL this serialises folds of one submission, so
    the later of two concurrent folds waits and then sees the earlier one's fact (SQLite writers are serial)."""
    t = models.submission_states
    now = datetime.now(UTC)
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert  # type: ignore[assignment]
    stmt = insert(t).values(
        submission_id=env.subject,
        tenant=env.tenant,
        edition=env.edition,
        state="pending",
        facts=0,
        updated_at=now,
    )
    await conn.execute(
        stmt.on_conflict_do_update(index_elements=[t.c.submission_id], set_={"updated_at": now})
    )


async def replace_entries(
    conn: AsyncConnection, tenant: str, submission_id: str, entries: list[domain.LedgerEntry]
) -> None:
    """Make the submission's ledger entries exactly ``entries`` (a projection: removed entries leave no trace
    here; the facts that removed them stay in the inbox)."""
    t = models.ledger
    await conn.execute(sa.delete(t).where(t.c.submission_id == submission_id))
    if not entries:
        return
    now = datetime.now(UTC)
    await conn.execute(
        insert_ignore(
            conn,
            t,
            [
                {
                    "submission_id": e.submission_id,
                    "participant_kind": e.participant_kind,
                    "participant_id": e.participant_id,
                    "tenant": tenant,
                    "edition": e.edition,
                    "part": e.part,
                    "kind": e.kind,
                    "event_id": e.event_id,
                    "rule": e.rule,
                    "points": e.points,
                    "time": e.time,
                    "reason_vi": e.reason_vi,
                    "reason_en": e.reason_en,
                    "recorded_at": now,
                }
                for e in entries
            ],
        )
    )


async def repoint(conn: AsyncConnection, tenant: str, edition: Edition) -> None:
    """A (re)published edition may change the reward rules: re-price its ledger entries (a receipt that was
    kept before the edition reached this copy got the default point)."""
    t = models.ledger
    points = edition.rewards.points if edition.rewards else None
    rows = (
        await conn.execute(
            sa.select(
                t.c.submission_id,
                t.c.participant_kind,
                t.c.participant_id,
                t.c.part,
                t.c.kind,
                t.c.rule,
                t.c.points,
            ).where(t.c.tenant == tenant, t.c.edition == edition.edition)
        )
    ).all()
    for r in rows:
        rule, pts = domain.points_for(points, r.part, r.kind)
        if (rule, pts) != (r.rule, r.points):
            await conn.execute(
                sa.update(t)
                .where(
                    t.c.submission_id == r.submission_id,
                    t.c.participant_kind == r.participant_kind,
                    t.c.participant_id == r.participant_id,
                )
                .values(rule=rule, points=pts)
            )
