"""Experience-report intake in batches (group commit): the rules of the old per-request intake, with every
statement paid once per batch instead of once per request. The route is ``api/reports.py``'s.

A request is authenticated and its body validated in its own task, then queued to the process's one writer
(``shared.group_commit``). The writer's batch runs, in one transaction:

1. its reads (``_read``): the stored answers of the batch's ``Idempotency-Key``s; the edition's latest version
   (the document is read and parsed again only when it changed); the callers' directory rows (a parsed
   ``Person`` is reused while its row's ``sequence`` is the same), their extensions and the tenant's procedure
   catalogue — so a change another replica's consumer applied is seen by the next batch; and the callers'
   reports already in force. On PostgreSQL that is **one statement** of ``json_agg`` subqueries whose text
   does not depend on the batch's size (``= ANY`` of arrays), so it is prepared once per connection: under a
   rush every round trip waits for the database's backend and then for the writer to be scheduled again. On
   SQLite (in-process, no round trips) the same reads are one statement each;
2. each request's checks (deadline in force, the report, the catalogue) and one report per person and part:
   those already in force are refused, and a second one in the batch waits for its first's number;
3. the receipt counter's lock (an upsert ``… RETURNING``, the same lock as ``intake.lock_intake``), which
   moves the counter past the batch's candidates at once, then the clock: **the time of record of every
   receipt of the batch**, read under that lock, and checked against each caller's deadline in force. A
   request queued before the deadline whose batch takes the lock after it is refused as late (409), exactly as
   a request that reached the lock late one by one was: ``intake.closed`` takes the same lock before reading
   the clock, so it counts every receipt that can ever be on time. The numbers of those refused as late are
   given back (one more ``UPDATE``, at a deadline only), so receipt numbers stay gapless;
4. the rows, their ``event_sequences``, their outbox events and idempotency answers, each one ``executemany``.

A request refused at any step answers its own 404/403/409/422; its batch-mates are not affected.

On PostgreSQL only steps 3–4 hold the counter's lock; the reads are made before it. A report or an answer
another replica's writer commits meanwhile makes this batch's insert fail on its unique index
(``uq_report_author``, the idempotency key), and the batch is decided again (``retry_if``), seeing it — its
batch-mates are not refused for it. On SQLite the whole batch holds the file's write lock from its first
statement.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, aggregate_order_by

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
    # The report's id, fixed for the request's life: an attempt whose COMMIT took effect though the writer heard
    # the connection fail (a server restart, a network cut mid-COMMIT) is found again by it when the batch is
    # decided again — and answered with its receipt, not refused as a second report of the same person.
    submission_id: str = field(default_factory=new_event_id)
    slot: Slot = field(default_factory=Slot)
    trace: dict[str, str] = field(default_factory=tracing.carrier)  # the request's, for its receipt's fact

    @property
    def scope(self) -> str:
        return f"{self.tenant}|{self.person_id}|experience-reports|{self.edition}"


def _reports_in_force(t: sa.Table) -> tuple[Any, ...]:
    """Experience reports not withdrawn (a withdrawn one leaves room for a new one): ``ix_reports_in_force``'s
    own predicate, as literals. With bound parameters instead, PostgreSQL's generic plan of the prepared
    statement (asyncpg's, from the sixth run) cannot prove the partial index applies and scans every report
    of the edition."""
    return (
        t.c.kind == sa.literal_column("'experience_report'"),
        t.c.status != sa.literal_column("'withdrawn'"),
    )


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
        self.in_force = sa.select(t.c.part, t.c.author_id, t.c.receipt_number, t.c.id).where(
            t.c.tenant == tenant,
            t.c.edition == edition,
            t.c.author_id.in_(p("ids", expanding=True)),
            *_reports_in_force(t),
        )
        q = rt.backbone.sequences
        # The lock numbers the batch at once: ``last`` moves past the ``n`` receipts the batch means to give; a
        # receipt refused as late under the lock moves it back (``advance``), so the numbers stay gapless.
        lock = upsert(conn, q, {"subject": p("counter"), "last": p("n")}, set_={"last": q.c.last + p("n")})
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
        self.everything = _read_in_one(rt, self) if dialect == "postgresql" else None
        self.write_in_one = (
            _write_in_one(conn, (t, ROW), (q, SEQUENCE), (i, ANSWER), (rt.backbone.outbox, EVENT))
            if dialect == "postgresql"
            else None
        )


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
            early = self.rt.now()
            read = self._read(conn, tenant, edition, reqs, early)
            self._decide(conn, tenant, edition, self._answered_before(reqs, followers, read), read, early)
        finally:
            for r, first in followers:
                if first.slot.error is not None:
                    r.slot.refuse(first.slot.error)
                elif first.slot.settled:
                    r.slot.set(first.slot.value)

    def _read(
        self, conn: sa.Connection, tenant: str, edition: str, reqs: list[ReportRequest], early: datetime
    ) -> _Read:
        """Everything the batch reads before the counter's lock: one statement on PostgreSQL (each round trip
        under a rush waits for the database's backend and then the writer to be scheduled again), the same
        statements one by one on SQLite (in-process, where a statement costs no round trip)."""
        sql = self._sql(conn)
        pairs = sorted({(r.scope, r.idempotency_key) for r in reqs if r.idempotency_key})
        ids = sorted({r.person_id for r in reqs})
        keys = {"tenant": tenant, "edition": edition}
        day = early.astimezone(VN).date()
        if sql.everything is not None:
            row = conn.execute(
                sql.everything,
                {
                    **keys,
                    "ids": ids,
                    "day": day,
                    "scopes": [s for s, _ in pairs],
                    "keys": [k for _, k in pairs],
                },
            ).one()
            return _Read(
                answers={
                    (scope, key): (digest, status, _bytea(body))
                    for scope, key, digest, status, body in _json_rows(row.answers)
                },
                version=row.version,
                people=[
                    (pid, date.fromisoformat(d), seq, doc) for pid, d, seq, doc in _json_rows(row.people)
                ],
                extensions={
                    (part, who): datetime.fromisoformat(at).astimezone(UTC)
                    for part, who, at in _json_rows(row.extensions)
                },
                known=intake.known_of(_json_rows(row.catalogues)),
                in_force={(part, who): (n, sid) for part, who, n, sid in _json_rows(row.in_force)},
            )
        answers = {}
        if pairs:
            answers = {
                (r.scope, r.key): (r.request_hash, r.status, r.body)
                for r in conn.execute(sql.answers, {"pairs": pairs})
            }
        return _Read(
            answers=answers,
            version=conn.execute(sql.edition_version, keys).scalar(),
            people=[tuple(r) for r in conn.execute(sql.people, {"tenant": tenant, "ids": ids, "day": day})],
            extensions={
                (part, who): at for part, who, at in conn.execute(sql.extensions, {**keys, "ids": ids})
            },
            known=intake.known_of(conn.execute(sql.catalogues, {"tenant": tenant}).scalars()),
            in_force={
                (part, who): (n, sid)
                for part, who, n, sid in conn.execute(sql.in_force, {**keys, "ids": ids})
            },
        )

    def _decide(
        self,
        conn: sa.Connection,
        tenant: str,
        edition: str,
        todo: list[ReportRequest],
        read: _Read,
        early: datetime,
    ) -> None:
        if not todo:
            return
        ed = self._edition(conn, tenant, edition, read.version)
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
        people = self._people_of(tenant, read.people, early)
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
                extended = read.extensions.get((part.id, r.person_id))
                domain.check_intake_open(ed, part, early, extended)
                codes = domain.check_report(r.report, part, early.astimezone(VN).date())
                domain.check_catalogue(codes, read.known)
            except BilingualError as exc:
                r.slot.refuse(exc)
                continue
            items.append(_Item(r, person, part, extended, codes))
        firsts, seconds = self._one_per_person(conn, items, read.in_force)
        if not firsts:
            return
        # The receipt counter's lock, then the clock: the time of record of the whole batch (see intake.py).
        n0, now = self._lock_counter(conn, tenant, edition, len(firsts))
        accepted: list[_Item] = []
        for it in firsts:
            try:
                domain.check_intake_open(ed, it.part, now, it.extended)
            except BilingualError as exc:
                it.req.slot.refuse(exc)
                continue
            accepted.append(it)
        if len(accepted) < len(firsts):  # refused as late under the lock: their numbers are given back
            counter = intake.receipt_counter(tenant, edition)
            conn.execute(self._sql(conn).advance, {"counter": counter, "moved_to": n0 + len(accepted)})
        numbers = {id(it): domain.receipt_number(edition, n0 + i) for i, it in enumerate(accepted, start=1)}
        for it, first in seconds:
            number = numbers.get(id(first))
            if number is None:  # the first was late, and so is its second (same part, person and deadline)
                it.req.slot.refuse(first.req.slot.error or RuntimeError("unsettled"))
            else:
                it.req.slot.refuse(_already_submitted(number))
        if accepted:
            self._record(conn, tenant, edition, accepted, n0, now)

    def _answered_before(
        self,
        reqs: list[ReportRequest],
        followers: list[tuple[ReportRequest, ReportRequest]],
        read: _Read,
    ) -> list[ReportRequest]:
        """Settle the requests whose key already has an answer (stored, or earlier in this batch); return the
        rest. The same key with another body is a 422, as ``Idempotency.lookup`` says."""
        for r in reqs:
            if r.idempotency_key and len(r.idempotency_key) > MAX_KEY_LENGTH:
                r.slot.refuse(key_too_long())
        leaders: dict[tuple[str, str], ReportRequest] = {}
        todo = []
        for r in reqs:
            if r.slot.settled:
                continue
            if r.idempotency_key:
                k = (r.scope, r.idempotency_key)
                stored = read.answers.get(k)
                first = leaders.get(k)
                digest = stored[0] if stored is not None else (first.digest if first else r.digest)
                if digest != r.digest:
                    r.slot.refuse(key_reused())
                    continue
                if stored is not None:
                    r.slot.set(Stored(stored[1], orjson.loads(stored[2])))
                    continue
                if first is not None:
                    # the same retry twice in one batch: it gets whatever its first copy gets
                    followers.append((r, first))
                    continue
                leaders[k] = r
            todo.append(r)
        return todo

    def _edition(self, conn: sa.Connection, tenant: str, edition: str, version: int | None) -> Edition | None:
        """The edition at ``version`` (the latest, read with the batch): parsed again only when it changed."""
        if version is None:
            return None
        cached = self._editions.get((tenant, edition))
        if cached is not None and cached[0] == version:
            return cached[1]
        keys = {"tenant": tenant, "edition": edition, "version": version}
        ed = Edition.model_validate_json(conn.execute(self._sql(conn).edition_doc, keys).scalar_one())
        self._editions[(tenant, edition)] = (version, ed)
        return ed

    def _people_of(self, tenant: str, rows: list[tuple[Any, ...]], at: datetime) -> dict[str, Person]:
        """Each caller's directory row in force on the Vietnamese date of ``at`` (as ``Copies.person``; ``rows``
        newest first per person); a row is parsed again only when its ``sequence`` changed."""
        day = at.astimezone(VN).date()
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

    def _lock_counter(self, conn: sa.Connection, tenant: str, edition: str, n: int) -> tuple[int, datetime]:
        """Take the receipt counter's row lock (``intake.lock_intake``'s lock), moving it past ``n`` numbers, and
        read the time of record under it; return the number before them and that time. On PostgreSQL the time
        is the database's ``clock_timestamp()`` in the same statement (``RETURNING`` is evaluated once the row
        lock is held), so replicas with skewed clocks agree on it; on SQLite (one file, one process's clock)
        it is the service's clock read after the statement."""
        counter = intake.receipt_counter(tenant, edition)
        row = conn.execute(self._sql(conn).lock, {"counter": counter, "n": n}).one()
        n0 = int(row[0]) - n
        if conn.dialect.name == "postgresql":
            return n0, time_of_record(self.rt.clock, row[1])
        return n0, self.rt.now()

    def _one_per_person(
        self, conn: sa.Connection, items: list[_Item], existing: dict[tuple[str, str], tuple[str, str]]
    ) -> tuple[list[_Item], list[tuple[_Item, _Item]]]:
        """One report per person and part: refuse those already in force — unless it is the request's own,
        committed by an attempt whose COMMIT the writer did not hear succeed: that one is answered with its
        receipt. Return the first of each person and part in the batch, and each second one with its first
        (refused once the first's number is known)."""
        firsts: dict[tuple[str, str], _Item] = {}
        seconds = []
        for it in items:
            k = (it.part.id, it.req.person_id)
            number, sid = existing.get(k, (None, None))
            if sid == it.req.submission_id:
                t = models.submissions
                row = conn.execute(sa.select(t).where(t.c.id == sid)).mappings().one()
                it.req.slot.set(Stored(201, receipt_of(row)))
            elif number is not None:
                it.req.slot.refuse(_already_submitted(number))
            elif k in firsts:
                seconds.append((it, firsts[k]))
            else:
                firsts[k] = it
        return list(firsts.values()), seconds

    def _record(
        self, conn: sa.Connection, tenant: str, edition: str, items: list[_Item], n0: int, now: datetime
    ) -> None:
        rt = self.rt
        rows, sequences, events, answers = [], [], [], []
        for i, it in enumerate(items, start=1):
            req, person = it.req, it.person
            sid = req.submission_id
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
        sql, outbox = self._sql(conn), rt.outbox.rows(events)
        if sql.write_in_one is not None:
            conn.execute(
                sql.write_in_one,
                {"r0": _rows(rows), "r1": _rows(sequences), "r2": _rows(answers), "r3": _rows(outbox)},
            )
            return
        conn.execute(sql.insert_reports, rows)
        conn.execute(sql.insert_sequences, sequences)
        conn.execute(sql.insert_events, outbox)
        if answers:
            conn.execute(sql.insert_answers, answers)


@dataclass
class _Read:
    """What a batch reads before the counter's lock."""

    answers: dict[tuple[str, str], tuple[str, int, bytes]]  # (scope, key) → (request hash, status, body)
    version: int | None  # the edition's latest
    people: list[tuple[Any, ...]]  # (person, effective from, sequence, doc), newest first per person
    extensions: dict[tuple[str, str], datetime]  # (part, person) → extended deadline
    known: set[str] | None  # the tenant's procedure codes (None: no catalogue)
    in_force: dict[tuple[str, str], tuple[str, str]]  # (part, person) → (receipt number, id) in force


def _read_in_one(rt: Runtime, sql: _Statements) -> sa.Select[Any]:
    """PostgreSQL: the batch's reads as one statement of scalar subqueries, each a ``json_agg`` of its rows.
    Its text is the same whatever the batch's size (``= ANY`` of array parameters), so it is compiled once and
    prepared once per connection."""
    p, strings = sa.bindparam, ARRAY(sa.String)
    tenant, edition, ids = p("tenant"), p("edition"), p("ids", type_=strings)

    def rows(*columns: Any, where: Any) -> Any:
        return sa.select(sa.func.json_agg(sa.func.json_build_array(*columns))).where(*where)

    def per_caller(
        wanted: Any,
        table: sa.Table,
        columns: tuple[Any, ...],
        *where: Any,
        order: Callable[[Any], Any] | None = None,
    ) -> Any:
        """The rows matching each of ``wanted``'s rows (the batch's callers, or its stored answers' pairs),
        looked up one at a time in a lateral subquery: one index descent each, whatever the planner knows of
        the table. As ``key = ANY(ids)`` the plan depended on the statistics: without them (autovacuum off, or
        not yet run after a directory import) it filtered every row of the tenant (3,079 people: 2 ms per
        batch, growing with the directory and the contest)."""
        # OFFSET 0 keeps the subquery lateral: the planner cannot fold it into a join of its own choosing
        one = sa.select(*columns).where(*where).offset(sa.literal_column("0")).lateral(f"{table.name}_of")
        cells = sa.func.json_build_array(*(one.c[c.name] for c in columns))
        if order is not None:
            cells = aggregate_order_by(cells, *order(one.c))
        return sa.select(sa.func.json_agg(cells)).select_from(wanted.join(one, sa.true())).scalar_subquery()

    people, x, t, i = rt_copies(rt).people, models.extensions, models.submissions, rt.idempotency.table
    callers = sa.func.unnest(ids).table_valued("id").render_derived(name="callers")
    pairs = (
        sa.func.unnest(p("scopes", type_=strings), p("keys", type_=strings))
        .table_valued("scope", "key")
        .render_derived(name="pairs")
    )
    c = models.procedure_catalogues
    return sa.select(
        sql.edition_version.scalar_subquery().label("version"),
        per_caller(
            callers,
            people,
            (people.c.person_id, people.c.effective_from, people.c.sequence, people.c.doc),
            people.c.tenant == tenant,
            people.c.person_id == callers.c.id,
            people.c.effective_from <= p("day"),
            order=lambda one: (one.person_id, one.effective_from.desc()),
        ).label("people"),
        rows(
            x.c.part,
            x.c.assignee_id,
            x.c.deadline,
            where=(x.c.tenant == tenant, x.c.edition == edition, x.c.assignee_id == sa.any_(ids)),
        )
        .scalar_subquery()
        .label("extensions"),
        sa.select(sa.func.json_agg(c.c.codes))
        .where(c.c.tenant == tenant)
        .scalar_subquery()
        .label("catalogues"),
        per_caller(
            callers,
            t,
            (t.c.part, t.c.author_id, t.c.receipt_number, t.c.id),
            t.c.tenant == tenant,
            t.c.edition == edition,
            t.c.author_id == callers.c.id,
            *_reports_in_force(t),
        ).label("in_force"),
        per_caller(
            pairs,
            i,
            (i.c.scope, i.c.key, i.c.request_hash, i.c.status, i.c.body),
            i.c.scope == pairs.c.scope,
            i.c.key == pairs.c.key,
        ).label("answers"),
    )


# The columns each of the batch's inserts writes (``_record``'s rows; the outbox's are ``Outbox.rows``').
ROW = (
    "id",
    "tenant",
    "edition",
    "part",
    "kind",
    "author_id",
    "unit_id",
    "receipt_number",
    "received_at",
    "status",
    "revision",
    "body",
)
SEQUENCE = ("subject", "last")
ANSWER = ("scope", "key", "request_hash", "status", "body", "created_at")
EVENT = ("event_id", "nats_subject", "event_type", "payload", "created_at", "attempts")


def _write_in_one(conn: sa.Connection, *tables: tuple[sa.Table, tuple[str, ...]]) -> sa.TextClause:
    """PostgreSQL: the batch's four inserts as one statement (data-modifying CTEs), each table's rows one JSON
    array parameter read by ``json_populate_recordset`` with the table's own row type. Its text is the same
    whatever the batch's size, so it is prepared once per connection — three round trips fewer per batch than
    one ``executemany`` per table. A unique index it meets fails the whole statement, as one insert would."""
    q = conn.dialect.identifier_preparer.quote
    inserts = []
    for n, (table, columns) in enumerate(tables):
        names = ", ".join(q(c) for c in columns)
        inserts.append(
            f"INSERT INTO {q(table.name)} ({names}) SELECT {names} "
            f"FROM json_populate_recordset(NULL::{q(table.name)}, CAST(:r{n} AS json))"
        )
    *first, last = inserts
    return sa.text("WITH " + ", ".join(f"w{n} AS ({sql})" for n, sql in enumerate(first)) + " " + last)


def _rows(rows: list[dict[str, Any]]) -> str:
    """Rows as ``json_populate_recordset`` reads them: instants in ISO 8601 with their offset, bytes as
    ``bytea``'s hex input (``\\x…``)."""
    return orjson.dumps(
        [{k: "\\x" + v.hex() if isinstance(v, bytes) else v for k, v in row.items()} for row in rows]
    ).decode()


def _json_rows(value: Any) -> list[Any]:
    """A ``json_agg`` column: NULL when it aggregated no row; text or already decoded, by the driver's codec."""
    if value is None:
        return []
    return orjson.loads(value) if isinstance(value, str | bytes) else list(value)


def _bytea(value: str) -> bytes:
    """A ``bytea`` as ``json_build_array`` writes it: ``\\x`` and hex."""
    return bytes.fromhex(value[2:])


def _already_submitted(number: str) -> DomainError:
    return DomainError(
        Refusal.CONFLICT,
        f"You already submitted a report for this part (receipt {number}); revise it instead.",
        f"Bạn đã nộp báo cáo cho phần thi này (biên nhận {number}); hãy chỉnh sửa báo cáo đã nộp.",
        code="already_submitted",
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
