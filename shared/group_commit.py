"""Group commit: many requests' use cases in one transaction, each answered only after that commit.

One commit per request costs a durable write (fsync) and, on SQLite, a turn of the single write lock per
request; at a deadline rush that is the throughput ceiling. ``GroupCommitter`` queues the requests' use cases
to **one writer per process**, which runs up to ``max_batch`` of them in one transaction and answers each
request after the commit — a 201 still means "durable". Each use case runs under its own SAVEPOINT: one that
raises (a 409, a 422) rolls back only its own writes and answers its own error; its batch-mates go on.

**One hop per batch.** Use cases and finishers are plain (synchronous) functions of a synchronous
``sqlalchemy.Connection``: the whole transaction of a batch runs as one call. On SQLite that call runs on the
event loop's own thread, on a synchronous connection to the same file (``shared.db.writer_engine``) holding the
write lock (waited for on the loop, ``shared.db.begin_immediate``); only the COMMIT (the fsync) goes to the
committer's writer thread — one thread hop per batch, instead of one to aiosqlite's thread and back per
statement. (Running the statements in that thread instead was measured slower: every statement releases the
GIL inside SQLite and waits to take it back from the loop, up to the 5 ms switch interval each time.) The
requests' futures are answered on the event loop after the commit.
On PostgreSQL it runs through ``AsyncConnection.run_sync`` on a connection the writer holds from batch to
batch (each statement is still one round trip; no thread; no pool checkout and ping per batch).

A use case may also *stage* work for the end of the batch (``Batch.at_end``): one function per key runs once,
after every use case, with the batch's connection — where batch-wide statements go (``executemany`` inserts,
one counter ``UPDATE … RETURNING`` for the whole batch). It settles each use case's ``Slot`` (its answer or its
refusal); a slot left unsettled is an error of the finisher.

- **Bounded.** ``submit`` refuses at once with ``Overloaded`` when ``max_queue`` requests are waiting: the HTTP
  edge answers 503 with ``Retry-After``, rather than letting latency grow without bound.
- **Never half.** The writer task owns the transaction; a request whose client went away (its task cancelled)
  stops waiting, but the batch it is in commits or rolls back as a whole, with it.
- **Contention** (SQLite busy, PostgreSQL deadlock or serialization failure) retries the whole batch a few
  times; any other failure of the batch (the database is down) answers every request of it with that error.
  ``retry_if`` names more failures that deciding again settles (intake: a unique index that another writer's
  commit filled after this batch read — decided again, the batch sees that row and refuses or answers with it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from shared import metrics
from shared.db import begin_immediate, is_contention, writer_engine

log = logging.getLogger("hoithi.group_commit")

UseCase = Callable[[sa.Connection, "Batch"], Any]
Finisher = Callable[[sa.Connection, "Batch"], None]


class Overloaded(Exception):
    """The writer's queue is full: try again after ``retry_after`` seconds."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"intake queue full; retry after {retry_after}s")
        self.retry_after = retry_after


@dataclass
class Slot:
    """A use case's answer settled at the end of its batch (by a finisher), delivered after the commit."""

    value: Any = None
    error: BaseException | None = None
    settled: bool = False

    def set(self, value: Any) -> None:
        self.value, self.settled = value, True

    def refuse(self, error: BaseException) -> None:
        self.error, self.settled = error, True


@dataclass
class Batch:
    """What the use cases of one transaction share: per-batch caches and the finishers staged for its end."""

    number: int
    size: int
    cache: dict[Any, Any] = field(default_factory=dict)
    _finishers: dict[str, Finisher] = field(default_factory=dict)
    _staged: dict[str, list[Any]] = field(default_factory=dict)

    def at_end(self, key: str, finisher: Finisher, item: Any) -> None:
        """Stage ``item`` for the finisher ``key`` (run once, after every use case of the batch)."""
        self._finishers.setdefault(key, finisher)
        self._staged.setdefault(key, []).append(item)

    def staged(self, key: str) -> list[Any]:
        return self._staged.get(key, [])

    def cached(self, key: Any, load: Callable[[], Any]) -> Any:
        """``load()`` once per batch for ``key``."""
        if key not in self.cache:
            self.cache[key] = load()
        return self.cache[key]


@dataclass
class _Job:
    use_case: UseCase
    future: asyncio.Future[Any]
    savepoint: bool = True


@dataclass
class Stats:
    batches: int = 0
    committed: int = 0
    largest: int = 0
    sizes: list[int] = field(default_factory=list)  # the last few batch sizes (newest last)


class GroupCommitter:
    """One writer per process: queue use cases, run them in batches, each in one transaction."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        max_batch: int = 256,
        max_queue: int = 4096,
        retry_after: int = 1,
        retries: int = 5,
        retry_if: Callable[[BaseException], bool] | None = None,
        name: str = "group-commit",
    ) -> None:
        self.engine = engine
        self.max_batch = max_batch
        self.retry_after = retry_after
        self.retries = retries
        self.name = name
        self.stats = Stats()
        self.max_queue = max_queue
        self.retry_if = retry_if
        self.in_flight = 0  # 1 while a batch is taken from the queue and not yet committed or failed
        self._queue: asyncio.Queue[_Job] = asyncio.Queue()
        self._writer: asyncio.Task[None] | None = None
        self._running = asyncio.Event()
        self._running.set()
        self._holding = 0  # the next batch's first request, held while paused
        self._conn: AsyncConnection | None = None  # PostgreSQL: the writer's own, held between batches
        # SQLite: the batches' transactions run in one thread of their own, on a synchronous engine.
        self._sync: sa.Engine | None = writer_engine(engine)
        self._thread = (
            ThreadPoolExecutor(max_workers=1, thread_name_prefix=name) if self._sync is not None else None
        )

    # ------------------------------------------------------------------ callers
    async def submit(self, use_case: UseCase, *, savepoint: bool = True) -> Any:
        """Run ``use_case(conn, batch)`` (a plain function: see the module) in the next batch; return its answer (or raise its error) after the
        batch committed. Raises ``Overloaded`` at once when the queue is full.

        ``savepoint=False`` for a use case that writes nothing itself and only stages work for a finisher:
        it saves the SAVEPOINT and RELEASE round trips (two statements per request). Such a use case must
        not write before it raises: nothing would roll its writes back alone."""
        self._ensure_writer()
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        future.add_done_callback(
            _retrieve
        )  # an answer nobody waits for any more is not an "unretrieved" error
        if self.waiting >= self.max_queue:
            raise Overloaded(self.retry_after)
        self._queue.put_nowait(_Job(use_case, future, savepoint))
        # shield: a caller that goes away stops waiting; its job stays in the batch, committed or not, whole.
        return await asyncio.shield(future)

    def pause(self) -> None:
        """Hold the writer before its next batch (tests, and an operator draining before maintenance)."""
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    @property
    def waiting(self) -> int:
        """Requests queued and not yet in a batch."""
        return self._queue.qsize() + self._holding

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.cancel()
            with _suppress_cancel():
                await self._writer
            self._writer = None
        if self._thread is not None:
            self._thread.shutdown(wait=True)  # a batch running in it finishes (commits or rolls back) whole
            self._thread = None
        if self._sync is not None:
            self._sync.dispose()
        if self._conn is not None:
            conn, self._conn = self._conn, None
            with contextlib.suppress(Exception):
                await conn.close()

    # ------------------------------------------------------------------ the writer
    def _ensure_writer(self) -> None:
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._run(), name=self.name)

    async def _run(self) -> None:
        while True:
            first = await self._queue.get()
            self._holding = 1
            await self._running.wait()
            self._holding = 0
            jobs = [first]
            while len(jobs) < self.max_batch:
                try:
                    jobs.append(self._queue.get_nowait())
                except asyncio.QueueEmpty:
                    break
            self.in_flight = 1
            try:
                await self._commit(jobs)
            except asyncio.CancelledError:
                for j in jobs:
                    if not j.future.done():
                        j.future.set_exception(RuntimeError("the service is stopping"))
                raise
            except Exception as exc:  # noqa: BLE001 - the batch failed as a whole: every request hears it
                log.warning("%s: batch of %d failed: %r", self.name, len(jobs), exc)
                for j in jobs:
                    if not j.future.done():
                        j.future.set_exception(exc)
            finally:
                self.in_flight = 0

    async def _commit(self, jobs: list[_Job]) -> None:
        attempt = 0
        while True:
            attempt += 1
            self.stats.batches += 1
            batch = Batch(number=self.stats.batches, size=len(jobs))
            started = time.perf_counter()
            try:
                if self._sync is not None:
                    outcomes = await self._sqlite_transaction(jobs, batch)
                else:
                    outcomes = await self._held_transaction(jobs, batch)
            except Exception as exc:
                retry = is_contention(exc) or (self.retry_if is not None and self.retry_if(exc))
                if retry and attempt <= self.retries:
                    metrics.GROUP_COMMIT_RETRIES.labels(self.name).inc()
                    await asyncio.sleep(0.01 * 2**attempt)
                    continue
                raise
            break
        metrics.GROUP_COMMIT_SECONDS.labels(self.name).observe(time.perf_counter() - started)
        metrics.GROUP_COMMIT_SIZE.labels(self.name).observe(len(jobs))
        self.stats.committed += len(jobs)
        self.stats.largest = max(self.stats.largest, len(jobs))
        self.stats.sizes = [*self.stats.sizes[-99:], len(jobs)]
        for job, (result, error) in zip(jobs, outcomes, strict=True):
            if job.future.done():
                continue
            if error is None and isinstance(result, Slot):
                if not result.settled:
                    error = RuntimeError("a staged use case was never settled by its finisher")
                else:
                    result, error = result.value, result.error
            if error is not None:
                job.future.set_exception(error)
            else:
                job.future.set_result(result)

    async def _sqlite_transaction(
        self, jobs: list[_Job], batch: Batch
    ) -> list[tuple[Any, BaseException | None]]:
        """The batch's transaction on SQLite: the write lock waited for on the loop, the statements run on the
        loop's thread (microseconds each in SQLite; a second thread would wait for the GIL at every one while
        the loop serves HTTP), and only the COMMIT — the fsync — in the writer thread, so the loop serves
        requests meanwhile. One thread hop per batch."""
        assert self._sync is not None and self._thread is not None
        conn = await begin_immediate(self._sync)
        try:
            tx = conn.begin()  # adopts the BEGIN IMMEDIATE already issued
            try:
                outcomes = self._in_transaction(conn, jobs, batch)
            except BaseException:
                tx.rollback()
                raise
            committing = asyncio.get_running_loop().run_in_executor(self._thread, tx.commit)
            try:
                await asyncio.shield(committing)
            except asyncio.CancelledError:
                # stopping: the COMMIT runs on in its thread; let it end (whole, either way) before the
                # connection goes back to the pool
                with contextlib.suppress(Exception):
                    await committing
                raise
            except Exception:
                if tx.is_active:
                    tx.rollback()
                raise
            return outcomes
        finally:
            conn.close()

    async def _held_transaction(
        self, jobs: list[_Job], batch: Batch
    ) -> list[tuple[Any, BaseException | None]]:
        """The batch's transaction on PostgreSQL, on the writer's own connection, held from batch to batch.

        A connection from the pool costs each batch a checkout and its ping (``pool_pre_ping``): one more
        round trip, and one more turn of the event loop's HTTP work before the batch can go on. A held one is
        not pinged: one the database dropped between batches fails the batch's first statement, and is
        replaced for the retry (``is_contention``: an invalidated connection), as the pool would have done."""
        conn = self._conn
        if conn is None:
            conn = self._conn = await self.engine.connect()
        try:
            tx = await conn.begin()
            outcomes = await conn.run_sync(self._in_transaction, jobs, batch)
            await tx.commit()
            return outcomes
        except BaseException:
            self._conn = None  # a fresh connection for the next attempt, whatever went wrong with this one
            with contextlib.suppress(Exception):
                await conn.close()
            raise

    @staticmethod
    def _in_transaction(
        conn: sa.Connection, jobs: list[_Job], batch: Batch
    ) -> list[tuple[Any, BaseException | None]]:
        """Every use case under its savepoint, then the finishers; each use case's (answer, refusal)."""
        outcomes: list[tuple[Any, BaseException | None]] = []
        for job in jobs:
            savepoint = conn.begin_nested() if job.savepoint else None
            try:
                result = job.use_case(conn, batch)
            except Exception as exc:  # the use case's own refusal
                if savepoint is not None:
                    savepoint.rollback()
                if is_contention(exc):
                    raise
                outcomes.append((None, exc))
            else:
                if savepoint is not None:
                    savepoint.commit()
                outcomes.append((result, None))
        for finisher in batch._finishers.values():
            finisher(conn, batch)
        return outcomes


def _retrieve(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


class _suppress_cancel:
    def __enter__(self) -> None:
        return None

    def __exit__(self, et: type[BaseException] | None, *_: object) -> bool:
        return et is asyncio.CancelledError
