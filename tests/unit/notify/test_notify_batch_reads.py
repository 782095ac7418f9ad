"""What a batch of facts reads alike, notify reads once per batch (``queue.BatchReads``): the tenant's webhook
subscriptions, its directory version and the edition — not once per fact — and a directory change the batch
itself applies is seen by its next fact. On SQLite, with the real handlers inside the consumer's batch scope
(``shared.consumer.batch_scope``), no servers."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa

from services.notify import models
from shared.consumer import batch_scope
from shared.documents import load_directory
from shared.events.envelope import Envelope
from shared.service import Runtime
from tests.support.notify import HandlerRun, seeded_notify, vn
from tests.support.system import SEED

AT = vn("2023-10-20T09:00:00")
READ_ONCE = ("notify_webhooks", "notify_directory_versions", "copy_editions")


@contextmanager
def reads_of(rt: Runtime) -> Iterator[dict[str, int]]:
    """How many SELECTs name each table of ``READ_ONCE`` while the block runs."""
    seen = dict.fromkeys(READ_ONCE, 0)

    def count(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().lower().startswith("select"):
            for table in READ_ONCE:
                seen[table] += f" {table}" in statement or f'"{table}"' in statement

    sa.event.listen(rt.engine.sync_engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        sa.event.remove(rt.engine.sync_engine, "before_cursor_execute", count)


async def in_one_batch(run: HandlerRun, *envs: Envelope) -> None:
    """``envs`` applied as the consumer applies a batch: one transaction, one batch scope."""
    async with run.rt.engine.begin() as conn, batch_scope(conn):
        for env in envs:
            await run.handlers[env.type](conn, env)


async def test_a_batch_of_receipts_reads_webhooks_directory_version_and_edition_once(rt: Runtime) -> None:
    run = await seeded_notify(rt)
    people = load_directory(SEED / "directory.yaml").people[:10]
    envs = [run.receipt(i, p.id, p.unit, AT) for i, p in enumerate(people)]
    with reads_of(rt) as seen:
        await in_one_batch(run, *envs)
    assert seen == dict.fromkeys(READ_ONCE, 1)
    d = models.deliveries
    sent_to = {
        r.recipient
        for r in (await _rows(rt, sa.select(d.c.recipient).where(d.c.template == "submission.received")))
    }
    assert sent_to == {p.id for p in people}  # each author's receipt, as when each fact read for itself

    with reads_of(rt) as alone:  # outside a batch scope (the timed loop, tools): read where needed, as before
        await run.apply(
            run.receipt(11, people[0].id, people[0].unit, AT),
            run.receipt(12, people[1].id, people[1].unit, AT),
        )
    assert alone["notify_webhooks"] == 2 and alone["notify_directory_versions"] == 2


async def test_a_person_the_batch_adds_is_found_by_its_next_fact(rt: Runtime) -> None:
    run = await seeded_notify(rt)
    template = load_directory(SEED / "directory.yaml").people[0]
    first = run.receipt(1, template.id, template.unit, AT)  # reads the directory before the newcomer arrives
    newcomer = template.model_copy(
        update={"id": "p-new", "email": "moi.nv@example.vn", "name": "Nguyễn Văn Mới"}
    )
    added = run.event("directory.person.changed", {"person": newcomer}, "p-new", AT, None)
    await in_one_batch(run, first, added, run.receipt(2, "p-new", template.unit, AT))
    d = models.deliveries
    rows = await _rows(rt, sa.select(d.c.to_address).where(d.c.recipient == "p-new"))
    assert [r.to_address for r in rows] == ["moi.nv@example.vn"]


async def _rows(rt: Runtime, query: Any) -> list[Any]:
    async with rt.engine.connect() as conn:
        return list((await conn.execute(query)).all())
