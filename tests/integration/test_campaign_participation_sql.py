"""Participation's standings are decided by the database (``usecases.participation.standings``); the rule is
``domain.standing``. On SQLite and PostgreSQL, over assignments with random histories — fulfilled on time,
late, with no on-time verdict, reopened, fulfilled again at the same instant as a reopening (then the order
recorded decides), missed, extended — and at random instants and at the very instants something happened
(``at or before`` is inclusive), every assignment's standing from the database equals the rule's, assignments
made after the instant are not counted, and another edition's or tenant's are never read."""

from __future__ import annotations

import asyncio
import random
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from services.campaign import domain, models
from services.campaign.usecases.participation import standings
from shared import migrate
from tests.support.plans import database_url

TENANT, EDITION = "quangtri-stnmt", "2024"
START = datetime(2024, 10, 1, tzinfo=UTC)


def _history(rnd: random.Random, n: int, tenant: str, edition: str) -> dict[str, Any]:
    """``n`` assignments of ``tenant``/``edition`` with random facts: rows to insert, and each one's
    ``domain.AssignmentFacts`` with its creation time."""
    rows: dict[str, list[dict[str, Any]]] = {"assignments": [], "changes": [], "misses": [], "extensions": []}
    facts: list[tuple[datetime, domain.AssignmentFacts]] = []
    recorded = 0
    for i in range(n):
        aid, part, unit = (
            str(uuid.UUID(int=rnd.getrandbits(128))),
            rnd.choice(["p1", "p2", "p3"]),
            f"u{i % 7}",
        )
        created = START + timedelta(hours=rnd.randrange(0, 48))
        deadline = START + timedelta(days=10)
        rows["assignments"].append(
            {
                "id": aid,
                "tenant": tenant,
                "edition": edition,
                "part": part,
                "part_kind": "experience",
                "assignee_kind": "person",
                "assignee_id": f"p-{i:05d}",
                "unit_id": unit,
                "deadline": deadline,
                "status": "open",
                "created_at": created,
            }
        )
        changes: list[domain.StatusChange] = []
        at = created
        for _ in range(rnd.choice([0, 0, 1, 1, 2, 3, 4])):
            if rnd.random() > 0.3:  # another change at the very same instant, now and then
                at = at + timedelta(hours=rnd.randrange(1, 80))
            fulfilled = not (changes and changes[-1].fulfilled) or rnd.random() < 0.3
            on_time = rnd.choice([True, False, None]) if fulfilled else None
            recorded += 1
            changes.append(domain.StatusChange(at, fulfilled, on_time))
            rows["changes"].append(
                {
                    "assignment_id": aid,
                    "cause_id": str(uuid.UUID(int=rnd.getrandbits(128))),
                    "at": at,
                    "status": "fulfilled" if fulfilled else "open",
                    "fulfilled_at": at if fulfilled else None,
                    "on_time": on_time,
                    "tenant": tenant,
                    "recorded": recorded,
                }
            )
        missed = [deadline] if rnd.random() < 0.3 else []
        for d in missed:
            rows["misses"].append(
                {
                    "assignment_id": aid,
                    "deadline": d,
                    "tenant": tenant,
                    "edition": edition,
                    "part": part,
                    "assignee_id": f"p-{i:05d}",
                    "unit_id": unit,
                    "event_id": str(uuid.uuid4()),
                }
            )
        extended = [created + timedelta(days=rnd.randrange(1, 12))] if rnd.random() < 0.25 else []
        for g in extended:
            rows["extensions"].append(
                {
                    "id": str(uuid.uuid4()),
                    "tenant": tenant,
                    "edition": edition,
                    "assignment_id": aid,
                    "previous_deadline": deadline,
                    "new_deadline": deadline + timedelta(days=5),
                    "reason": "Ốm đau",
                    "approved_by": "p-0001",
                    "granted_at": g,
                }
            )
        af = domain.AssignmentFacts(
            aid, part, f"p-{i:05d}", unit, tuple(changes), tuple(missed), tuple(extended)
        )
        facts.append((created, af))
    return {"rows": rows, "facts": facts}


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_the_databases_standings_are_the_rules_at_every_instant(
    dialect: str, test_servers: Any, tmp_path: Path
) -> None:
    url = database_url(dialect, tmp_path, test_servers, "campaign_standings")
    migrate.upgrade("campaign", url)
    rnd = random.Random(20241001)
    ours = _history(rnd, 400, TENANT, EDITION)
    others = [_history(rnd, 60, TENANT, "2023"), _history(rnd, 60, "hue-stnmt", EDITION)]
    tables = {
        "assignments": models.assignments,
        "changes": models.assignment_changes,
        "misses": models.misses,
        "extensions": models.extensions,
    }

    async def go() -> None:
        engine = create_async_engine(url, poolclass=NullPool)
        try:
            async with engine.begin() as conn:
                for history in [ours, *others]:
                    for name, table in tables.items():
                        if history["rows"][name]:
                            await conn.execute(sa.insert(table), history["rows"][name])
            happened = sorted(
                {c.at for _, f in ours["facts"] for c in f.changes}
                | {m for _, f in ours["facts"] for m in f.missed_at}
                | {created for created, _ in ours["facts"]}
            )
            instants = rnd.sample(happened, 25) + [
                START + timedelta(minutes=rnd.randrange(0, 60 * 24 * 30)) for _ in range(25)
            ]
            async with engine.connect() as conn:
                for at in [START - timedelta(days=1), *instants, START + timedelta(days=365)]:
                    got = sorted(
                        (r.assignee_id, r.part, r.unit_id, r.standing)
                        for r in await conn.execute(
                            standings(), {"tenant": TENANT, "edition": EDITION, "at": at}
                        )
                    )
                    want = sorted(
                        (f.assignee_id, f.part, f.unit_id, domain.standing(f, at))
                        for created, f in ours["facts"]
                        if created <= at
                    )
                    assert got == want, at
            assert {s for *_, s in want} == {"fulfilled", "fulfilled_late", "missed", "extended", "open"}
        finally:
            await engine.dispose()

    asyncio.run(go())
