"""The transactional outbox: a state change and the events it causes commit together; a relay publishes.

``Outbox.add`` writes events in the caller's transaction, numbering each aggregate's facts (``sequence``);
``emit`` stamps each with the current trace context (``shared/tracing.py``) so the fact carries its trace.
``OutboxRelay`` publishes unpublished rows in pipelined batches with ``Nats-Msg-Id`` = event id, waits for
every ack, then marks the acked rows. A failed publish is retried with backoff, never abandoned. On
PostgreSQL several relays share the table through ``FOR UPDATE SKIP LOCKED``; a row published twice (a relay
killed between ack and mark) is dropped by the stream's duplicate window, or beyond it by consumers' inboxes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import sqlalchemy as sa
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from shared import failpoints, tracing
from shared.clock import Clock
from shared.db import Backbone, insert_if_absent, reading, upsert
from shared.events.envelope import Envelope, make_event
from shared.logs import correlation_id
from shared.settings import Settings

log = logging.getLogger("hoithi.outbox")


class Outbox:
    """Writes a service's events into its outbox table, inside the caller's transaction."""

    def __init__(self, backbone: Backbone, settings: Settings, service: str, clock: Clock) -> None:
        self.tables = backbone
        self.settings = settings
        self.service = service
        self.clock = clock
        self.on_commit: Callable[[], None] | None = None  # the relay's wake-up
        self._next_sequence: dict[str, Any] = {}

    async def next_sequence(self, conn: AsyncConnection, subject: str) -> int:
        stmt = self._next_sequence.get(conn.dialect.name)
        if stmt is None:  # built once per dialect (``shared/db.py``: hot statements)
            t = self.tables.sequences
            stmt = self._next_sequence[conn.dialect.name] = upsert(
                conn, t, {"subject": sa.bindparam("of_subject"), "last": 1}, set_={"last": t.c.last + 1}
            ).returning(t.c.last)
        return int((await conn.execute(stmt, {"of_subject": subject})).scalar_one())

    async def emit(
        self,
        conn: AsyncConnection,
        type_: str,
        data: BaseModel | dict[str, Any],
        *,
        tenant: str,
        subject: str,
        time: datetime,
        edition: str | None = None,
        causation_id: str | None = None,
        event_id: str | None = None,
        version: int | None = None,
    ) -> Envelope | None:
        """Record one fact (at ``version`` of its type, default the current: shared/events/versions.py). With a
        deterministic ``event_id`` already in the outbox, records nothing and returns None (its subject's
        ``sequence`` then skips a number: consumers expect gaps). Two statements: the sequence, the row."""
        env = make_event(
            type_,
            data,
            source=self.service,
            tenant=tenant,
            subject=subject,
            sequence=await self.next_sequence(conn, subject),
            time=time,
            edition=edition,
            correlation_id=correlation_id.get() or None,
            causation_id=causation_id,
            event_id=event_id,
            trace=tracing.carrier(),
            version=version,
        )
        added = await insert_if_absent(conn, self.tables.outbox, self.rows([env])[0])
        return env if added else None

    async def add(self, conn: AsyncConnection, events: Sequence[Envelope]) -> None:
        if not events:
            return
        await conn.execute(self.tables.outbox.insert(), self.rows(events))

    def rows(self, events: Sequence[Envelope]) -> list[dict[str, Any]]:
        """The outbox rows of ``events`` (for a writer that inserts them on a synchronous connection)."""
        now = self.clock.now()
        return [
            {
                "event_id": e.id,
                "nats_subject": self.settings.event_subject(e.tenant, e.type),
                "event_type": e.type,
                "payload": e.to_json(),
                "created_at": now,
                "attempts": 0,
            }
            for e in events
        ]

    def committed(self) -> None:
        """Call after the transaction that added events has committed: the relay wakes at once."""
        if self.on_commit:
            self.on_commit()


class Publisher(Protocol):
    """What the relay publishes with: the broker (:class:`BrokerPublisher`) or a nats-py ``JetStreamContext``."""

    async def publish(
        self, subject: str, payload: bytes, *, timeout: float, stream: str, headers: dict[str, str]
    ) -> Any: ...


class BrokerPublisher:
    """How the relay publishes: through the service's FastStream broker (its JetStream producer, the ack awaited),
    with the row's payload as it is and our headers (``Nats-Msg-Id``, the trace context) kept; FastStream adds
    its content type and correlation id."""

    def __init__(self, broker: Any) -> None:
        self.broker = broker

    async def publish(
        self, subject: str, payload: bytes, *, timeout: float, stream: str, headers: dict[str, str]
    ) -> Any:
        return await self.broker.publish(payload, subject, headers=headers, stream=stream, timeout=timeout)


class OutboxRelay:
    """Publishes outbox rows to JetStream until stopped. One per process; safe with several processes."""

    def __init__(
        self,
        engine: AsyncEngine,
        backbone: Backbone,
        js: Publisher,
        settings: Settings,
        *,
        batch: int | None = None,
        publish_timeout: float = 5.0,
    ) -> None:
        self.engine = engine
        self.table = backbone.outbox
        self.js = js
        self.settings = settings
        self.batch = batch or settings.relay_batch
        self.publish_timeout = publish_timeout
        self._wake = asyncio.Event()
        self.published = 0
        self.healthy = True
        self.last_error: str | None = None

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        failures = 0
        next_prune = 0.0
        while True:
            if asyncio.get_running_loop().time() >= next_prune:
                next_prune = asyncio.get_running_loop().time() + 3600
                try:
                    await self.prune()
                except Exception as exc:  # noqa: BLE001 - housekeeping; try again in an hour
                    log.warning("outbox prune failed: %r", exc)
            try:
                n = await self.relay_once()
                failures = 0
                self.healthy = True
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - never abandon: log, back off, retry
                failures += 1
                self.healthy = False
                self.last_error = repr(exc)
                delay = min(0.2 * 2 ** min(failures, 8), 30.0)
                log.warning("outbox relay failed (attempt %d), retrying in %.1fs: %r", failures, delay, exc)
                await asyncio.sleep(delay)
                continue
            if n < self.batch:
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), self.settings.relay_idle_poll)
                except TimeoutError:
                    pass

    async def relay_once(self) -> int:
        """Publish one batch; return how many rows were marked published."""
        t = self.table
        now = datetime.now(UTC)
        query = (
            sa.select(t.c.position, t.c.event_id, t.c.nats_subject, t.c.payload, t.c.attempts)
            .where(t.c.published_at.is_(None))
            .where(sa.or_(t.c.next_attempt_at.is_(None), t.c.next_attempt_at <= now))
            .order_by(t.c.position)
            .limit(self.batch)
        )
        if self.engine.dialect.name == "postgresql":
            # Hold the rows while publishing so other replicas skip them.
            async with self.engine.begin() as conn:
                rows = (await conn.execute(query.with_for_update(skip_locked=True))).all()
                if not rows:
                    return 0
                acked, failed = await self.publish(rows)
                if acked:
                    failpoints.crash("relay-after-ack", f"{len(acked)} published rows not marked")
                await self.mark(conn, acked, failed, {r.position: r.attempts for r in rows})
            return len(acked)
        async with reading(self.engine).connect() as conn:  # a reader: no write lock while intake writes
            rows = (await conn.execute(query)).all()
            await conn.rollback()
        if not rows:
            return 0
        acked, failed = await self.publish(rows)
        if acked:
            failpoints.crash("relay-after-ack", f"{len(acked)} published rows not marked")
        async with self.engine.begin() as conn:
            await self.mark(conn, acked, failed, {r.position: r.attempts for r in rows})
        return len(acked)

    async def publish(self, rows: Sequence[Any]) -> tuple[list[int], dict[int, str]]:
        """Publish rows pipelined (all in flight at once); return acked positions and failures."""

        async def one(row: Any) -> None:
            headers = {"Nats-Msg-Id": row.event_id}
            # tracing on: published in the envelope's trace context; the broker's telemetry middleware opens
            # the producer span and puts its context in the headers
            with tracing.publishing(row.payload):
                await self.js.publish(
                    row.nats_subject,
                    row.payload,
                    timeout=self.publish_timeout,
                    stream=self.settings.stream,
                    headers=headers,
                )

        results = await asyncio.gather(*(one(r) for r in rows), return_exceptions=True)
        acked: list[int] = []
        failed: dict[int, str] = {}
        for row, res in zip(rows, results, strict=True):
            if isinstance(res, BaseException):
                failed[row.position] = repr(res)
            else:
                acked.append(row.position)
        self.published += len(acked)
        if failed:
            self.healthy = False
            self.last_error = next(iter(failed.values()))
            log.warning("outbox: %d of %d publishes failed: %s", len(failed), len(rows), self.last_error)
        return acked, failed

    async def mark(
        self,
        conn: AsyncConnection,
        acked: list[int],
        failed: dict[int, str],
        attempts: dict[int, int] | None = None,
    ) -> None:
        t = self.table
        now = datetime.now(UTC)
        if acked:
            await conn.execute(sa.update(t).where(t.c.position.in_(acked)).values(published_at=now))
        for position, error in failed.items():
            # Exponential backoff per row, capped: a broker outage is retried for as long as it lasts.
            n = (attempts or {}).get(position, 0)
            await conn.execute(
                sa.update(t)
                .where(t.c.position == position)
                .values(
                    attempts=t.c.attempts + 1,
                    last_error=error[:2000],
                    next_attempt_at=now + timedelta(seconds=min(0.5 * 2**n, 30.0)),
                )
            )

    async def prune(self, older_than: timedelta = timedelta(days=7)) -> int:
        """Forget rows published long ago (the stream keeps the events; the outbox only needs the unsent).

        A fact with a deterministic id (a miss, a reminder, a ``deadline.passed``, a ``notification.sent``…) may
        be emitted again by a restart or another replica at any time, and ``emit()`` recognises it by its row:
        deleting that row would let it go out a second time, under a new sequence. So only ordinary facts
        (the UUIDv7 ids ``emit()`` makes itself, which nothing can emit again) are deleted after ``older_than``;
        a deterministic one keeps its row with the payload dropped — a tombstone of about 200 bytes — until
        the stream itself forgets the fact (``stream_max_age_days``). Sequences never depend on these rows:
        each subject's counter lives in ``event_sequences`` and is never pruned, so a subject's facts stay
        numbered upwards whatever is pruned. Returns how many rows were deleted."""
        t = self.table
        now = datetime.now(UTC)
        published_before = sa.and_(t.c.published_at.is_not(None), t.c.published_at < now - older_than)
        ordinary = sa.and_(sa.func.length(t.c.event_id) == 36, sa.func.substr(t.c.event_id, 15, 1) == "7")
        async with self.engine.begin() as conn:
            deleted = await conn.execute(sa.delete(t).where(published_before, ordinary))
            await conn.execute(
                sa.update(t)
                .where(published_before, sa.not_(ordinary), t.c.payload != b"")
                .values(payload=b"")
            )
            forgotten = await conn.execute(
                sa.delete(t).where(
                    t.c.published_at.is_not(None),
                    t.c.published_at < now - timedelta(days=self.settings.stream_max_age_days),
                )
            )
        return int(deleted.rowcount or 0) + int(forgotten.rowcount or 0)

    async def pending(self) -> int:
        async with self.engine.connect() as conn:
            return int(
                (
                    await conn.execute(
                        sa.select(sa.func.count())
                        .select_from(self.table)
                        .where(self.table.c.published_at.is_(None))
                    )
                ).scalar_one()
            )
