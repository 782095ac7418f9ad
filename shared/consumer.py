"""The subscriber helper: how every service consumes events.

A durable pull consumer (declared by ``hoithi streams``, only *bound* here) is fetched in batches. A batch is
applied in one database transaction — each event's inbox row and its effect together, then what the batch's
facts share written once (``batch_local``) — and acked only after the commit. Rules (ARCHITECTURE.md, reliability 2 and 3):

- a duplicate (inbox key ``(purpose, event id)`` already present) is acked with no effect;
- an invalid payload never succeeds: it becomes a ``deadletter.recorded`` event, then the original is acked;
- a failure is classified by probing the database, never by the exception's type (``shared/db.py``):
  - the database does not answer (a fresh connection, short timeout): nothing is naked and no delivery is
    spent; the consumer keeps the whole batch (telling the server it is in progress), stops fetching, reports
    not-ready, and retries;
  - it answers and the failure is lock/busy/deadlock/serialization contention: retried in place, bounded,
    with backoff, no nak (readiness stays green);
  - it answers and the failure is anything else — even an OSError, a TimeoutError or an OperationalError such
    as "no such table" — a handler failure: the batch is re-applied one by one to isolate the poison message,
    which is naked with a growing delay and, on its last allowed delivery, dead-lettered and acked.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import functools
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar, cast

import nats.errors
import sqlalchemy as sa
import structlog
from faststream.middlewares import AckPolicy
from faststream.nats import JStream, NatsBroker, PullSub
from faststream.nats.subscriber.usecases.stream_pull_subscriber import BatchPullStreamSubscriber
from nats.aio.client import Client as NatsClient
from nats.js.api import ConsumerConfig
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from shared import failpoints, metrics, tracing
from shared.db import Backbone, DatabaseProbe, insert_if_absent, is_contention
from shared.events.catalogue import CATALOGUE
from shared.events.envelope import Envelope, deterministic_id, make_event, source_of
from shared.logs import correlation_id
from shared.outbox import BrokerPublisher, Outbox, Publisher
from shared.pacing import Pressure
from shared.settings import Settings
from shared.streams import ConsumerSpec, consumer_configs, consumers_of, replay_durable

log = logging.getLogger("hoithi.consumer")

PURPOSE_HEADER = "Hoithi-Purpose"
# Lock/serialization contention is retried in place this many times (backoff 0.1 s doubling, capped at 2 s,
# jittered) before it counts as a failed delivery.
CONTENTION_RETRIES = 6
RUSH_PART = 20  # facts applied at once while intake signals a rush (shared/pacing.py)
REPLAY_HANDOVER_DELAY = 0.5  # seconds: a replay for a sibling purpose comes back to another loop
REPLAY_HEADER = "Hoithi-Replay-Of"
DEADLETTER_PUBLISH_TIMEOUT = 5.0  # seconds for the dead-letter stream's ack

# Fault tests only (shared/failpoints.py): ``consumer-before-ack`` and ``handler-raises``.
FAILPOINT_SUBJECTS = {"failpoint-oserror": FileNotFoundError, "failpoint-timeout": TimeoutError}


def _raise_at_failpoint(env: Envelope) -> None:
    if env.subject and failpoints.armed("handler-raises"):
        for prefix, error in FAILPOINT_SUBJECTS.items():
            if env.subject.startswith(prefix):
                raise error(f"failpoint handler-raises: {env.subject}")


Handler = Callable[[AsyncConnection, Envelope], Awaitable[None]]
LongWork = Callable[[], Awaitable[None]]

# The long work handlers of the batch being applied asked for (``after_commit``); None outside a consumer.
_deferred: ContextVar[list[LongWork] | None] = ContextVar("hoithi_deferred_work", default=None)


def after_commit(work: LongWork) -> bool:
    """From inside a handler: run ``work`` after the batch's transaction commits and before its messages are
    acked, while the consumer tells the server every ``ack_wait``/3 that they are in progress — so work longer
    than ``ack_wait`` (a re-fold of a whole tenant) is neither redelivered nor held in one transaction.

    ``work`` makes its own short transactions (one per chunk) and must be resumable from what the handler's
    transaction recorded: a crash leaves the facts applied and the messages acked at their redelivery as
    duplicates, so the service resumes the work from that record. False (nothing deferred) outside a
    consumer's batch: the caller then does the work inline."""
    pending = _deferred.get()
    if pending is None:
        return False
    pending.append(work)
    return True


class BatchLocal(Protocol):
    """State the handlers of one batch share (``batch_local``): what it gathers is written once, by ``flush``."""

    async def flush(self, conn: AsyncConnection) -> None: ...


B = TypeVar("B", bound=BatchLocal)

# The batch being applied: its connection, and the objects its handlers share, by key, in the order first asked for.
_batch: ContextVar[tuple[AsyncConnection, dict[Hashable, BatchLocal]] | None] = ContextVar(
    "hoithi_batch_locals", default=None
)


def batch_local(key: Hashable, make: Callable[[], B]) -> B | None:
    """From inside a handler: the batch's object for ``key`` (made by ``make`` on first use). Its ``flush(conn)``
    runs once, after the batch's last fact and in its transaction, before the commit — so work a batch's facts
    share (re-deriving a participant many of them touch) is done once per batch, not once per fact: the
    group-commit idea applied to folds. A failed batch is rolled back with what it gathered (and re-applied one
    by one, each with its own objects). None outside a batch (``batch_scope``): the caller then works inline."""
    current = _batch.get()
    if current is None:
        return None
    scope = current[1]
    obj = scope.get(key)
    if obj is None:
        obj = scope[key] = make()
    return cast(B, obj)


@contextlib.asynccontextmanager
async def batch_scope(conn: AsyncConnection) -> AsyncIterator[None]:
    """A batch of facts applied on ``conn`` (the consumer's, a rebuild's, a re-pricing chunk's): the
    ``batch_local`` objects its handlers make are flushed, in the order first made, when the block ends without
    an error (one flush may make another: flushed too). A scope nested on the same connection is the outer one;
    on another connection (its own transaction) it is its own."""
    current = _batch.get()
    if current is not None and current[0] is conn:
        yield
        return
    scope: dict[Hashable, BatchLocal] = {}
    token = _batch.set((conn, scope))
    try:
        yield
        done = 0
        while done < len(scope):
            await list(scope.values())[done].flush(conn)
            done += 1
    finally:
        _batch.reset(token)


class RawMsg(Protocol):
    """What we use of a nats-py JetStream message (lets unit tests pass small fakes)."""

    data: bytes
    subject: str
    headers: dict[str, str] | None

    @property
    def metadata(self) -> Any: ...
    async def ack(self) -> None: ...
    async def nak(self, delay: float | None = None) -> None: ...
    async def in_progress(self) -> None: ...


class InvalidPayload(Exception):
    reason = "invalid_payload"


class SubjectMismatch(InvalidPayload):
    """The envelope names another type or tenant than its subject (on which the server checked the publisher's
    permissions), or another producer than the catalogue's: a forgery, never applied."""

    reason = "subject_mismatch"


class _StillContended(Exception):
    """Lock or serialization contention outlasted its retries in place; the cause is the last failure."""


@dataclass
class Inbox:
    """The inbox, which is also the store of facts a consumer folds in ``sequence`` order."""

    backbone: Backbone

    async def record(self, conn: AsyncConnection, purpose: str, env: Envelope, raw: bytes) -> bool:
        """Insert the inbox row; False if this event was already applied for ``purpose``."""
        return await insert_if_absent(
            conn,
            self.backbone.inbox,
            {
                "purpose": purpose,
                "event_id": env.id,
                "event_type": env.type,
                "tenant": env.tenant,
                "subject": env.subject,
                "sequence": env.sequence,
                "time": env.time,
                "envelope": raw,
                "applied_at": datetime.now(UTC),
            },
        )

    async def history(
        self, conn: AsyncConnection, purpose: str, subject: str, *, as_of: datetime | None = None
    ) -> list[Envelope]:
        """Every fact kept for ``subject`` in sequence order (gaps allowed); ``as_of`` by business time."""
        params: dict[str, Any] = {"purpose": purpose, "subject": subject}
        if as_of is not None:
            params["as_of"] = as_of
        rows = (await conn.execute(_history(self.backbone.inbox, as_of is not None), params)).scalars().all()
        return [Envelope.from_json(r) for r in rows]

    async def histories(
        self, conn: AsyncConnection, purpose: str, subjects: Sequence[str]
    ) -> dict[str, list[Envelope]]:
        """``history`` of several subjects (``HISTORIES_AT_ONCE`` per statement, ``ix_inbox_subject``); a subject
        with no fact kept is absent."""
        t = self.backbone.inbox
        out: dict[str, list[Envelope]] = {}
        for i in range(0, len(subjects), HISTORIES_AT_ONCE):
            q = _histories(t).where(
                t.c.purpose == purpose, t.c.subject.in_(subjects[i : i + HISTORIES_AT_ONCE])
            )
            for subject, raw in (await conn.execute(q)).all():
                out.setdefault(subject, []).append(Envelope.from_json(raw))
        return out


HISTORIES_AT_ONCE = 500  # subjects per IN (…)


@functools.cache
def _histories(t: sa.Table) -> sa.Select[Any]:
    return sa.select(t.c.subject, t.c.envelope).order_by(t.c.subject, t.c.sequence, t.c.time)


@functools.cache
def _history(t: sa.Table, as_of: bool) -> sa.Select[Any]:
    """The statement of ``Inbox.history``, built once (``shared/db.py``: hot statements)."""
    q = sa.select(t.c.envelope).where(
        t.c.purpose == sa.bindparam("purpose"), t.c.subject == sa.bindparam("subject")
    )
    if as_of:
        q = q.where(t.c.time <= sa.bindparam("as_of"))
    return q.order_by(t.c.sequence, t.c.time)


@dataclass
class ConsumerState:
    ready: bool = True
    db_reachable: bool = True
    applied: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    naked: int = 0
    last_error: str | None = None
    waiting_for_db_since: datetime | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def declared_consumer(
    settings: Settings, spec: ConsumerSpec, *, replay: bool = False
) -> tuple[str, ConsumerConfig]:
    """(stream, configuration) of the durable ``hoithi streams`` declares for ``spec`` (or for its service's
    replays), a copy."""
    durable = replay_durable(spec.service) if replay else spec.durable
    for stream, cc in consumer_configs(settings):
        if cc.durable_name == durable:
            return stream, dataclasses.replace(cc)
    # a spec outside CONSUMERS (tests): the same shape, filtered on its own types
    stream = settings.replay_stream if replay else settings.stream
    filters = [settings.replay_subject(spec.service)] if replay else spec.filter_subjects(settings)
    return stream, ConsumerConfig(durable_name=durable, name=durable, filter_subjects=filters)


def subscriber_options(settings: Settings, spec: ConsumerSpec, *, replay: bool = False) -> dict[str, Any]:
    """FastStream ``broker.subscriber`` options of a consumer: a JetStream batch pull subscriber of its declared
    durable, manual acknowledgement (also what the AsyncAPI document describes, shared/events/asyncapi.py)."""
    stream, config = declared_consumer(settings, spec, replay=replay)
    return {
        "config": config,
        "durable": config.durable_name,
        "stream": JStream(stream, declare=False),
        "pull_sub": PullSub(
            batch_size=settings.consumer_batch, timeout=settings.consumer_fetch_timeout, batch=True
        ),
        "ack_policy": AckPolicy.MANUAL,
        "title": config.durable_name,
        "description": (
            f"{spec.service}: replays of the dead letters of its purposes"
            if replay
            else f"{spec.service} ({spec.purpose}) receives {', '.join(spec.types)}"
        ),
    }


class EventConsumer:
    """Runs one service's handlers for one durable consumer (and its share of the replay stream)."""

    def __init__(
        self,
        *,
        spec: ConsumerSpec,
        engine: AsyncEngine,
        backbone: Backbone,
        outbox: Outbox,
        settings: Settings,
        handlers: dict[str, Handler],
        pressure: Pressure | None = None,
    ) -> None:
        self.spec = spec
        self.pressure = pressure  # intake's rush signal: yield after each batch while it lasts
        self.engine = engine
        self.inbox = Inbox(backbone)
        self.outbox = outbox
        self.settings = settings
        self.handlers = handlers
        self.state = ConsumerState()
        self.nc: NatsClient | None = None
        # what dead letters are published with: the broker the consumer is subscribed on, else the connection
        self.publisher: Publisher | None = None
        self.probe = DatabaseProbe(engine)

    @property
    def purpose(self) -> str:
        return self.spec.purpose

    # ------------------------------------------------------------------ the FastStream subscriber
    def subscribe(self, broker: NatsBroker, *, replay: bool = False) -> BoundBatchSubscriber:
        """Register this consumer on ``broker`` as a FastStream JetStream batch pull subscriber of its declared
        durable (or, ``replay``, of the service's replay durable): bound, never created; a raw decoder, so
        :meth:`on_batch` gets the nats-py messages undecoded (a malformed one reaches the dead-letter path); manual
        acknowledgement, each message settled on its own by :meth:`process`. Started with the broker."""
        sub = broker.subscriber(
            **subscriber_options(self.settings, self.spec, replay=replay), decoder=_raw_batch
        )
        bound = BoundBatchSubscriber.adopt(sub, self)
        self.publisher = BrokerPublisher(broker)

        @sub
        async def on_batch(msgs: Any) -> None:
            await self.on_batch(msgs, replay=replay)

        return bound

    async def on_batch(self, msgs: Sequence[RawMsg], *, replay: bool = False) -> None:
        """One fetched batch, raw: a replay consumer keeps its own purpose's messages, then each is applied
        (or found a duplicate, or dead-lettered) and settled on its own."""
        if replay:
            msgs = await self._own_replays(msgs)
        if not msgs:
            return
        if self.pressure is None or not self.pressure.yielding:
            await self.process(msgs)
            return
        # Intake's rush (shared/pacing.py): apply the batch in small parts, each in its turn and followed by
        # its wait, so a long batch does not hold the cores; the parts not yet applied (this one too, while it
        # waits for its turn) are kept in progress.
        for i in range(0, len(msgs), RUSH_PART):
            async with self._in_progress_while(msgs[i:]), self.pressure.turn(self.purpose):
                await self.process(msgs[i : i + RUSH_PART])

    async def run(self, nc: NatsClient, *, replay: bool = False) -> None:
        """This consumer alone, as a FastStream subscriber on its own broker over ``nc``, until cancelled (tests
        and tools; a service registers every consumer on its one broker, ``shared/service.py``)."""
        self.nc = nc
        broker = SharedConnectionBroker(nc)
        sub = self.subscribe(broker, replay=replay)
        await broker.start()
        try:
            await asyncio.Future()  # until cancelled
        finally:
            await asyncio.shield(stop_subscribers([sub]))

    async def _own_replays(self, msgs: Sequence[RawMsg]) -> list[RawMsg]:
        """The replays meant for this consumer's purpose. The service's replay consumer is shared by its
        purposes: a replay for a sibling purpose is naked at once so the sibling's loop takes it; one for a
        purpose this service does not have (any more) can never be applied, and is acked (logged; the dead-letter
        record stays in its stream) — never left pending to be redelivered until ``max_deliver`` runs out."""
        siblings = {c.purpose for c in consumers_of(self.spec.service)} - {self.purpose}
        mine: list[RawMsg] = []
        for m in msgs:
            purpose = (m.headers or {}).get(PURPOSE_HEADER, self.purpose)
            if purpose == self.purpose:
                mine.append(m)
            elif purpose in siblings:
                await _settle(m.nak(delay=REPLAY_HANDOVER_DELAY), m, "nak")
            else:
                log.error("replay for purpose %r, which %s does not have: acked", purpose, self.spec.service)
                await _settle(m.ack(), m, "ack")
        return mine

    # ------------------------------------------------------------------ processing
    async def process(self, msgs: Sequence[RawMsg]) -> None:
        parsed: list[tuple[RawMsg, Envelope]] = []
        for m in msgs:
            try:
                parsed.append((m, self.parse(m)))
            except InvalidPayload as exc:
                await self.dead_letter(m, exc.reason, str(exc))
        if not parsed:
            return
        try:
            await self._apply_with_db_wait(parsed)
        except _StillContended as exc:
            # Contention outlasted its retries for the whole batch: every message waits its delay, none is
            # suspected of being poison (one by one would only wait on the same locks again).
            for m, _ in parsed:
                await self._failed(m, _reason(exc))
        except Exception as exc:  # noqa: BLE001 - a handler failed: isolate the poison message
            if len(parsed) == 1:
                await self._failed(parsed[0][0], exc)
                return
            log.info("batch of %d failed (%r); applying one by one", len(parsed), exc)
            for i, item in enumerate(parsed):
                try:
                    # While this one waits for the database, the rest of the batch is kept in progress too.
                    await self._apply_with_db_wait([item], hold=[m for m, _ in parsed[i:]])
                except Exception as one_exc:  # noqa: BLE001
                    await self._failed(item[0], _reason(one_exc))

    def parse(self, m: RawMsg) -> Envelope:
        try:
            env = Envelope.from_json(m.data)
            env.parsed()
        except (ValidationError, ValueError, KeyError) as exc:
            raise InvalidPayload(f"{type(exc).__name__}: {exc}"[:4000]) from exc
        headers = m.headers or {}
        msg_id = headers.get("Nats-Msg-Id")
        # A replay carries its own message id (so a second replay is not dropped as a duplicate).
        if msg_id and msg_id != env.id and REPLAY_HEADER not in headers:
            raise InvalidPayload(f"Nats-Msg-Id {msg_id} differs from the event id {env.id}")
        self._check_origin(m, env)
        if env.type not in self.handlers:
            raise InvalidPayload(f"{self.spec.durable} has no handler for {env.type}")
        return env

    def _check_origin(self, m: RawMsg, env: Envelope) -> None:
        # A replay comes on the replay subject, which only the admin may publish to.
        if REPLAY_HEADER not in (m.headers or {}):
            expected = self.settings.event_subject(env.tenant, env.type)
            if m.subject != expected:
                raise SubjectMismatch(
                    f"an envelope of type {env.type} for tenant {env.tenant} came on {m.subject} (expected {expected})"
                )
        spec = CATALOGUE.get(env.type)
        if spec is not None and spec.producer != "any" and env.source != source_of(spec.producer):
            raise SubjectMismatch(f"{env.type} comes from {source_of(spec.producer)}, not {env.source}")

    async def _apply_with_db_wait(
        self, items: list[tuple[RawMsg, Envelope]], *, hold: Sequence[RawMsg] | None = None
    ) -> None:
        """Apply ``items`` and ack them. A failure is classified by probing the database (shared/db.py):
        no answer → hold every message of ``hold`` (default: ``items``) in progress and retry until it answers,
        spending no delivery; contention → retry in place, bounded (then ``_StillContended``); anything else
        is raised as a handler failure."""
        held = list(hold) if hold is not None else [m for m, _ in items]
        outage_delay = 0.2
        contended = 0
        while True:
            deferred: list[LongWork] = []
            try:
                # A batch slower than ack_wait (a loaded machine, a big fold) must not be redelivered to
                # another replica meanwhile: the held messages are told "in progress" while it runs.
                async with self._in_progress_while(held):
                    await self.apply(items, deferred)
            except Exception as exc:
                if await self.probe.answers():
                    self._database_answers()
                    if not is_contention(exc):
                        raise
                    contended += 1
                    if contended > CONTENTION_RETRIES:
                        raise _StillContended(f"still contended after {contended} tries") from exc
                    log.info("contention (try %d), retrying in place: %r", contended, exc)
                    await self._keep_in_progress(held)
                    await asyncio.sleep(random.uniform(0.5, 1.0) * min(0.05 * 2**contended, 2.0))
                    continue
                # Our own database does not answer: keep the messages, spend no delivery, stop fetching.
                if self.state.db_reachable:
                    log.warning("database unreachable, holding %d messages: %r", len(held), exc)
                self.state.db_reachable = False
                self.state.ready = False
                self.state.waiting_for_db_since = self.state.waiting_for_db_since or datetime.now(UTC)
                self.state.last_error = repr(exc)
                await self._keep_in_progress(held)
                await asyncio.sleep(outage_delay)
                outage_delay = min(outage_delay * 2, max(1.0, self.settings.ack_wait / 3))
                continue
            self._database_answers()
            failpoints.crash("consumer-before-ack", f"{len(items)} committed, unacked")
            if deferred:
                await self._run_long(items, deferred)
            for m, _ in items:
                await _settle(m.ack(), m, "ack")
            return

    def _database_answers(self) -> None:
        if not self.state.db_reachable:
            log.info("database reachable again")
        self.state.db_reachable = True
        self.state.ready = True
        self.state.waiting_for_db_since = None

    @contextlib.asynccontextmanager
    async def _in_progress_while(self, msgs: Sequence[RawMsg]) -> AsyncIterator[None]:
        """Tell the server every ``ack_wait``/3 that ``msgs`` are in progress, while the block runs."""

        async def beat() -> None:
            while True:
                await asyncio.sleep(max(0.1, self.settings.ack_wait / 3))
                await self._keep_in_progress(msgs)

        task = asyncio.create_task(beat())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _keep_in_progress(self, msgs: Sequence[RawMsg]) -> None:
        for m in msgs:
            try:
                await m.in_progress()
            except Exception as wpi_exc:  # noqa: BLE001 - the server redelivers after ack_wait anyway
                log.debug("in-progress signal failed: %r", wpi_exc)

    async def _run_long(self, items: list[tuple[RawMsg, Envelope]], works: list[LongWork]) -> None:
        """The batch's long work, after its commit; its messages kept in progress meanwhile. A failure is logged,
        not naked: the facts are applied (a redelivery would be a duplicate) and the work resumes from its record.
        """

        async with self._in_progress_while([m for m, _ in items]):
            for work in works:
                try:
                    await work()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # noqa: BLE001 - see the docstring
                    self.state.last_error = repr(exc)
                    log.error("long work after commit failed, left to resume: %r", exc)

    async def apply(
        self, items: list[tuple[RawMsg, Envelope]], deferred: list[LongWork] | None = None
    ) -> None:
        """Inbox rows and effects of ``items`` in one transaction; the long work their handlers ask for
        (``after_commit``) lands in ``deferred`` (run inline at once when None)."""
        later: list[LongWork] = []
        token_deferred = _deferred.set(later)
        try:
            await self._apply(items)
        finally:
            _deferred.reset(token_deferred)
        if deferred is not None:
            deferred.extend(later)
        else:
            for work in later:
                await work()

    async def _apply(self, items: list[tuple[RawMsg, Envelope]]) -> None:
        applied = dup = 0
        async with self.engine.begin() as conn, batch_scope(conn):
            for m, env in items:
                if not await self.inbox.record(conn, self.purpose, env, m.data):
                    dup += 1
                    continue
                token = correlation_id.set(env.correlationid)
                try:
                    with (
                        # a span per message, child of the producer's (tracing on); what it emits carries it on
                        tracing.consumer_span(self.spec.durable, env, m.headers),
                        structlog.contextvars.bound_contextvars(
                            tenant=env.tenant, edition=env.edition, event_id=env.id, event_type=env.type
                        ),
                        metrics.handler_timer(self.purpose, env.type),
                    ):
                        _raise_at_failpoint(env)
                        await self.handlers[env.type](conn, env)
                finally:
                    correlation_id.reset(token)
                applied += 1
        self.state.applied += applied
        self.state.duplicates += dup
        metrics.messages(self.purpose, "applied", applied)
        metrics.messages(self.purpose, "duplicate", dup)
        if applied:
            self.outbox.committed()

    async def _failed(self, m: RawMsg, exc: BaseException) -> None:
        deliveries = _num_delivered(m)
        self.state.last_error = repr(exc)
        if deliveries >= self.settings.max_deliver:
            log.error("giving up after %d deliveries: %r", deliveries, exc)
            await self.dead_letter(m, "max_deliver_reached", repr(exc))
            return
        delay = min(self.settings.nak_base_delay * 2 ** (deliveries - 1), self.settings.nak_max_delay)
        log.warning("handler failed (delivery %d), retrying in %.1fs: %r", deliveries, delay, exc)
        self.state.naked += 1
        metrics.messages(self.purpose, "naked")
        await _settle(m.nak(delay=delay), m, "nak")

    async def dead_letter(self, m: RawMsg, reason: str, error: str) -> None:
        """Record ``m`` in the dead-letter stream, then ack it. If recording fails, nak: nothing is lost."""
        meta = _metadata(m)
        stream = getattr(meta, "stream", None) or "?"
        seq = getattr(getattr(meta, "sequence", None), "stream", None) or 0
        tenant = _tenant_of(m)
        now = datetime.now(UTC)
        env = make_event(
            "deadletter.recorded",
            {
                "service": self.spec.service,
                "consumer": self.spec.durable,
                "reason": reason,
                "error": error[:4000],
                "original_subject": m.subject,
                "stream": stream,
                "stream_sequence": int(seq),
                "deliveries": _num_delivered(m),
                "original_headers": dict(m.headers or {}),
                "original_base64": base64.b64encode(m.data).decode(),
            },
            source=self.spec.service,
            tenant=tenant,
            subject=f"{self.spec.service}/{stream}/{seq}",
            sequence=1,
            time=now,
            event_id=deterministic_id("deadletter", self.spec.service, stream, seq),
        )
        try:
            publisher = self.publisher
            if publisher is None:
                assert self.nc is not None, "consumer not running"
                publisher = self.nc.jetstream()
            await publisher.publish(
                self.settings.deadletter_subject(tenant, self.spec.service),
                env.to_json(),
                timeout=DEADLETTER_PUBLISH_TIMEOUT,
                stream=self.settings.deadletter_stream,
                headers={"Nats-Msg-Id": env.id, PURPOSE_HEADER: self.purpose},
            )
        except Exception as exc:  # noqa: BLE001
            log.error("could not record a dead letter (%r); naking for a later try", exc)
            await _settle(m.nak(delay=self.settings.nak_max_delay), m, "nak")
            return
        self.state.dead_lettered += 1
        metrics.dead_lettered(self.purpose, self.spec.durable, reason)
        log.error("dead-lettered %s seq %s: %s %s", stream, seq, reason, error[:300])
        await _settle(m.ack(), m, "ack")


# ---------------------------------------------------------------------- FastStream


async def _raw_batch(msg: Any, original: Any) -> Any:
    """The batch subscriber's decoder: the fetched nats-py messages, undecoded (FastStream's own decoder parses
    every body first, and one malformed body would keep the whole batch from the handler)."""
    return msg.raw_message


class BoundBatchSubscriber(BatchPullStreamSubscriber):
    """FastStream 0.7's JetStream batch pull subscriber with two steps replaced, each shown missing by a test in
    ``tests/integration/test_faststream_limits.py`` (written to fail once FastStream has it):

    - the subscription *binds* to the durable ``hoithi streams`` declared (``pull_subscribe_bind``); FastStream's
      ``pull_subscribe`` creates a durable it does not find, with its own settings;
    - the fetch loop hands a partial batch to the handler at once and outlives whatever a fetch raises; FastStream's
      keeps fetching until the batch is full or its timeout is spent (every batch short of full waits the whole
      timeout), and a fetch that raises anything but the few errors it expects (nats-py's builtin TimeoutError
      included) ends its task, dropping what it had fetched (redelivered only after ack_wait, a delivery spent).

    Everything else is FastStream's: registration, start and stop, parsing (a raw decoder), the middlewares,
    the handler call and the AsyncAPI description. Messages are settled one by one on the raw messages (manual
    acknowledgement): FastStream's batch message settles only the whole batch."""

    __slots__ = ()
    hoithi_state: (
        ConsumerState  # the consumer's, for the last fetch error (FastStream's subscribers have a dict)
    )

    @classmethod
    def adopt(cls, sub: Any, consumer: EventConsumer) -> BoundBatchSubscriber:
        """``sub``, made by FastStream's factory for a batch pull subscriber, turned into this subclass."""
        if type(sub) is not BatchPullStreamSubscriber:  # FastStream changed its factory: look again
            raise TypeError(f"expected FastStream's BatchPullStreamSubscriber, got {type(sub).__name__}")
        sub.__class__ = cls
        bound = cast(BoundBatchSubscriber, sub)
        bound.hoithi_state = consumer.state
        return bound

    @property
    def durable(self) -> str:
        return str(self.extra_options["durable"])

    async def _create_subscription(self) -> None:
        if self.subscription:
            return
        self.subscription = await self.jetstream.pull_subscribe_bind(
            durable=self.durable, stream=self.extra_options["stream"]
        )
        self.add_task(self._consume_pull)

    async def _consume_pull(self) -> None:
        """Fetch and hand over until stopped. While the broker restarts, a fetch may fail in many ways
        (reconnecting, closed, no responders, EOF): the server still holds every unacked message and redelivers
        it after ack_wait, and the inbox applies it once: back off, go on."""
        sub = self.subscription
        assert sub is not None, "the subscription is made before the loop starts"
        failures = 0
        while self.running:
            try:
                msgs = await sub.fetch(batch=self.pull_sub.batch_size, timeout=self.pull_sub.timeout)
            except (nats.errors.TimeoutError, TimeoutError):
                _raise_if_cancelled()
                failures = 0
                continue
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - see above; logged, never fatal
                _raise_if_cancelled()
                failures += 1
                self.hoithi_state.last_error = repr(exc)
                if failures == 1 or failures % 20 == 0:
                    log.warning("%s: fetch failed (%d in a row), retrying: %r", self.durable, failures, exc)
                await asyncio.sleep(min(0.2 * 2 ** min(failures, 5), 5.0))
                continue
            failures = 0
            if msgs and self.running:
                # FastStream's consume: middlewares, the raw decoder, our handler; it logs what the handler
                # raised (nothing settled then: the server redelivers after ack_wait).
                await self.consume(msgs)

    async def stop(self) -> None:
        """Stop at once: a batch being applied is cancelled (what it did not ack is redelivered later) rather
        than awaited for FastStream's graceful timeout; the subscription is dropped, bounded in time."""
        for task in self.tasks:
            task.cancel()
        subscription, self.subscription = self.subscription, None
        await super().stop()
        if subscription is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(subscription.unsubscribe(), SETTLE_TIMEOUT)


class SharedConnectionBroker(NatsBroker):
    """A FastStream broker over a nats-py connection opened elsewhere; stopping it leaves the connection open."""

    def __init__(self, nc: NatsClient, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._shared = nc

    async def _connect(self) -> NatsClient:
        self.config.connect(self._shared)
        return self._shared

    async def stop(self, *args: Any, **kwargs: Any) -> None:
        await stop_subscribers(self.subscribers)
        self.running = False
        self._connection = None
        self.config.disconnect()


async def stop_subscribers(subscribers: Sequence[Any]) -> None:
    """Stop FastStream subscribers (each bounded in time) without draining or closing their connection."""
    for sub in subscribers:
        try:
            await asyncio.wait_for(sub.stop(), 10)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - shutting down: the server redelivers what was not acked
            log.warning("stopping a subscriber failed: %r", exc)


SETTLE_TIMEOUT = 5.0


async def _settle(signal: Any, m: RawMsg, what: str) -> None:
    """Send an ack or a nak, bounded in time. One that is lost (the broker restarting) is not an error of the
    message: the server redelivers it after ack_wait and the inbox applies it once."""
    try:
        await asyncio.wait_for(signal, SETTLE_TIMEOUT)
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # noqa: BLE001
        log.warning("%s of %s lost (%r): the server will redeliver it", what, m.subject, exc)


def _raise_if_cancelled() -> None:
    """A library can turn our cancellation into another error (nats-py's fetch into a timeout): the loop that
    swallowed it would then never stop. 3.11's ``Task.cancelling()`` still says it was asked to."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


def _reason(exc: BaseException) -> BaseException:
    """The failure to report: for contention that outlasted its retries, the last contention error."""
    return exc.__cause__ or exc if isinstance(exc, _StillContended) else exc


def _metadata(m: RawMsg) -> Any:
    try:
        return m.metadata
    except Exception:  # noqa: BLE001 - not a JetStream message
        return None


def _num_delivered(m: RawMsg) -> int:
    return int(getattr(_metadata(m), "num_delivered", 1) or 1)


def _tenant_of(m: RawMsg) -> str:
    parts = m.subject.split(".")
    return parts[1] if len(parts) > 2 else "unknown"
