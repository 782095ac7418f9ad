"""The unit of work: one thing a person or an event makes happen — its state, its events, its idempotent answer —
in one transaction, and what runs once that transaction has committed.

Every use case of a service (the application layer, ``services/<svc>/usecases/``) is a function of a
``UnitOfWork`` and a command (a small frozen dataclass saying what is asked and by whom, built by the router or
the handler). It reads and writes through ``uow.conn`` (``uow.rt`` is the service's runtime: copies, settings),
records its facts with ``uow.emit`` (the transactional outbox: a fact commits with the state, or neither does),
reads the clock with ``uow.now()`` when it needs it (after a lock, if the lock decides what "now" means), asks
for work after the commit with ``uow.after_commit`` and refuses with ``shared.errors.DomainError`` (a kind of
refusal, never an HTTP status: ``shared.problems.STATUS_OF_REFUSAL`` maps it, in one place). It never begins,
commits or wakes the relay: ``run`` does, so a router reads

    cmd = review.Reject(tenant, edition, submission_id, body.reason, caller.person_id)
    done = await run(rt, review.reject, cmd, idempotent=Idempotent(scope, idempotency_key, body_json))
    if done.replayed is not None:  # a retry (same Idempotency-Key, same body): the first answer
        return JSONResponse(done.replayed.body, status_code=done.replayed.status)
    return done.value

``run`` opens the transaction; with ``idempotent`` it first looks the key up (a retry is answered with the
stored answer and nothing runs; the same key with another body is a 422) and stores the use case's answer (with
``Idempotent.status``) in the same transaction as the record it describes; it commits; then it wakes the outbox
relay and runs the ``after_commit`` callbacks, in order. A use case that raises rolls everything back — state,
events, the idempotency row — and no callback runs.

Three ways in, one object:

- **one transaction per use case** (``run``, the default), for routes and CLI commands; ``begin`` is its block
  form, for code that is not (yet) one use case function;
- **batched** (``run_batch``): N use cases in one transaction, each under a SAVEPOINT. One that raises rolls
  back only its savepoint (its writes, its events, its idempotency row, its callbacks) and gets its own error
  back; the others commit together — one durable write for all. (``shared.group_commit`` is the intake's
  high-rate form of the same idea: synchronous use cases on one writer thread, finishers per batch.)
- **joined** (``UnitOfWork.joining``): a handler of the consumer (``shared.consumer``), which already owns the
  batch's transaction and wakes the relay after its commit, calls the same use case on its connection — so
  an event handler is "event → use case" exactly as a route is "request → use case".

It also carries the one sequence-guarded upsert every copy uses (``uow.upsert_newer``: the newest fact wins
whatever the order of arrival, in one statement).

Moving a route onto it: the ``engine.begin()`` block's body becomes ``async def verb(uow, cmd)`` (``conn`` →
``uow.conn``, ``rt.outbox.emit(conn, …)`` → ``uow.emit(…)``, ``rt.now()`` → ``uow.now()``, ``Problem(409, …)`` →
``DomainError(Refusal.CONFLICT, …)`` with the same texts and code); the lookup / remember pair becomes
``idempotent=Idempotent(scope, key, body_json, status)``; the trailing ``rt.outbox.committed()`` goes.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, Protocol, TypeVar, cast

import sqlalchemy as sa
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from shared.db import is_contention, is_lost_connection, upsert_newer
from shared.errors import DomainError, Refusal
from shared.events.envelope import Envelope
from shared.idempotency import Idempotency, Stored, request_hash
from shared.outbox import Outbox

T = TypeVar("T")
W = TypeVar("W", bound="Wiring")
C = TypeVar("C")  # a command: what the use case is asked to do (a small frozen dataclass of the service)


class Wiring(Protocol):
    """What a unit of work needs of a service's runtime (``shared.service.Runtime`` has it all)."""

    @property
    def engine(self) -> AsyncEngine: ...
    @property
    def outbox(self) -> Outbox: ...
    @property
    def idempotency(self) -> Idempotency: ...

    def now(self) -> datetime: ...


@dataclass(frozen=True)
class Idempotent:
    """An ``Idempotency-Key`` request: ``scope`` (tenant|caller|route…), the key (None: not idempotent), the
    request body as JSON (None for no body) and the status its first answer had (stored with it)."""

    scope: str
    key: str | None
    body: Any = None
    status: int = 200

    @property
    def digest(self) -> str:
        return request_hash(self.body)


@dataclass(frozen=True)
class Done(Generic[T]):
    """What ``run`` gives back: the use case's ``value``, or — a retry of an answered request — ``replayed``,
    the stored answer (the use case did not run)."""

    value: T | None = None
    replayed: Stored | None = None

    def unwrap(self) -> T:
        """The use case's answer (what a call without ``idempotent``, never a replay, gives)."""
        if self.replayed is not None:
            raise RuntimeError("a replayed answer: the use case did not run")
        return cast(T, self.value)


class UnitOfWork(Generic[W]):
    """One transaction's connection, its clock, its outbox and its after-commit callbacks (see the module)."""

    def __init__(self, rt: W, conn: AsyncConnection, *, joined: bool = False) -> None:
        self.rt = rt  # the service's runtime: its copies, settings, clock
        self.conn = conn
        self.joined = joined
        self.emitted = 0
        self._callbacks: list[Callable[[], Any]] = []

    @classmethod
    def joining(cls, rt: W, conn: AsyncConnection) -> UnitOfWork[W]:
        """A unit of work inside a transaction someone else owns and commits (a consumer's batch): its events
        go to the same outbox, and the owner wakes the relay after its commit. No ``after_commit`` here."""
        return cls(rt, conn, joined=True)

    def now(self) -> datetime:
        """The service's clock, read now (a use case reads it after the lock that orders it, if any)."""
        return self.rt.now()

    async def emit(
        self,
        type_: str,
        data: BaseModel | dict[str, Any],
        *,
        tenant: str,
        subject: str,
        edition: str | None = None,
        time: datetime | None = None,
        causation_id: str | None = None,
        event_id: str | None = None,
        version: int | None = None,
    ) -> Envelope | None:
        """Record one fact in this transaction (``Outbox.emit``; ``time`` defaults to now). With a deterministic
        ``event_id`` already recorded, records nothing and returns None."""
        env = await self.rt.outbox.emit(
            self.conn,
            type_,
            data,
            tenant=tenant,
            subject=subject,
            time=time if time is not None else self.now(),
            edition=edition,
            causation_id=causation_id,
            event_id=event_id,
            version=version,
        )
        if env is not None:
            self.emitted += 1
        return env

    def after_commit(self, callback: Callable[[], Any]) -> None:
        """Run ``callback`` (a plain function) once this unit of work has committed; never if it rolls back."""
        if self.joined:
            raise RuntimeError("a joined unit of work is committed by its owner: no after_commit here")
        self._callbacks.append(callback)

    async def upsert_newer(self, table: sa.Table, values: dict[str, Any]) -> None:
        """Keep the fact with the highest ``sequence`` for its key, in one statement (``db.upsert_newer``)."""
        await upsert_newer(self.conn, table, values)

    async def replayed(self, idempotent: Idempotent | None) -> Stored | None:
        """The stored answer to this request, if it was answered (422 if the key came with another body)."""
        if idempotent is None:
            return None
        return await self.rt.idempotency.lookup(
            self.conn, idempotent.scope, idempotent.key, idempotent.digest
        )

    async def remember(self, idempotent: Idempotent | None, answer: Any) -> None:
        """Store ``answer`` (a Pydantic model is stored as its JSON) as the answer to ``idempotent``."""
        if idempotent is None:
            return
        body = answer.model_dump(mode="json") if isinstance(answer, BaseModel) else answer
        await self.rt.idempotency.remember(
            self.conn,
            idempotent.scope,
            idempotent.key,
            idempotent.digest,
            idempotent.status,
            body,
            self.now(),
        )

    def committed(self) -> None:
        """After the commit: wake the relay, then run the callbacks, in order. The relay is woken even when
        ``emit`` was not called: a helper not yet converted may have emitted through ``rt.outbox`` on
        ``uow.conn`` (a wake with nothing to send costs the relay one query)."""
        self.rt.outbox.committed()
        callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            callback()

    async def _call(
        self, use_case: Callable[[UnitOfWork[W], C], Awaitable[T]], command: C, idempotent: Idempotent | None
    ) -> Done[T]:
        stored = await self.replayed(idempotent)
        if stored is not None:
            return Done(replayed=stored)
        value = await use_case(self, command)
        await self.remember(idempotent, value)
        return Done(value)


@asynccontextmanager
async def begin(rt: W) -> AsyncIterator[UnitOfWork[W]]:
    """A unit of work as a block (for code that is not one use case function, e.g. a CLI's loop): commits at
    the end of the block, then wakes the relay and runs the callbacks; rolls back on an exception."""
    async with rt.engine.begin() as conn:
        uow = UnitOfWork(rt, conn)
        yield uow
    uow.committed()


async def run(
    rt: W,
    use_case: Callable[[UnitOfWork[W], C], Awaitable[T]],
    command: C,
    *,
    idempotent: Idempotent | None = None,
) -> Done[T]:
    """``use_case(uow, command)`` in one transaction (see the module): the stored answer of a retry, or the
    use case's answer once committed.

    Lock, busy, deadlock or serialization contention (``shared.db.is_contention``: on SQLite a writer that
    waited out the busy timeout, on PostgreSQL 40001/40P01) rolled everything back, so the whole unit of work is
    run again, up to ``CONTENTION_ATTEMPTS`` times with a short jittered backoff; then the caller is refused with
    ``Refusal.UNAVAILABLE`` (503, ``Retry-After``) — never a 500 for a busy database, and nothing half-done.

    A connection lost *during the COMMIT* is different: the database may have committed. With ``idempotent``
    the unit is run again (a committed attempt is found as its stored answer); without, running it again could
    apply it twice (a revision counted twice, a second event), so the caller is told that what they asked may
    have been saved (503, ``outcome_unknown``) — to look before asking again."""
    for attempt in range(1, CONTENTION_ATTEMPTS + 1):
        committing = False
        try:
            async with begin(rt) as uow:
                done = await uow._call(use_case, command, idempotent)
                committing = True
            return done
        except Exception as exc:
            if not is_contention(exc):
                raise
            if committing and idempotent is None and is_lost_connection(exc):
                raise outcome_unknown() from exc
            if attempt == CONTENTION_ATTEMPTS:
                raise busy() from exc
            await asyncio.sleep(0.05 * 2**attempt * random.uniform(0.5, 1.5))
    raise AssertionError("unreachable")  # pragma: no cover


CONTENTION_ATTEMPTS = 3
BUSY_RETRY_AFTER = 1  # seconds a client is asked to wait when the database stayed contended


def busy() -> DomainError:
    return DomainError(
        Refusal.UNAVAILABLE,
        f"The database is busy (contended); nothing was saved. Try again in {BUSY_RETRY_AFTER} second.",
        f"Cơ sở dữ liệu đang bận; chưa có gì được lưu. Vui lòng thử lại sau {BUSY_RETRY_AFTER} giây.",
        code="busy",
        headers={"Retry-After": str(BUSY_RETRY_AFTER)},
    )


def outcome_unknown() -> DomainError:
    return DomainError(
        Refusal.UNAVAILABLE,
        "The connection to the database was lost while saving: your change may have been saved. Reload to see "
        "whether it was before you try again.",
        "Mất kết nối tới cơ sở dữ liệu đúng lúc đang lưu: thay đổi của bạn có thể đã được lưu. Vui lòng tải lại "
        "để kiểm tra trước khi thực hiện lại.",
        code="outcome_unknown",
        headers={"Retry-After": str(BUSY_RETRY_AFTER)},
    )


@dataclass(frozen=True)
class Call(Generic[W, C, T]):
    """One use case of a batch, with its command, optionally idempotent."""

    use_case: Callable[[UnitOfWork[W], C], Awaitable[T]]
    command: C
    idempotent: Idempotent | None = None


async def run_batch(rt: W, calls: Sequence[Call[W, Any, Any]]) -> list[Done[Any] | Exception]:
    """Every call in one transaction, each under its own SAVEPOINT: each gets its ``Done`` or the exception it
    raised (its own writes, events, idempotency row and callbacks rolled back; the others' kept). One commit
    for all; then the relay is woken once and the successful calls' callbacks run, in order. A failure of the
    transaction itself (the commit) raises, for every call alike."""
    outcomes: list[Done[Any] | Exception] = []
    async with begin(rt) as uow:
        for call in calls:
            emitted, callbacks = uow.emitted, list(uow._callbacks)
            try:
                async with uow.conn.begin_nested():
                    outcomes.append(await uow._call(call.use_case, call.command, call.idempotent))
            except Exception as exc:  # noqa: BLE001 - the call's own refusal (or failure), answered to it alone
                uow.emitted, uow._callbacks = emitted, callbacks
                outcomes.append(exc)
    return outcomes
