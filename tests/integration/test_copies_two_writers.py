"""Two replicas applying facts about the same person (or union) at once keep the newest one, on PostgreSQL.

Each case: what is stored before; the fact a first writer applies (its transaction stays open); the fact a
second writer applies meanwhile (it has to wait for the first one's row); then the first commits, the second
commits. Whatever the order, the copy ends with the fact of the highest sequence — the one a reader of the
directory must see (a person's current unit and email, a union's secretary).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from shared.copies import Copies, copy_tables
from shared.db import make_engine
from shared.events.envelope import Envelope, make_event
from tests.support.wait import eventually, waiting_on_a_lock

TENANT = "soctrang-stnmt"
AT = datetime(2023, 10, 20, 2, 0, tzinfo=UTC)

# (stored before, first writer's sequence, second writer's sequence); the newest must win every time.
CASES = [
    pytest.param(None, 2, 3, id="new-row-older-first"),
    pytest.param(None, 3, 2, id="new-row-newer-first"),
    pytest.param(1, 3, 2, id="stored-row-newer-first"),
    pytest.param(1, 2, 3, id="stored-row-older-first"),
]


def _fact(type_: str, key: str, record: dict[str, Any], sequence: int) -> Envelope:
    """campaign's fact about one directory record, numbered ``sequence`` for its subject."""
    return make_event(
        type_,
        {key: record},
        source="campaign",
        tenant=TENANT,
        subject=record["id"],
        sequence=sequence,
        time=AT,
    )


def _person(sequence: int) -> Envelope:
    person = {
        "id": "p-0002",
        "name": "Trần Văn Minh",
        "email": f"minh.v{sequence}@example.vn",
        "title": "Chuyên viên",
        "unit": f"u-{sequence}",
    }
    return _fact("directory.person.changed", "person", person, sequence)


def _union(sequence: int) -> Envelope:
    union = {"id": "cd-so", "name": "Chi đoàn Sở", "kind": "youth_union", "secretary": f"p-{sequence:04d}"}
    return _fact("directory.unit.changed", "union", union, sequence)


async def _kept(conn: AsyncConnection, copies: Copies, entity: str) -> tuple[int, str | None]:
    """(the sequence stored, what a reader of the copy sees: the person's unit, the union's secretary)."""
    if entity == "person":
        sequence = await conn.scalar(sa.select(copies.people.c.sequence))
        person = await copies.person(conn, TENANT, "p-0002", AT)
        return int(sequence or 0), person.unit if person else None
    sequence = await conn.scalar(sa.select(copies.unions.c.sequence))
    union = (await copies.unions_of(conn, TENANT)).get("cd-so")
    return int(sequence or 0), union.secretary if union else None


FACTS = {"person": _person, "union": _union}
SEEN = {"person": lambda n: f"u-{n}", "union": lambda n: f"p-{n:04d}"}


@pytest.fixture
async def copies_on_postgres(test_servers: Any) -> AsyncIterator[tuple[AsyncEngine, Copies]]:
    metadata = sa.MetaData()
    copies = copy_tables(metadata)
    engine = make_engine(test_servers.create_database("copies_two_writers"))
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    yield engine, copies
    await engine.dispose()


async def _race(
    engine: AsyncEngine, copies: Copies, stored: Envelope | None, first: Envelope, second: Envelope
) -> None:
    if stored is not None:
        async with engine.begin() as conn:
            await copies.apply(conn, stored)
    async with engine.connect() as one, engine.connect() as two:
        await one.begin()
        await copies.apply(one, first)
        await two.begin()
        late = asyncio.create_task(copies.apply(two, second))
        await eventually(lambda: waiting_on_a_lock(engine), timeout=10, message="the second writer waits")
        assert not late.done()
        await one.commit()
        await asyncio.wait_for(late, timeout=10)
        await two.commit()


@pytest.mark.parametrize("entity", sorted(FACTS))
@pytest.mark.parametrize("stored, first, second", CASES)
async def test_two_writers_keep_the_newest_fact(
    copies_on_postgres: tuple[AsyncEngine, Copies], entity: str, stored: int | None, first: int, second: int
) -> None:
    engine, copies = copies_on_postgres
    fact = FACTS[entity]
    await _race(engine, copies, fact(stored) if stored else None, fact(first), fact(second))
    newest = max(first, second)
    async with engine.connect() as conn:
        assert await _kept(conn, copies, entity) == (newest, SEEN[entity](newest))
