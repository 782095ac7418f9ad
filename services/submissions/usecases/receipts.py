"""Experience-report intake in batches (group commit): the rules of the old per-request intake, with every
statement paid once per batch instead of once per request. The route is ``api/reports.py``'s.

A request is authenticated and its body validated in its own task, then queued to the process's one writer
(``shared.group_commit``). The writer's batch runs, in one transaction:

1. the stored answers of the batch's ``Idempotency-Key``s (one statement);
2. the edition (one indexed ``SELECT max(version)``; the document is parsed again only when it changed), the
   callers' directory rows (one statement for every caller; a parsed ``Person`` is reused while its row's
   ``sequence`` is the same), their extensions and the tenant's procedure catalogue (one statement each) — so a
   change another replica's consumer applied is seen by the next batch;
3. the callers' reports already in force (one statement for the batch: one report per person and part);
4. the receipt counter's lock (``UPDATE … RETURNING``, the same lock as ``intake.lock_intake``), then the
   clock: **the time of record of every receipt of the batch**, read under that lock, and checked against each
   caller's deadline in force. A request queued before the deadline whose batch takes the lock after it is
   refused as late (409), exactly as a request that reached the lock late one by one was: ``intake.closed``
   takes the same lock before reading the clock, so it counts every receipt that can ever be on time;
5. one report per person within the batch;
6. the rows, their ``event_sequences``, their outbox events and idempotency answers, each one ``executemany``;
   then the counter moved past the numbers given (gapless: only receipts that will commit are numbered).

A request refused at any step answers its own 404/403/409/422; its batch-mates are not affected.

On PostgreSQL only steps 4–6 hold the counter's lock. The reads of steps 1 and 3 are made before it: a report
or an answer another replica's writer commits meanwhile makes this batch's insert fail on its unique index
(``uq_report_author``, the idempotency key), and the batch is decided again (``retry_if``), seeing it — its
batch-mates are not refused for it. On SQLite the whole batch holds the file's write lock from its first
statement.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
import sqlalchemy as sa

from services.submissions import domain, models
from services.submissions.usecases import intake
from shared import pacing, tracing
from shared.clock import VN, Clock
from shared.copies import FAR_PAST
from shared.db import is_unique_violation, upsert
from shared.documents import Edition, ExperienceReportPart, Person, format_datetime_vn
from shared.errors import BilingualError, DomainError, Refusal
from shared.events.envelope import make_event, new_event_id
from shared.group_commit import Batch, GroupCommitter, Slot
from shared.idempotency import MAX_KEY_LENGTH, Stored, key_reused, key_too_long
from shared.service import Runtime

log = logging.getLogger("hoithi.submissions.receipts")

KEY = "experience-reports"
MAX_BATCH = 256
MAX_QUEUE = 4096


@dataclass
class ReportRequest:
    """One request, authenticated and validated as a body, waiting for its batch."""

    tenant: str
    edition: str
    person_id: str
    report: domain.ExperienceReportCreate
    idempotency_key: str | None
    digest: str
    correlation_id: str | None
    body: dict[str, Any] = field(default_factory=dict)  # report.model_dump(mode="json")
    slot: Slot = field(default_factory=Slot)
    trace: dict[str, str] = field(default_factory=tracing.carrier)  # the request's, for its receipt's fact

    @property
    def scope(self) -> str:
        return f"{self.tenant}|{self.person_id}|experience-reports|{self.edition}"


class _Statements:
    """The batch's statements, built once per process with bound parameters: building a statement and its cache
    key anew per batch cost more of a small batch's time than running it (a profile of PostgreSQL batches: ~half
    of the batch's CPU in SQLAlchemy constructing and keying its selects)."""

    def __init__(self, rt: Runtime, conn: sa.Connection) -> None:
        dialect, p = conn.dialect.name, sa.bindparam
        tenant, edition = p("tenant"), p("edition")
        i = rt.idempotency.table
        self.answers = sa.select(i.c.scope, i.c.key, i.c.request_hash, i.c.status, i.c.body).where(
            sa.tuple_(i.c.scope, i.c.key).in_(p("pairs", expanding=True))
        )
        e = rt_copies(rt).editions
        self.edition_version = sa.select(sa.func.max(e.c.version)).where(
            e.c.tenant == tenant, e.c.edition == edition
        )
        self.edition_doc = sa.select(e.c.doc).where(
            e.c.tenant == tenant, e.c.edition == edition, e.c.version == p("version")
        )
        people = rt_copies(rt).people
        self.people = (
            sa.select(people.c.person_id, people.c.effective_from, people.c.sequence, people.c.doc)
            .where(
                people.c.tenant == tenant,
                people.c.person_id.in_(p("ids", expanding=True)),
                people.c.effective_from <= p("day"),
            )
            .order_by(people.c.person_id, people.c.effective_from.desc())
        )
        x = models.extensions
        self.extensions = sa.select(x.c.part, x.c.assignee_id, x.c.deadline).where(
            x.c.tenant == tenant, x.c.edition == edition, x.c.assignee_id.in_(p("ids", expanding=True))
        )
        self.catalogues = intake.catalogues_of(tenant)  # the one-request path's select, bound once
        t = models.submissions
        self.in_force = sa.select(t.c.part, t.c.author_id, t.c.receipt_number).where(
            t.c.tenant == tenant,
            t.c.edition == edition,
            t.c.kind == "experience_report",
            t.c.author_id.in_(p("ids", expanding=True)),
            t.c.status != "withdrawn",  # a withdrawn report leaves room for a new one
        )
        q = rt.backbone.sequences
        lock = upsert(conn, q, {"subject": p("counter"), "last": 0}, set_={"last": q.c.last})
        # PostgreSQL: the database's clock, read under the row lock (see ``_lock_counter``)
        self.lock = (
            lock.returning(q.c.last, sa.func.clock_timestamp())
            if dialect == "postgresql"
            else lock.returning(q.c.last)
        )
        self.advance = sa.update(q).where(q.c.subject == p("counter")).values(last=p("moved_to"))
        self.insert_reports = t.insert()
        self.insert_sequences = q.insert()
        self.insert_events = rt.backbone.outbox.insert()
        self.insert_answers = i.insert()


@dataclass
class _Item:
    req: ReportRequest
    person: Person
    part: ExperienceReportPart
    extended: datetime | None
    codes: list[str]


class ReportIntake:
    """The process's experience-report writer, its caches, and the batch finisher."""

    def __init__(self, rt: Runtime, *, max_batch: int = MAX_BATCH, max_queue: int = MAX_QUEUE) -> None:
        self.rt = rt
        self.committer = GroupCommitter(
            rt.engine,
            max_batch=max_batch,
            max_queue=max_queue,
            retry_if=is_unique_violation,
            name=f"{rt.name}-intake-writer",
        )
        self._editions: dict[tuple[str, str], tuple[int, Edition]] = {}
        self._statements: _Statements | None = None
        self._people: dict[tuple[str, str, Any, int], Person] = {}

    async def submit(self, req: ReportRequest) -> Stored:
        """The answer to one request (201 with its receipt, or the stored answer of its key), after commit."""

        def stage(conn: sa.Connection, batch: Batch) -> Slot:
            req.slot = Slot()  # a fresh answer per attempt: a batch retried after contention decides again
            batch.at_end(KEY, self._finish, req)
            return req.slot

        result: Stored = await self.committer.submit(stage, savepoint=False)  # it only stages
        if self.rt.outbox.on_commit and result.status == 201:
            self.rt.outbox.committed()
        return result

    async def aclose(self) -> None:
        """At shutdown (``shared.service``): the batch in flight ends whole, then the writer stops."""
        await self.committer.close()

    # ------------------------------------------------------------------ the batch
    def _sql(self, conn: sa.Connection) -> _Statements:
        if self._statements is None:
            self._statements = _Statements(self.rt, conn)
        return self._statements

    def _finish(self, conn: sa.Connection, batch: Batch) -> None:
        groups: dict[tuple[str, str], list[ReportRequest]] = defaultdict(list)
        for req in batch.staged(KEY):
            groups[(req.tenant, req.edition)].append(req)
        for (tenant, edition), reqs in groups.items():
            self._finish_edition(conn, tenant, edition, reqs)

    def _finish_edition(
        self, conn: sa.Connection, tenant: str, edition: str, reqs: list[ReportRequest]
    ) -> None:
        followers: list[tuple[ReportRequest, ReportRequest]] = []
        try:
            self._decide(conn, tenant, edition, self._answered_before(conn, reqs, followers))
        finally:
            for r, first in followers:
                if first.slot.error is not None:
                    r.slot.refuse(first.slot.error)
                elif first.slot.settled:
                    r.slot.set(first.slot.value)

    def _decide(self, conn: sa.Connection, tenant: str, edition: str, todo: list[ReportRequest]) -> None:
        rt = self.rt
        if not todo:
            return
        ed = self._edition(conn, tenant, edition)
        if ed is None:
            for r in todo:
                r.slot.refuse(
                    DomainError(
                        Refusal.NOT_FOUND,
                        f"No edition {edition!r} for {tenant!r}.",
                        f"Không có kỳ hội thi {edition!r}.",
                        code="no_edition",
                    )
                )
            return
        early = rt.now()
        people = self._people_of(conn, tenant, {r.person_id for r in todo}, early)
        extensions = self._extensions(conn, tenant, edition, {r.person_id for r in todo})
        known = intake.known_of(conn.execute(self._sql(conn).catalogues, {"tenant": tenant}).scalars())
        items: list[_Item] = []
        for r in todo:
            person = people.get(r.person_id)
            if person is None:
                r.slot.refuse(
                    DomainError(
                        Refusal.FORBIDDEN,
                        "You are not in this tenant's directory (as of today).",
                        "Bạn không có trong danh bạ của đơn vị (tại thời điểm hiện tại).",
                        code="not_in_directory",
                    )
                )
                continue
            try:
                part = domain.experience_part(ed, r.report.part)
                extended = extensions.get((part.id, r.person_id))
                domain.check_intake_open(ed, part, early, extended)
                codes = domain.check_report(r.report, part, early.astimezone(VN).date())
                domain.check_catalogue(codes, known)
            except BilingualError as exc:
                r.slot.refuse(exc)
                continue
            items.append(_Item(r, person, part, extended, codes))
        if not items:
            return
        existing = self._in_force(conn, tenant, edition, items)
        # The receipt counter's lock, then the clock: the time of record of the whole batch (see intake.py).
        n0, now = self._lock_counter(conn, tenant, edition)
        on_time: list[_Item] = []
        for it in items:
            try:
                domain.check_intake_open(ed, it.part, now, it.extended)
            except BilingualError as exc:
                it.req.slot.refuse(exc)
                continue
            on_time.append(it)
        accepted = self._one_per_person(edition, on_time, existing, n0)
        if not accepted:
            return
        self._record(conn, tenant, edition, accepted, n0, now)

    def _answered_before(
        self,
        conn: sa.Connection,
        reqs: list[ReportRequest],
        followers: list[tuple[ReportRequest, ReportRequest]],
    ) -> list[ReportRequest]:
        """Settle the requests whose key already has an answer (stored, or earlier in this batch); return the
        rest. The same key with another body is a 422, as ``Idempotency.lookup`` says."""
        keyed = [r for r in reqs if r.idempotency_key]
        for r in keyed:
            if len(r.idempotency_key or "") > MAX_KEY_LENGTH:
                r.slot.refuse(key_too_long())
        stored: dict[tuple[str, str], Any] = {}
        wanted = [(r.scope, r.idempotency_key) for r in keyed if not r.slot.settled]
        if wanted:
            rows = conn.execute(self._sql(conn).answers, {"pairs": wanted})
            stored = {(row.scope, row.key): row for row in rows}
        leaders: dict[tuple[str, str], ReportRequest] = {}
        todo = []
        for r in reqs:
            if r.slot.settled:
                continue
            if r.idempotency_key:
                k = (r.scope, r.idempotency_key)
                row = stored.get(k)
                first = leaders.get(k)
                digest = row.request_hash if row is not None else (first.digest if first else r.digest)
                if digest != r.digest:
                    r.slot.refuse(key_reused())
                    continue
                if row is not None:
                    r.slot.set(Stored(row.status, orjson.loads(row.body)))
                    continue
                if first is not None:
                    # the same retry twice in one batch: it gets whatever its first copy gets
                    followers.append((r, first))
                    continue
                leaders[k] = r
            todo.append(r)
        return todo

    def _edition(self, conn: sa.Connection, tenant: str, edition: str) -> Edition | None:
        sql, keys = self._sql(conn), {"tenant": tenant, "edition": edition}
        version = conn.execute(sql.edition_version, keys).scalar()
        if version is None:
            return None
        cached = self._editions.get((tenant, edition))
        if cached is not None and cached[0] == version:
            return cached[1]
        doc = conn.execute(sql.edition_doc, {**keys, "version": version}).scalar_one()
        ed = Edition.model_validate_json(doc)
        self._editions[(tenant, edition)] = (version, ed)
        return ed

    def _people_of(self, conn: sa.Connection, tenant: str, ids: set[str], at: datetime) -> dict[str, Person]:
        """Each caller's directory row in force on the Vietnamese date of ``at`` (as ``Copies.person``), in one
        statement; a row is parsed again only when its ``sequence`` changed."""
        day = at.astimezone(VN).date()
        rows = conn.execute(self._sql(conn).people, {"tenant": tenant, "ids": sorted(ids), "day": day})
        out: dict[str, Person] = {}
        seen: set[str] = set()
        if len(self._people) > 200_000:
            self._people.clear()
        for pid, since, seq, doc in rows:
            if pid in seen:
                continue
            seen.add(pid)
            key = (tenant, pid, since or FAR_PAST, seq)
            p = self._people.get(key)
            if p is None:
                p = self._people[key] = Person.model_validate_json(doc)
            if p.effective_to is None or p.effective_to >= day:
                out[pid] = p
        return out

    def _extensions(
        self, conn: sa.Connection, tenant: str, edition: str, ids: set[str]
    ) -> dict[tuple[str, str], datetime]:
        rows = conn.execute(
            self._sql(conn).extensions, {"tenant": tenant, "edition": edition, "ids": sorted(ids)}
        )
        return {(part, who): deadline for part, who, deadline in rows}

    def _lock_counter(self, conn: sa.Connection, tenant: str, edition: str) -> tuple[int, datetime]:
        """Take the receipt counter's row lock and read it (``intake.lock_intake``'s lock), and the time of
        record under it. On PostgreSQL that time is the database's ``clock_timestamp()`` in the same statement
        (``RETURNING`` is evaluated once the row lock is held), so replicas with skewed clocks agree on it;
        on SQLite (one file, one process's clock) it is the service's clock read after the statement."""
        row = conn.execute(self._sql(conn).lock, {"counter": intake.receipt_counter(tenant, edition)}).one()
        if conn.dialect.name == "postgresql":
            return int(row[0]), time_of_record(self.rt.clock, row[1])
        return int(row[0]), self.rt.now()

    def _in_force(
        self, conn: sa.Connection, tenant: str, edition: str, items: list[_Item]
    ) -> dict[tuple[str, str], str]:
        """The callers' reports in force: (part, person) → receipt number."""
        ids = sorted({it.req.person_id for it in items})
        rows = conn.execute(self._sql(conn).in_force, {"tenant": tenant, "edition": edition, "ids": ids})
        return {(part, who): number for part, who, number in rows}

    @staticmethod
    def _one_per_person(
        edition: str, items: list[_Item], existing: dict[tuple[str, str], str], n0: int
    ) -> list[_Item]:
        """One report per person and part: refuse those already in force, and a second one in the batch."""
        accepted = []
        for it in items:
            k = (it.part.id, it.req.person_id)
            number = existing.get(k)
            if number is not None:
                it.req.slot.refuse(
                    DomainError(
                        Refusal.CONFLICT,
                        f"You already submitted a report for this part (receipt {number}); revise it instead.",
                        f"Bạn đã nộp báo cáo cho phần thi này (biên nhận {number}); hãy chỉnh sửa báo cáo "
                        "đã nộp.",
                        code="already_submitted",
                    )
                )
                continue
            accepted.append(it)
            existing[k] = domain.receipt_number(edition, n0 + len(accepted))  # the number it is about to get
        return accepted

    def _record(
        self, conn: sa.Connection, tenant: str, edition: str, items: list[_Item], n0: int, now: datetime
    ) -> None:
        rt = self.rt
        rows, sequences, events, answers = [], [], [], []
        for i, it in enumerate(items, start=1):
            req, person = it.req, it.person
            sid = new_event_id()
            row = {
                "id": sid,
                "tenant": tenant,
                "edition": edition,
                "part": it.part.id,
                "kind": "experience_report",
                "author_id": person.id,
                "unit_id": person.unit,
                "receipt_number": domain.receipt_number(edition, n0 + i),
                "received_at": now,
                "status": "submitted",
                "revision": 1,
                "body": {**req.body, "national_codes": it.codes, "unions": person.unions},
            }
            rows.append(row)
            sequences.append({"subject": sid, "last": 1})
            events.append(
                make_event(
                    "submission.received",
                    {
                        "submission_id": sid,
                        "kind": "experience_report",
                        "part": it.part.id,
                        "receipt_number": row["receipt_number"],
                        "received_at": now.astimezone(VN),
                        "author_id": person.id,
                        "unit_id": person.unit,
                        "union_ids": person.unions,
                        "authors": [{"person_id": person.id, "name": person.name, "share": 100}],
                        "title": it.part.title,
                        "procedures": it.codes,
                        "revision": 1,
                    },
                    source=rt.name,
                    tenant=tenant,
                    subject=sid,
                    sequence=1,
                    time=now,
                    edition=edition,
                    correlation_id=req.correlation_id,
                    trace=req.trace,
                )
            )
            receipt = receipt_of(row)
            if req.idempotency_key:
                answers.append(
                    {
                        "scope": req.scope,
                        "key": req.idempotency_key,
                        "request_hash": req.digest,
                        "status": 201,
                        "body": _json(receipt),
                        "created_at": now,
                    }
                )
            req.slot.set(Stored(201, receipt))
        sql = self._sql(conn)
        conn.execute(sql.insert_reports, rows)
        conn.execute(sql.insert_sequences, sequences)
        conn.execute(sql.insert_events, rt.outbox.rows(events))
        if answers:
            conn.execute(sql.insert_answers, answers)
        conn.execute(
            sql.advance, {"counter": intake.receipt_counter(tenant, edition), "moved_to": n0 + len(items)}
        )


def rt_copies(rt: Runtime) -> Any:
    assert rt.copies is not None
    return rt.copies


def _json(body: Any) -> bytes:
    return orjson.dumps(body, default=str)


def time_of_record(clock: Clock, real: datetime) -> datetime:
    """``real`` (the database's clock) on the deployment's clock: itself, or — with a simulated clock (demo,
    tests) — the simulated instant it corresponds to (same anchor and rate as ``Clock.now``)."""
    clock.now()  # follows the clock file, if any
    if clock.simulated_at is None:
        return real.astimezone(UTC)
    return (clock.simulated_at + (real.astimezone(UTC) - clock.real_at) * clock.rate).astimezone(UTC)


def receipt_of(row: Any) -> dict[str, Any]:
    """The receipt a person reads: number, time of record (+07:00 and dd/mm/yyyy), whose, which part."""
    body = row["body"]
    return {
        "submission_id": row["id"],
        "receipt_number": row["receipt_number"],
        "received_at": row["received_at"].astimezone(VN).isoformat(),
        "received_at_display": format_datetime_vn(row["received_at"]),
        "tenant": row["tenant"],
        "edition": row["edition"],
        "part": row["part"],
        "kind": row["kind"],
        "author_id": row["author_id"],
        "unit_id": row["unit_id"],
        "status": row["status"],
        "revision": row["revision"],
        "procedures": body.get("national_codes", []),
    }


def intake_of(rt: Runtime) -> ReportIntake:
    """The process's one experience-report writer (made on first use)."""
    found = rt.extra.get(KEY)
    if found is None:
        found = rt.extra[KEY] = ReportIntake(rt)
    return found  # type: ignore[no-any-return]


async def pressure_job(rt: Runtime) -> None:
    """Background: tell the deployment's consumers when intake is in a rush, so they yield (``shared.pacing``)."""

    def activity() -> int:
        found: ReportIntake | None = rt.extra.get(KEY)
        return 0 if found is None else found.committer.stats.committed + found.committer.waiting

    await pacing.signal_while_busy(rt.nc, rt.settings, rt.name, activity)
