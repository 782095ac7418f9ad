"""Experience-report intake through group commit (issue 15), on a real SQLite database in the process and on
PostgreSQL.

The writer is paused so that the requests of a test are queued into *one* batch, then let go: each request is
answered for itself (201, 409, 422) after that batch committed, and the batch's receipts are numbered without
gaps. The clock is frozen (rate 0), so "end − 1 µs" is exactly the time a request is queued at."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from prometheus_client import REGISTRY

from services.submissions import domain, models
from services.submissions.app import SPEC
from services.submissions.usecases import receipts
from shared.clock import Clock
from shared.copies import FAR_PAST
from shared.documents import load_directory, load_edition
from shared.errors import BilingualError, DomainError
from shared.events.envelope import Envelope
from shared.group_commit import Overloaded
from shared.idempotency import Stored, request_hash
from shared.problems import STATUS_OF_REFUSAL, Problem, problem_of
from shared.service import Runtime, build_runtime
from shared.settings import ServiceSettings, Settings
from tests.support.system import EDITION, SEED, TENANT, report_body
from tests.support.wait import eventually

DEADLINE = datetime.fromisoformat("2023-10-26T00:00:00+07:00")  # experience part: "chậm nhất ngày 25/10/2023"
OFFICIALS = 60


@pytest.fixture(params=["sqlite", "postgresql"])
async def rt(request, tmp_path: Path, test_servers) -> AsyncIterator[Runtime]:  # type: ignore[no-untyped-def]
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'submissions.db'}"
    else:  # the same batches through ``run_sync`` on the async engine, the counter a row lock
        url = test_servers.create_database("intake_group_commit")
    own = ServiceSettings(name="submissions", database_url=url)
    runtime = build_runtime(SPEC, Settings(data_dir=tmp_path), own)
    runtime.clock = Clock(simulated_at=datetime.fromisoformat("2023-10-20T09:00:00+07:00"), rate=0)
    edition = load_edition(SEED / "edition.yaml")
    template = load_directory(SEED / "directory.yaml").people[0]
    async with runtime.engine.begin() as conn:
        await conn.run_sync(models.metadata.create_all)
        await conn.execute(
            models.copies.editions.insert().values(
                tenant=TENANT,
                edition=EDITION,
                version=1,
                doc=edition.model_dump_json(),
                published_at=runtime.now(),
            )
        )
        await conn.execute(
            models.copies.people.insert(),
            [
                {
                    "tenant": TENANT,
                    "person_id": f"p-g{i:03d}",
                    "effective_from": FAR_PAST,
                    "unit_id": template.unit,
                    "email": f"g{i:03d}@example.vn",
                    "doc": template.model_copy(
                        update={"id": f"p-g{i:03d}", "email": f"g{i:03d}@example.vn"}
                    ).model_dump_json(),
                    "sequence": 1,
                }
                for i in range(OFFICIALS)
            ],
        )
    yield runtime
    await receipts.intake_of(runtime).committer.close()
    await runtime.engine.dispose()


def _request(
    person: str, *, key: str | None = None, body: dict[str, Any] | None = None
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


def _status(outcome: Any) -> tuple[int, str]:
    """What the HTTP edge answers: (status, problem code or receipt number)."""
    if isinstance(outcome, Stored):
        return outcome.status, outcome.body["receipt_number"]
    if isinstance(outcome, DomainError):
        outcome = problem_of(outcome)
    assert isinstance(outcome, Problem), repr(outcome)
    return outcome.status, outcome.code


async def _in_one_batch(rt: Runtime, requests: list[receipts.ReportRequest]) -> list[Any]:
    intake = receipts.intake_of(rt)
    intake.committer.pause()
    tasks = [asyncio.create_task(intake.submit(r)) for r in requests]
    await eventually(lambda: intake.committer.waiting == len(requests), message="all queued")
    intake.committer.resume()
    return await asyncio.gather(*tasks, return_exceptions=True)


async def _rows(rt: Runtime) -> tuple[list[str], int]:
    async with rt.engine.connect() as conn:
        numbers = (
            (
                await conn.execute(
                    sa.select(models.submissions.c.receipt_number).order_by(
                        models.submissions.c.receipt_number
                    )
                )
            )
            .scalars()
            .all()
        )
        events = (
            await conn.execute(
                sa.select(sa.func.count())
                .select_from(models.backbone.outbox)
                .where(models.backbone.outbox.c.event_type == "submission.received")
            )
        ).scalar_one()
    return list(numbers), int(events)


async def test_a_batch_of_50_with_one_duplicate_answers_49_receipts_and_one_409(rt: Runtime) -> None:
    intake = receipts.intake_of(rt)
    first = await intake.submit(_request("p-g000"))
    assert _status(first) == (201, "2023-TN-000001")

    def exported(series: str) -> float:
        return REGISTRY.get_sample_value(series, {"writer": intake.committer.name}) or 0.0

    batches, requests = (
        exported("hoithi_group_commit_batch_size_count"),
        exported("hoithi_group_commit_batch_size_sum"),
    )
    outcomes = await _in_one_batch(rt, [_request(f"p-g{i:03d}") for i in range(50)])  # p-g000 again
    # what an operator reads at /metrics: one more transaction, of 50 requests
    assert exported("hoithi_group_commit_batch_size_count") - batches == 1
    assert exported("hoithi_group_commit_batch_size_sum") - requests == 50

    statuses = [_status(o) for o in outcomes]
    assert statuses[0] == (409, "already_submitted")
    assert all(s == 201 for s, _ in statuses[1:]), statuses
    # one transaction for the 50, numbered without gaps after the first receipt, in the order they queued
    assert intake.committer.stats.sizes[-1] == 50
    assert [n for _, n in statuses[1:]] == [f"2023-TN-{n:06d}" for n in range(2, 51)]
    numbers, events = await _rows(rt)
    assert numbers == [f"2023-TN-{n:06d}" for n in range(1, 51)]
    assert events == 50
    # what the batch wrote is what each caller was answered: the row (its body whole) and its fact
    async with rt.engine.connect() as conn:
        t, o = models.submissions, models.backbone.outbox
        stored = {r.receipt_number: r for r in await conn.execute(sa.select(t))}
        facts = [
            Envelope.model_validate_json(p) for p in (await conn.execute(sa.select(o.c.payload))).scalars()
        ]
    for outcome in outcomes[1:]:
        row = stored[outcome.body["receipt_number"]]
        assert row.id == outcome.body["submission_id"] and row.author_id == outcome.body["author_id"]
        assert row.received_at == datetime.fromisoformat(outcome.body["received_at"])  # the same instant
        assert row.body["procedures"] == _request("p-any").body["procedures"]  # as validated
    assert {(f.subject, f.data["receipt_number"]) for f in facts} == {(r.id, n) for n, r in stored.items()}
    # the refused request's problem names the receipt it already has, in both languages
    refused = outcomes[0]
    assert "2023-TN-000001" in refused.detail and "biên nhận 2023-TN-000001" in refused.detail_vi


async def test_refusals_in_a_batch_are_each_requests_own(rt: Runtime) -> None:
    too_few = {"procedures": report_body()["procedures"][:2]}
    outcomes = await _in_one_batch(
        rt,
        [
            _request("p-g001"),
            _request("p-g002", body=too_few),  # 422: fewer distinct procedures than the part asks
            _request("p-nobody"),  # 403: not in the directory copy
            _request("p-g003"),
            _request("p-g003"),  # the same person twice in one batch: the second is a 409
        ],
    )
    statuses = [_status(o) for o in outcomes]
    assert statuses == [
        (201, "2023-TN-000001"),
        (422, "validation"),
        (403, "not_in_directory"),
        (201, "2023-TN-000002"),
        (409, "already_submitted"),
    ]
    assert isinstance(outcomes[1], BilingualError) and outcomes[1].errors[0]["field"] == "procedures"
    assert (await _rows(rt)) == (["2023-TN-000001", "2023-TN-000002"], 2)


async def test_one_key_retried_within_a_batch_and_after_gets_one_receipt(rt: Runtime) -> None:
    outcomes = await _in_one_batch(
        rt, [_request("p-g004", key="k-1"), _request("p-g004", key="k-1"), _request("p-g005", key="k-1")]
    )
    assert [_status(o) for o in outcomes] == [
        (201, "2023-TN-000001"),
        (201, "2023-TN-000001"),  # the same retry: the same answer, not a 409
        (201, "2023-TN-000002"),  # another person's key is another scope
    ]
    again = await receipts.intake_of(rt).submit(_request("p-g004", key="k-1"))
    assert _status(again) == (201, "2023-TN-000001")
    other_body = _request(
        "p-g004", key="k-1", body=report_body(("1.004227", "1.000494", "1.001234", "2.000123"))
    )
    with pytest.raises(DomainError) as refused:
        await receipts.intake_of(rt).submit(other_body)
    assert STATUS_OF_REFUSAL[refused.value.refusal] == 422 and refused.value.code == "idempotency_key_reused"
    assert (await _rows(rt)) == (["2023-TN-000001", "2023-TN-000002"], 2)


async def test_a_request_queued_before_the_deadline_and_committed_after_it_is_late(rt: Runtime) -> None:
    rt.clock = Clock(simulated_at=DEADLINE - timedelta(microseconds=1), rate=0)
    on_time = await receipts.intake_of(rt).submit(_request("p-g006"))
    assert on_time.body["received_at"] == "2023-10-25T23:59:59.999999+07:00"

    intake = receipts.intake_of(rt)
    intake.committer.pause()
    queued = asyncio.create_task(intake.submit(_request("p-g007")))  # queued at end − 1 µs
    await eventually(lambda: intake.committer.waiting == 1, message="queued")
    rt.clock = Clock(simulated_at=DEADLINE, rate=0)  # the batch takes the receipt lock at the end
    intake.committer.resume()
    with pytest.raises(DomainError) as late:
        await queued
    assert _status(late.value) == (409, "deadline_passed")
    assert "hết ngày 25/10/2023" in late.value.detail_vi
    assert (await _rows(rt)) == (["2023-TN-000001"], 1)  # no row, no event, no number used


async def test_late_and_extended_callers_in_one_batch_leave_the_receipt_numbers_gapless(rt: Runtime) -> None:
    """The batch numbers its receipts when it takes the counter's lock; those refused as late under the lock
    give their numbers back, and a second report of a caller in the batch is refused with the first's."""
    part = domain.experience_part(load_edition(SEED / "edition.yaml"), None).id
    async with rt.engine.begin() as conn:
        await conn.execute(
            models.extensions.insert(),
            [
                {
                    "tenant": TENANT,
                    "edition": EDITION,
                    "part": part,
                    "assignee_id": who,
                    "assignment_id": f"a-{who}",
                    "deadline": DEADLINE + timedelta(days=1),
                    "reason": "Ốm đau",
                    "approved_by": "p-secretary",
                    "sequence": 1,
                }
                for who in ("p-g011", "p-g012")
            ],
        )
    rt.clock = Clock(simulated_at=DEADLINE - timedelta(microseconds=1), rate=0)
    assert _status(await receipts.intake_of(rt).submit(_request("p-g009"))) == (201, "2023-TN-000001")

    rt.clock = Clock(simulated_at=DEADLINE, rate=0)
    outcomes = await _in_one_batch(rt, [_request(w) for w in ("p-g010", "p-g011", "p-g010", "p-g011")])
    assert [_status(o) for o in outcomes] == [
        (409, "deadline_passed"),
        (201, "2023-TN-000002"),
        (409, "deadline_passed"),
        (409, "already_submitted"),
    ]
    assert "2023-TN-000002" in outcomes[3].detail_vi
    assert _status(await receipts.intake_of(rt).submit(_request("p-g012"))) == (201, "2023-TN-000003")
    assert (await _rows(rt)) == (["2023-TN-000001", "2023-TN-000002", "2023-TN-000003"], 3)


async def test_a_writer_connection_the_database_dropped_between_batches_is_replaced(rt: Runtime) -> None:
    """PostgreSQL: the writer holds its connection from batch to batch, unpinged. The database ending it between
    batches (a restart, a failover, an idle timeout) fails the next batch's first statement: that batch is
    decided again on a fresh connection, and its callers get their receipts."""
    if rt.engine.dialect.name != "postgresql":
        pytest.skip("SQLite: the writer's connection is a file handle, not a session the server can end")
    intake = receipts.intake_of(rt)
    assert _status(await intake.submit(_request("p-g020"))) == (201, "2023-TN-000001")
    held = intake.committer._conn
    assert held is not None
    pid = (await held.exec_driver_sql("SELECT pg_backend_pid()")).scalar_one()
    await held.rollback()
    async with rt.engine.connect() as admin:
        assert (await admin.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})).scalar_one()
    outcomes = await _in_one_batch(rt, [_request("p-g021"), _request("p-g022")])
    assert sorted(_status(o) for o in outcomes) == [(201, "2023-TN-000002"), (201, "2023-TN-000003")]
    assert (await _rows(rt)) == (["2023-TN-000001", "2023-TN-000002", "2023-TN-000003"], 3)


async def test_a_batch_committed_though_the_writer_heard_its_connection_fail_answers_its_receipts(
    rt: Runtime,
) -> None:
    """The connection fails *during* COMMIT, after the database made the batch durable (a network cut, a
    server restarting as it answers): the writer cannot know, takes it as an invalidated connection and decides
    the batch again. Each request then finds its own report — not another one of the same person — and is
    answered with that receipt: 201, the number of the commit that took effect, no row or event twice. Only a
    report that really is a second one is refused."""
    intake = receipts.intake_of(rt)
    assert _status(await intake.submit(_request("p-g040"))) == (201, "2023-TN-000001")
    committer = intake.committer
    real = committer._sqlite_transaction if committer._sync is not None else committer._held_transaction
    heard = []

    async def commit_then_lose_the_connection(jobs: Any, batch: Any) -> Any:
        outcomes = await real(jobs, batch)
        if not heard:  # once: the retry commits as usual
            heard.append(len(jobs))
            if committer._conn is not None:  # what the writer does with a connection that failed
                await committer._conn.close()
                committer._conn = None
            raise sa.exc.DBAPIError(
                "COMMIT", None, ConnectionResetError("connection lost"), connection_invalidated=True
            )
        return outcomes

    if committer._sync is not None:
        committer._sqlite_transaction = commit_then_lose_the_connection  # type: ignore[method-assign]
    else:
        committer._held_transaction = commit_then_lose_the_connection  # type: ignore[method-assign]
    outcomes = await _in_one_batch(rt, [_request("p-g041"), _request("p-g042"), _request("p-g040")])
    assert heard == [3]
    assert [_status(o) for o in outcomes] == [
        (201, "2023-TN-000002"),
        (201, "2023-TN-000003"),
        (409, "already_submitted"),
    ]
    assert isinstance(outcomes[0], Stored) and outcomes[0].body["author_id"] == "p-g041"
    # each report once, and its submission.received once
    assert (await _rows(rt)) == (["2023-TN-000001", "2023-TN-000002", "2023-TN-000003"], 3)


async def test_a_full_queue_is_refused_at_once_and_the_queued_are_still_answered(rt: Runtime) -> None:
    intake = receipts.ReportIntake(rt, max_queue=2)
    rt.extra[receipts.KEY] = intake
    intake.committer.pause()
    queued = [asyncio.create_task(intake.submit(_request(f"p-g0{i}0"))) for i in (1, 2)]
    await eventually(lambda: intake.committer.waiting == 2, message="queued")
    with pytest.raises(Overloaded) as full:
        await intake.submit(_request("p-g030"))
    assert full.value.retry_after >= 1
    intake.committer.resume()
    assert sorted(_status(o)[1] for o in await asyncio.gather(*queued)) == [
        "2023-TN-000001",
        "2023-TN-000002",
    ]


async def test_a_caller_who_went_away_is_committed_whole(rt: Runtime) -> None:
    intake = receipts.intake_of(rt)
    intake.committer.pause()
    gone = asyncio.create_task(intake.submit(_request("p-g008")))
    await eventually(lambda: intake.committer.waiting == 1, message="queued")
    gone.cancel()  # the client disconnected while its request waited for the batch
    intake.committer.resume()
    await eventually(lambda: intake.committer.stats.committed == 1, message="batch committed")
    assert (await _rows(rt)) == (["2023-TN-000001"], 1)  # its row and its event, both


async def test_a_batch_waits_for_the_write_lock_another_connection_holds_and_then_commits(
    rt: Runtime,
) -> None:
    """The batch's statements run on the event loop's thread: waiting for SQLite's write lock there, inside
    SQLite, would block the loop — and with it the aiosqlite connection that holds the lock and needs the loop
    to finish its transaction. The writer waits on the loop instead; the holder finishes, then the batch
    commits."""
    if rt.engine.dialect.name != "sqlite":
        pytest.skip(
            "PostgreSQL: row locks, no file write lock; the replicas' test holds the counter's row lock"
        )
    t = models.backbone.sequences
    async with rt.engine.connect() as holder:
        await holder.begin()  # BEGIN IMMEDIATE: the write lock, held across awaits on the loop
        await holder.execute(t.insert().values(subject="held-by-another-writer", last=1))
        waits = _lock_waits()
        submitted = asyncio.create_task(receipts.intake_of(rt).submit(_request("p-g020")))
        # the writer finds the lock held and waits for it, again and again; the loop still runs this poll
        await eventually(lambda: _lock_waits() >= waits + 3, message="the writer never waited for the lock")
        assert not submitted.done()
        await holder.commit()
    answer = await asyncio.wait_for(submitted, 30)
    assert _status(answer) == (201, "2023-TN-000001")
    assert (await _rows(rt)) == (["2023-TN-000001"], 1)
    async with rt.engine.connect() as conn:
        held = await conn.execute(sa.select(t.c.last).where(t.c.subject == "held-by-another-writer"))
        assert held.scalar_one() == 1  # the holder's own write committed too


def _lock_waits() -> float:
    return REGISTRY.get_sample_value("hoithi_sqlite_write_lock_waits_total") or 0.0


async def test_the_batch_read_looks_up_each_caller_and_never_scans_the_directory_or_the_contest(
    rt: Runtime,
) -> None:
    """PostgreSQL: the batch's one read statement finds each caller's directory rows, reports in force and
    stored answers by index, one caller at a time — whatever the planner knows of the tables (none here: never
    analyzed, as after a directory import before autovacuum ran, or where it is off) and in the generic plan
    asyncpg's prepared statement takes from its sixth run. Otherwise every batch reads the whole directory
    and every report of the edition, and intake slows as the contest fills."""
    if rt.engine.dialect.name != "postgresql":
        pytest.skip("SQLite: one statement per read, each an index search (EXPLAIN QUERY PLAN in the module)")
    from sqlalchemy.dialects import postgresql

    t = models.submissions
    async with rt.engine.begin() as conn:
        await conn.execute(
            models.copies.people.insert(),
            [
                {
                    "tenant": TENANT,
                    "person_id": f"p-z{i:04d}",
                    "effective_from": FAR_PAST,
                    "unit_id": "u",
                    "email": f"z{i:04d}@example.vn",
                    "doc": "{}",
                    "sequence": 1,
                }
                for i in range(3000)
            ],
        )
        await conn.execute(
            t.insert(),
            [
                {
                    "id": f"s-{i}",
                    "tenant": TENANT,
                    "edition": EDITION,
                    "part": "experience",
                    "kind": "experience_report",
                    "author_id": f"p-z{i:04d}",
                    "unit_id": "u",
                    "receipt_number": f"2023-TN-{i:06d}",
                    "received_at": rt.now(),
                    "status": "submitted",
                    "revision": 1,
                    "body": {},
                }
                for i in range(3000)
            ],
        )
        statement = await conn.run_sync(lambda c: receipts.intake_of(rt)._sql(c).everything)
    compiled = statement.compile(dialect=postgresql.asyncpg.dialect())
    values = {
        "tenant": TENANT,
        "edition": EDITION,
        "day": "2023-10-20",
        "ids": [f"p-z{i:04d}" for i in range(100, 116)],
        "scopes": ["s"] * 16,
        "keys": [f"k{i}" for i in range(16)],
    }

    def literal(v: Any) -> str:
        if isinstance(v, list):
            return "ARRAY[" + ",".join(literal(x) for x in v) + "]::varchar[]"
        return "'" + str(v).replace("'", "''") + "'"

    arguments = ", ".join(literal(values[name]) for name in compiled.positiontup or [])
    async with rt.engine.connect() as conn:
        await conn.exec_driver_sql(f"PREPARE batch_read AS {compiled.string}")
        for mode in ("force_custom_plan", "force_generic_plan"):
            await conn.exec_driver_sql(f"SET plan_cache_mode = {mode}")
            plan = (
                await conn.exec_driver_sql(f"EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE batch_read({arguments})")
            ).scalar_one()
            plan = plan if isinstance(plan, list) else json.loads(plan)
            scanned: dict[str, int] = {}

            def walk(node: dict[str, Any], scanned: dict[str, int] = scanned, mode: str = mode) -> None:
                table = node.get("Relation Name")
                if table in {"copy_people", "submissions", "idempotency_keys"}:
                    assert node["Node Type"] != "Seq Scan", (mode, table)
                    rows = (node["Actual Rows"] + node.get("Rows Removed by Filter", 0)) * node[
                        "Actual Loops"
                    ]
                    scanned[table] = scanned.get(table, 0) + rows
                for child in node.get("Plans", []):
                    walk(child)

            walk(plan[0]["Plan"])
            # 16 callers: their 16 directory rows and 16 reports, nothing else of the 3,000 each
            assert scanned == {"copy_people": 16, "submissions": 16, "idempotency_keys": 0}, (mode, scanned)
