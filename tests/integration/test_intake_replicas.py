"""Two intake replicas on one database (issue 15): each keeps its own caches of the edition and the callers'
directory entries, keyed by the copy's version (the row's ``sequence``). A person moved by a fact that replica A's
consumer applied is judged by replica B's *next* request on the moved entry, never on the one B cached.

Run on PostgreSQL (replicas sharing the tables, as deployed) and on one SQLite file (two processes' engines).
The clock is frozen (rate 0) inside the experience part's intake window."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from services.submissions import domain, handlers, models
from services.submissions.app import SPEC
from services.submissions.usecases import intake, receipts
from shared.clock import Clock
from shared.copies import FAR_PAST
from shared.documents import Person, load_directory, load_edition
from shared.errors import DomainError
from shared.events.catalogue import CATALOGUE
from shared.events.envelope import make_event
from shared.idempotency import Stored, request_hash
from shared.problems import Problem, problem_of
from shared.service import Runtime, build_runtime
from shared.settings import ServiceSettings, Settings
from tests.support.system import EDITION, SEED, TENANT, report_body
from tests.support.wait import eventually, waiting_on_a_lock

NOW = datetime.fromisoformat("2023-10-20T09:00:00+07:00")
PEOPLE = tuple(f"p-r{i:03d}" for i in range(1, 9))  # p-r009 is added by a test


def _template() -> Person:
    return load_directory(SEED / "directory.yaml").people[0]


def _person(pid: str, **changes: Any) -> Person:
    return _template().model_copy(update={"id": pid, "email": f"{pid}@example.vn", **changes})


def _runtime(tmp: Path, url: str, name: str) -> Runtime:
    own = ServiceSettings(name="submissions", database_url=url)
    rt = build_runtime(SPEC, Settings(data_dir=tmp / name), own)
    rt.clock = Clock(simulated_at=NOW, rate=0)
    return rt


@pytest.fixture(params=["sqlite", "postgresql"])
async def replicas(request, tmp_path: Path, test_servers) -> AsyncIterator[tuple[Runtime, Runtime]]:  # type: ignore[no-untyped-def]
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'submissions.db'}"
    else:
        url = test_servers.create_database("intake_replicas")
    a, b = _runtime(tmp_path, url, "a"), _runtime(tmp_path, url, "b")
    async with a.engine.begin() as conn:
        await conn.run_sync(models.metadata.create_all)
        await conn.execute(
            models.copies.editions.insert().values(
                tenant=TENANT,
                edition=EDITION,
                version=1,
                doc=load_edition(SEED / "edition.yaml").model_dump_json(),
                published_at=a.now(),
            )
        )
        await conn.execute(
            models.copies.people.insert(),
            [
                {
                    "tenant": TENANT,
                    "person_id": pid,
                    "effective_from": FAR_PAST,
                    "unit_id": _person(pid).unit,
                    "email": f"{pid}@example.vn",
                    "doc": _person(pid).model_dump_json(),
                    "sequence": 1,
                }
                for pid in PEOPLE
            ],
        )
    try:
        yield a, b
    finally:
        for rt in (a, b):
            await receipts.intake_of(rt).committer.close()
            await rt.engine.dispose()


def _request(
    person: str, body: dict[str, Any] | None = None, key: str | None = None
) -> receipts.ReportRequest:
    report = domain.ExperienceReportCreate.model_validate(body or report_body())
    dumped = report.model_dump(mode="json")
    return receipts.ReportRequest(
        tenant=TENANT,
        edition=EDITION,
        person_id=person,
        report=report,
        idempotency_key=key,
        digest=request_hash(dumped),
        correlation_id=None,
        body=dumped,
    )


async def _answer(
    rt: Runtime, person: str, body: dict[str, Any] | None = None, key: str | None = None
) -> tuple[int, Any]:
    """(status, receipt or problem code) as the HTTP edge would answer."""
    try:
        out = await receipts.intake_of(rt).submit(_request(person, body, key))
    except (Problem, DomainError) as exc:
        p = problem_of(exc) if isinstance(exc, DomainError) else exc
        return p.status, p.code
    assert isinstance(out, Stored)
    return out.status, out.body


async def _moved_by_a(a: Runtime, person: Person, sequence: int) -> None:
    """Replica A's consumer applies ``directory.person.changed`` (its handler, in its own transaction)."""
    type_ = "directory.person.changed"
    env = make_event(
        type_,
        {"person": person.model_dump(mode="json")},
        source=CATALOGUE[type_].producer,
        tenant=TENANT,
        subject=person.id,
        sequence=sequence,
        time=a.now(),
    )
    handle = handlers.build(a)["facts"][type_]
    async with a.engine.begin() as conn:
        await handle(conn, env)


async def _warm(b: Runtime, person: str) -> None:
    """B reads and caches ``person``'s entry without recording anything: a report with too few procedures is
    refused (422) after the caller's entry was looked up."""
    status, code = await _answer(b, person, {"procedures": report_body()["procedures"][:1]})
    assert (status, code) == (422, "validation")


async def test_a_person_who_left_through_replica_a_is_refused_on_replica_b(
    replicas: tuple[Runtime, Runtime],
) -> None:
    a, b = replicas
    await _warm(b, "p-r001")
    await _moved_by_a(a, _person("p-r001", effective_to=date(2023, 10, 1)), sequence=2)  # left on 01/10/2023

    assert await _answer(b, "p-r001") == (403, "not_in_directory")
    # and A, which applied it, agrees
    assert await _answer(a, "p-r001") == (403, "not_in_directory")


async def test_a_person_moved_to_another_unit_through_replica_a_is_received_in_it_on_replica_b(
    replicas: tuple[Runtime, Runtime],
) -> None:
    a, b = replicas
    old_unit = _person("p-r002").unit
    await _warm(b, "p-r002")
    units = [u.id for u in load_directory(SEED / "directory.yaml").units if u.id != old_unit]
    await _moved_by_a(a, _person("p-r002", unit=units[0]), sequence=2)

    status, receipt = await _answer(b, "p-r002")
    assert status == 201
    assert receipt["unit_id"] == units[0] != old_unit


async def test_a_person_added_through_replica_a_is_accepted_on_replica_b(
    replicas: tuple[Runtime, Runtime],
) -> None:
    a, b = replicas
    assert await _answer(b, "p-r009") == (403, "not_in_directory")
    await _moved_by_a(a, _person("p-r009"), sequence=1)

    status, receipt = await _answer(b, "p-r009")
    assert status == 201 and receipt["author_id"] == "p-r009"
    # receipts stay one counter for both replicas
    status, other = await _answer(a, "p-r003")
    assert status == 201
    assert [receipt["receipt_number"], other["receipt_number"]] == ["2023-TN-000001", "2023-TN-000002"]


async def test_one_retry_sent_to_both_replicas_at_once_gets_one_receipt_and_every_batch_mate_its_own(
    replicas: tuple[Runtime, Runtime],
) -> None:
    """Each batch reads the stored answers and the reports in force before it waits for the receipt counter's
    lock. Here both replicas' batches make those reads while a third connection holds that lock, so both decide
    the same retry (one person, one Idempotency-Key) as new; the second to get the lock finds the first's
    answer on its unique index and decides its batch again: the retry gets the first's receipt, its
    batch-mates theirs, numbers without gaps."""
    a, b = replicas
    if a.engine.dialect.name != "postgresql":
        pytest.skip(
            "SQLite: a batch holds the file's write lock from its first read; there is nothing to race"
        )
    counter = intake.receipt_counter(TENANT, EDITION)
    seq = a.backbone.sequences
    async with a.engine.begin() as conn:
        await conn.execute(seq.insert().values(subject=counter, last=0))
    mates = [["p-r002", "p-r003", "p-r004"], ["p-r005", "p-r006", "p-r007"]]
    async with a.engine.connect() as holder:
        await holder.begin()
        await holder.execute(sa.select(seq.c.last).where(seq.c.subject == counter).with_for_update())
        tasks = [
            [
                asyncio.create_task(_answer(rt, p, key=k))
                for p, k in [("p-r001", "the-same-retry"), *((m, None) for m in others)]
            ]
            for rt, others in zip((a, b), mates, strict=True)
        ]
        writers = [receipts.intake_of(rt).committer for rt in (a, b)]

        async def all_waiting_for_the_counter() -> bool:
            blocked = await waiting_on_a_lock(a.engine)
            busy = sum(w.in_flight for w in writers)
            return all(w.waiting == 0 for w in writers) and busy > 0 and blocked == busy

        await eventually(all_waiting_for_the_counter, message="every batch read and waits for the counter")
        await holder.rollback()
    answers = [await asyncio.gather(*ts) for ts in tasks]

    assert all(status == 201 for replica in answers for status, _ in replica), answers
    first, again = answers[0][0][1], answers[1][0][1]
    assert first == again  # one receipt, answered twice
    numbers = [first["receipt_number"]] + [r["receipt_number"] for replica in answers for _, r in replica[1:]]
    assert sorted(numbers) == [f"2023-TN-{i:06d}" for i in range(1, 8)]
    async with a.engine.connect() as conn:
        t = models.submissions
        rows = (await conn.execute(sa.select(t.c.author_id).where(t.c.author_id == "p-r001"))).all()
    assert len(rows) == 1
