"""On SQLite (the embedded default) a read never waits for the writer, and a writer always takes the lock first.

SQLite has one writer at a time. ``engine.connect()`` must be a reader (a WAL snapshot that neither blocks nor
is blocked by a writer) and ``engine.begin()`` a writer (``BEGIN IMMEDIATE``), or every API read queues behind
a consumer's batch and fails with "database is locked" past the busy timeout.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import sqlalchemy as sa

from shared.db import make_engine, read_off_loop, reading, writing

T = sa.Table("t", sa.MetaData(), sa.Column("n", sa.Integer))


def _count(conn: sa.Connection) -> int:
    return int(conn.execute(sa.select(sa.func.count()).select_from(T)).scalar_one())


async def test_a_read_is_answered_while_a_writer_holds_the_lock(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")
    async with engine.begin() as conn:
        await conn.run_sync(T.metadata.create_all)
        await conn.execute(T.insert().values(n=1))
    try:
        async with engine.begin() as writer:  # holds the write lock until the block ends
            await writer.execute(T.insert().values(n=2))
            for source in (engine, reading(engine)):
                async with source.connect() as reader:
                    # answered at once from the last committed snapshot, not after the writer commits
                    seen = await asyncio.wait_for(
                        reader.execute(sa.select(sa.func.count()).select_from(T)), timeout=5
                    )
                    assert seen.scalar_one() == 1
            # a heavy read, off the loop (a thread's own connection to the file): the same snapshot, at once
            counted = await asyncio.wait_for(read_off_loop(engine, _count), timeout=5)
            assert counted == 1
        assert await read_off_loop(engine, _count) == 2
        async with engine.connect() as reader:
            assert (await reader.execute(sa.select(sa.func.count()).select_from(T))).scalar_one() == 2
    finally:
        await engine.dispose()


async def test_a_second_writer_waits_for_the_first_and_then_sees_its_rows(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")
    async with engine.begin() as conn:
        await conn.run_sync(T.metadata.create_all)
    release = asyncio.Event()
    first_in = asyncio.Event()

    async def first() -> None:
        async with engine.begin() as conn:
            await conn.execute(T.insert().values(n=1))
            first_in.set()
            await release.wait()

    async def second() -> int:
        await first_in.wait()
        async with engine.connect() as conn:
            await writing(conn)  # a connect() connection that will write begins as a writer
            async with conn.begin():
                n = (await conn.execute(sa.select(sa.func.count()).select_from(T))).scalar_one()
                await conn.execute(T.insert().values(n=10 + n))
                return int(n)

    try:
        one = asyncio.create_task(first())
        two = asyncio.create_task(second())
        await first_in.wait()
        done, _ = await asyncio.wait({two}, timeout=0.3)
        assert not done, "the second writer began while the first held the lock"
        release.set()
        await one
        # BEGIN IMMEDIATE waited for the lock, so its read came after the first writer's commit
        assert await asyncio.wait_for(two, timeout=10) == 1
    finally:
        await engine.dispose()
