"""Two intake replicas on one database (issue 15): each keeps its own caches of the edition and the callers'
directory entries, keyed by the copy's version (the row's ``sequence``). A person moved by a fact that replica A's
consumer applied is judged by replica B's *next* request on the moved entry, never on the one B cached.

Run on PostgreSQL (replicas sharing the tables, as deployed) and on one SQLite file (two processes' engines).
The clock is frozen (rate 0) inside the experience part's intake window."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest

from services.submissions import domain, handlers, models
from services.submissions.app import SPEC
from services.submissions.usecases import receipts
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

NOW = datetime.fromisoformat("2023-10-20T09:00:00+07:00")
PEOPLE = ("p-r001", "p-r002", "p-r003")


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


def _request(person: str, body: dict[str, Any] | None = None) -> receipts.ReportRequest:
    report = domain.ExperienceReportCreate.model_validate(body or report_body())
    dumped = report.model_dump(mode="json")
    return receipts.ReportRequest(
        tenant=TENANT,
        edition=EDITION,
        person_id=person,
        report=report,
        idempotency_key=None,
        digest=request_hash(dumped),
        correlation_id=None,
        body=dumped,
    )


async def _answer(rt: Runtime, person: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    """(status, receipt or problem code) as the HTTP edge would answer."""
    try:
        out = await receipts.intake_of(rt).submit(_request(person, body))
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
