"""Database plumbing every service shares: one engine per process, and the tables of the backbone.

Each service has its own database and its own ``MetaData``; ``backbone_tables(metadata)`` adds the outbox,
the inbox (which is also the store of facts a consumer folds), the per-aggregate sequence counters, the
idempotency keys and the periodic jobs' leases to it, so one Alembic history per service creates them all.

SQLite (the embedded default) runs in WAL mode with ``synchronous=FULL`` — an acknowledged receipt must
survive a power cut — and write transactions begin IMMEDIATE so two writers queue instead of failing.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
import weakref
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.ext.compiler import compiles

from shared import metrics

T = TypeVar("T")


class UtcDateTime(sa.types.TypeDecorator[datetime]):
    """An aware instant stored in UTC. SQLite keeps no offset, so every instant is normalised on the way in
    and comes back aware (UTC) on the way out; comparisons are then right on both databases."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: every instant must carry an offset")
        v = value.astimezone(UTC)
        return v.replace(tzinfo=None) if dialect.name == "sqlite" else v

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class greatest(sa.sql.functions.GenericFunction[Any]):
    """The largest of its arguments, NULLs ignored (the first must not be NULL): ``greatest`` on PostgreSQL;
    SQLite's ``max`` of several arguments is NULL when any is, so each later one falls back to the first."""

    inherit_cache = True


@compiles(greatest, "sqlite")
def _greatest_sqlite(element: greatest, compiler: Any, **kw: Any) -> str:
    first, *others = [compiler.process(arg, **kw) for arg in element.clauses]
    return "max(" + ", ".join([first, *(f"coalesce({o}, {first})" for o in others)]) + ")"


def is_sqlite(url: str | sa.URL) -> bool:
    return make_url(str(url) if not isinstance(url, sa.URL) else url).get_backend_name() == "sqlite"


def make_engine(url: str, *, pool_size: int = 10) -> AsyncEngine:
    u = make_url(url)
    if u.get_backend_name() == "sqlite":
        if u.database and u.database != ":memory:":
            Path(u.database).parent.mkdir(parents=True, exist_ok=True)
        sync = create_async_engine(
            url, connect_args={"timeout": 30}, execution_options={READ_ONLY: True}
        ).sync_engine
        _sqlite_setup(sync)
        return SqliteEngine(sync)
    return create_async_engine(url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)


class SqliteEngine(AsyncEngine):
    """An engine on a SQLite file whose ``connect()`` is a reader and whose ``begin()`` is a writer.

    SQLite has one writer at a time. A transaction that will write must take the write lock when it begins
    (``BEGIN IMMEDIATE``: a deferred one that later writes fails at once whenever another writer committed
    meanwhile); one that only reads must not take it, or every API read queues behind the consumer's batch and,
    past the busy timeout, fails ("database is locked" — the rush bench's 500s). So ``engine.connect()`` (the
    reads: routes, the caller's directory entry, the clock's looks) begins DEFERRED — in WAL mode a snapshot that
    never blocks and is never blocked by the writer — and ``engine.begin()`` (every unit of work, every consumer
    batch) begins IMMEDIATE. Code that writes on a ``connect()`` connection must begin it as a writer
    (``writing(conn)``)."""

    @contextlib.asynccontextmanager
    async def begin(self) -> AsyncIterator[AsyncConnection]:
        async with self.connect() as conn:
            await writing(conn)
            async with conn.begin():
                yield conn

    def execution_options(self, **opt: Any) -> AsyncEngine:
        return SqliteEngine(self.sync_engine.execution_options(**opt))


async def writing(conn: AsyncConnection) -> AsyncConnection:
    """``conn`` (not yet in a transaction) will write: on SQLite its transaction begins IMMEDIATE."""
    return await conn.execution_options(**{READ_ONLY: False})


READ_ONLY = "hoithi_read_only"
BEGUN = "hoithi_begun"  # execution option: BEGIN IMMEDIATE was already issued on the DBAPI connection


def _sqlite_setup(engine: sa.Engine) -> None:
    """WAL, ``synchronous=FULL``, a busy timeout and foreign keys on every connection; writers BEGIN IMMEDIATE."""

    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _sqlite_begin(conn: Any) -> None:
        # A reader (``reading(engine)``) begins DEFERRED: in WAL mode it sees a snapshot and never takes
        # the write lock, so it does not queue the writers (intake's group commit) behind it.
        options = conn.get_execution_options()
        if options.get(BEGUN, False):
            return  # the caller took the write lock itself (``begin_immediate``)
        conn.exec_driver_sql("BEGIN" if options.get(READ_ONLY, False) else "BEGIN IMMEDIATE")


def _sync_sqlite(engine: AsyncEngine, **pool: Any) -> sa.Engine | None:
    """A synchronous engine on ``engine``'s SQLite file, set up the same way (WAL, ``synchronous=FULL``, BEGIN
    as ``_sqlite_setup`` says); None for any other database and for ``:memory:`` (another connection would
    not see it)."""
    u = engine.url
    if u.get_backend_name() != "sqlite" or not u.database or u.database == ":memory:":
        return None
    sync = sa.create_engine(
        u.set(drivername="sqlite"), connect_args={"timeout": 30, "check_same_thread": False}, **pool
    )
    _sqlite_setup(sync)
    return sync


def writer_engine(engine: AsyncEngine) -> sa.Engine | None:
    """For SQLite: a synchronous engine on the same file, set up the same way (WAL, ``synchronous=FULL``), for a
    writer that runs a whole transaction's statements on the event loop's own thread (``shared.group_commit``):
    no hop to aiosqlite's thread per statement, no second thread waiting for the GIL at each one. Its
    connections never wait for a lock inside SQLite (``busy_timeout=0``: a wait there would block the loop,
    and with it the aiosqlite connection holding the lock): ``begin_immediate`` waits on the loop instead. None
    for any other database (and for ``:memory:``, which another connection would not see)."""
    sync = _sync_sqlite(engine, poolclass=sa.pool.SingletonThreadPool)
    if sync is None:
        return None

    @event.listens_for(sync, "connect")
    def _no_busy_wait(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.execute("PRAGMA busy_timeout=0")

    return sync


# Per pool of a SQLite engine (shared by its ``execution_options`` copies): the synchronous engine its heavy
# reads run on (``read_off_loop``).
_READERS: weakref.WeakKeyDictionary[Any, sa.Engine] = weakref.WeakKeyDictionary()


def _reader_engine(engine: AsyncEngine) -> sa.Engine | None:
    key = engine.sync_engine.pool
    found = _READERS.get(key)
    if found is None:
        found = _sync_sqlite(engine)
        if found is None:
            return None
        _READERS[key] = found = found.execution_options(**{READ_ONLY: True})
    return found


async def read_off_loop(engine: AsyncEngine, read: Callable[[sa.Connection], T]) -> T:
    """``read(conn)`` — its statements and the Python work on their rows — in one transaction that only reads,
    and on SQLite wholly in a worker thread, on a synchronous connection to the same file (a snapshot, DEFERRED:
    it never waits for the writer and never holds it up).

    For a read whose rows grow with the contest (participation: a row per assignment). Through aiosqlite, its
    rows are turned into Python objects on the event loop, which then serves nothing else — the consumer's
    statements, one hop to aiosqlite's thread each, wait behind every such stretch (measured in
    ``bench/RESULTS.md``, session 24: 20,000 assignments read back to back cut a consumer's statements to a
    quarter). In a thread, the loop gets the GIL back at each switch interval. On PostgreSQL ``read`` runs on
    the loop (``run_sync``) as before: asyncpg builds its rows in C (not measured against this)."""
    sync = _reader_engine(engine)
    if sync is None:
        async with reading(engine).connect() as conn:
            return await conn.run_sync(read)

    def run() -> T:
        with sync.connect() as conn:
            return read(conn)

    return await asyncio.to_thread(run)


async def begin_immediate(engine: sa.Engine, *, timeout: float = 30.0) -> sa.Connection:
    """A connection of ``writer_engine(…)`` holding SQLite's write lock (``BEGIN IMMEDIATE``), waited for on
    the event loop (short sleeps, up to ``timeout`` — the other connections' busy timeout) rather than inside
    SQLite. Its transaction is begun: ``conn.begin()`` adopts it."""
    conn = engine.connect().execution_options(**{BEGUN: True})
    raw = conn.connection.dbapi_connection
    assert raw is not None
    deadline = time.monotonic() + timeout
    delay = 0.0005
    try:
        while True:
            try:
                raw.execute("BEGIN IMMEDIATE")
                return conn
            except Exception as exc:  # busy is retried; anything else is the caller's
                if not is_contention(exc) or time.monotonic() > deadline:
                    raise
            metrics.SQLITE_LOCK_WAITS.inc()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.01)
    except BaseException:
        conn.close()
        raise


def reading(engine: AsyncEngine) -> AsyncEngine:
    """The same engine (same pool) for transactions that only read: on SQLite they begin DEFERRED instead of
    IMMEDIATE, so they take no write lock. A transaction begun through it must not write (SQLite would refuse
    the upgrade with "database is locked" whenever another writer is active)."""
    return engine.execution_options(**{READ_ONLY: True})


@dataclass(frozen=True)
class Backbone:
    outbox: sa.Table
    inbox: sa.Table
    sequences: sa.Table
    idempotency: sa.Table
    leases: sa.Table


def backbone_tables(metadata: sa.MetaData) -> Backbone:
    outbox = sa.Table(
        "outbox",
        metadata,
        sa.Column("position", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(36), nullable=False, unique=True),
        sa.Column("nats_subject", sa.String(300), nullable=False),
        sa.Column("event_type", sa.String(100), nullable=False),
        sa.Column("payload", sa.LargeBinary, nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("published_at", UtcDateTime(), nullable=True),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_attempt_at", UtcDateTime(), nullable=True),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Index("ix_outbox_unpublished", "published_at", "position"),
    )
    inbox = sa.Table(
        "inbox",
        metadata,
        # The key has no consumer version: a new version replaying the stream skips what was applied.
        sa.Column("purpose", sa.String(100), primary_key=True),
        sa.Column("event_id", sa.String(36), primary_key=True),
        sa.Column("event_type", sa.String(100), nullable=False),
        sa.Column("tenant", sa.String(100), nullable=False),
        sa.Column("subject", sa.String(200), nullable=False),
        sa.Column("sequence", sa.Integer, nullable=False),
        sa.Column("time", UtcDateTime(), nullable=False),
        sa.Column("envelope", sa.LargeBinary, nullable=False),
        sa.Column("applied_at", UtcDateTime(), nullable=False),
        sa.Index("ix_inbox_subject", "purpose", "subject", "sequence"),
    )
    sequences = sa.Table(
        "event_sequences",
        metadata,
        sa.Column("subject", sa.String(200), primary_key=True),
        sa.Column("last", sa.Integer, nullable=False),
    )
    idempotency = sa.Table(
        "idempotency_keys",
        metadata,
        sa.Column("scope", sa.String(200), primary_key=True),  # tenant|person|route
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("status", sa.Integer, nullable=False),
        sa.Column("body", sa.LargeBinary, nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
    )
    # One row per periodic job: who runs it in this deployment, until when, and the fencing generation
    # (shared/lease.py).
    leases = sa.Table(
        "leases",
        metadata,
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("holder", sa.String(200), nullable=False),
        sa.Column("generation", sa.Integer, nullable=False),
        sa.Column("expires_at", UtcDateTime(), nullable=False),
        sa.Column("acquired_at", UtcDateTime(), nullable=False),
    )
    return Backbone(outbox, inbox, sequences, idempotency, leases)


def _insert(conn: AsyncConnection, table: sa.Table) -> Any:
    """``INSERT`` in the dialect of ``conn``: PostgreSQL and SQLite both speak ``ON CONFLICT``."""
    return _dialect_insert(conn.dialect.name)(table)


def _dialect_insert(dialect: str) -> Callable[[sa.Table], Any]:
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert


# Hot statements are built once per process and run with their values as parameters
# (``conn.execute(stmt, row)``): building ``insert(t).values(row)`` or ``select(…).where(c == value)`` at each
# call — a bind parameter made for every value, the statement's cache key computed again — costs about as much
# as running it (``bench/RESULTS.md``, session 20: an inbox row 310 → 180 µs of CPU on SQLite).


@functools.cache
def _prepared_insert_ignore(dialect: str, table: sa.Table) -> Any:
    return _dialect_insert(dialect)(table).on_conflict_do_nothing()


async def insert_all_if_absent(conn: AsyncConnection, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    """INSERT … ON CONFLICT DO NOTHING of several rows (the same columns): one executemany of the statement built
    once per table and dialect — a multi-row ``VALUES`` is compiled again at every call, for every row."""
    await conn.execute(_prepared_insert_ignore(conn.dialect.name, table), rows)


async def insert_if_absent(conn: AsyncConnection, table: sa.Table, row: dict[str, Any]) -> bool:
    """INSERT … ON CONFLICT DO NOTHING of one row; whether it was inserted. The statement is built once per
    table and dialect and ``row`` passed as its parameters, so a value cannot be an SQL expression."""
    res = await conn.execute(_prepared_insert_ignore(conn.dialect.name, table), row)
    return bool(res.rowcount)


@functools.cache
def _excluded(table: sa.Table) -> Any:
    """The columns of ``excluded`` (the row being inserted) for ``table``'s upserts, made once. The SQL is the
    same as the statement's own ``Insert.excluded``, but that one is a new alias per statement — a copy of every
    column, ~70 objects in reference cycles — which at intake's rate filled the garbage collector's young
    generation with ~23,000 cyclic objects a second (measured in ``bench/intake.py``) and made its collections
    long pauses."""
    return sa.alias(table, name="excluded").c


def upsert(
    conn: AsyncConnection,
    table: sa.Table,
    values: dict[str, Any] | list[dict[str, Any]],
    *,
    key: Sequence[str] | None = None,
    set_: dict[str, Any] | Callable[[Any], dict[str, Any]] | None = None,
    where: Callable[[Any], Any] | None = None,
) -> Any:
    """INSERT … ON CONFLICT (key) DO UPDATE SET … [WHERE …] in the dialect of ``conn``: one statement, so no
    other writer comes between a read and a write (statement, not executed; add ``.returning`` at will).
    ``values`` is one row or several (distinct keys, the same columns: one multi-row statement; on PostgreSQL
    it locks their rows in the order given).

    ``key`` defaults to the primary key; ``set_`` to every other column of ``values`` taken from the row
    being inserted, or is a dict of expressions, or a function of ``excluded`` (the row being inserted)
    returning one; ``where`` is a function of ``excluded`` deciding whether the stored row is overwritten."""
    keys = list(key) if key is not None else [c.name for c in table.primary_key.columns]
    stmt = _insert(conn, table).values(values)
    excluded = _excluded(table)
    if set_ is None:
        columns = values[0] if isinstance(values, list) else values
        changes = {c: excluded[c] for c in columns if c not in keys}
    elif callable(set_):
        changes = set_(excluded)
    else:
        changes = set_
    return stmt.on_conflict_do_update(
        index_elements=keys, set_=changes, where=where(excluded) if where is not None else None
    )


@functools.cache
def _prepared_upsert(dialect: str, table: sa.Table, update: tuple[str, ...], newer: bool) -> Any:
    excluded = _excluded(table)
    return _dialect_insert(dialect)(table).on_conflict_do_update(
        index_elements=[c.name for c in table.primary_key.columns],
        set_={c: excluded[c] for c in update},
        where=table.c.sequence < excluded.sequence if newer else None,
    )


async def upsert_row(
    conn: AsyncConnection,
    table: sa.Table,
    row: dict[str, Any] | list[dict[str, Any]],
    *,
    update: Sequence[str],
) -> None:
    """INSERT ``row`` … ON CONFLICT (the primary key) DO UPDATE SET its ``update`` columns: the statement built
    once per table and columns, ``row`` passed as its parameters (values, not SQL expressions: ``upsert``).
    Several rows (the same columns): one executemany, which on PostgreSQL locks their rows in the order given."""
    await conn.execute(_prepared_upsert(conn.dialect.name, table, tuple(update), False), row)


async def upsert_newer(conn: AsyncConnection, table: sa.Table, values: dict[str, Any]) -> int:
    """Keep the fact with the highest ``sequence`` for its key (the primary key), whatever the order in which
    facts and writers arrive: INSERT … ON CONFLICT DO UPDATE … WHERE stored.sequence < excluded.sequence.
    Returns the number of rows written (0: a newer fact is kept).

    One statement: on PostgreSQL a second writer waits on the first one's row (or key) and then re-checks the
    condition against the committed row; on SQLite writers are serial. A read-then-write can instead
    overwrite a newer committed row with the older fact it read before. Built once per table and columns."""
    keys = {c.name for c in table.primary_key.columns}
    stmt = _prepared_upsert(conn.dialect.name, table, tuple(c for c in values if c not in keys), True)
    return int((await conn.execute(stmt, values)).rowcount)


def _no_null(equal: dict[str, Any]) -> tuple[str, ...]:
    """The columns of an equality condition; a None among its values is refused: a bound ``= NULL`` is never
    true, where ``column == None`` built at the call meant ``IS NULL``."""
    if any(v is None for v in equal.values()):
        raise ValueError(
            f"None in an equality condition on {sorted(k for k, v in equal.items() if v is None)}"
        )
    return tuple(equal)


@functools.cache
def _select_where(table: sa.Table, equal: tuple[str, ...], order_by: tuple[str, ...]) -> Any:
    where = (table.c[c] == sa.bindparam(c) for c in equal)
    return sa.select(table).where(*where).order_by(*(table.c[c] for c in order_by))


@functools.cache
def _delete_where(table: sa.Table, equal: tuple[str, ...]) -> Any:
    return sa.delete(table).where(*(table.c[c] == sa.bindparam(c) for c in equal))


@functools.cache
def _update_where(table: sa.Table, equal: tuple[str, ...], columns: tuple[str, ...]) -> Any:
    # a SET parameter may not share its column's name with a WHERE one: both are named apart
    where = (table.c[c] == sa.bindparam(f"w_{c}") for c in equal)
    return sa.update(table).where(*where).values({c: sa.bindparam(f"v_{c}") for c in columns})


async def select_rows(
    conn: AsyncConnection, table: sa.Table, *, order_by: Sequence[str] = (), **equal: Any
) -> Sequence[sa.Row[Any]]:
    """``SELECT * FROM table WHERE column = value …`` (each keyword a column) ``ORDER BY order_by``, built once
    per table and columns (hot statements, above)."""
    return (await conn.execute(_select_where(table, _no_null(equal), tuple(order_by)), equal)).all()


async def delete_rows(conn: AsyncConnection, table: sa.Table, **equal: Any) -> int:
    """``DELETE FROM table WHERE column = value …`` (each keyword a column), built once per table and columns."""
    return int((await conn.execute(_delete_where(table, _no_null(equal)), equal)).rowcount or 0)


async def update_rows(
    conn: AsyncConnection, table: sa.Table, where: dict[str, Any], values: dict[str, Any]
) -> int:
    """``UPDATE table SET values WHERE column = value …`` (``where``: columns and values; ``values``: plain
    values, not SQL expressions), built once per table and columns. The number of rows updated."""
    params = {f"w_{c}": v for c, v in where.items()} | {f"v_{c}": v for c, v in values.items()}
    stmt = _update_where(table, _no_null(where), tuple(values))
    return int((await conn.execute(stmt, params)).rowcount or 0)


# How a failed consumer transaction is classified (ARCHITECTURE.md, reliability 3). Not by the exception's type:
# an OSError, a TimeoutError or an OperationalError ("no such table", "too many SQL variables") raised while the
# database answers is a handler failure, and holding the batch for it would stall the consumer forever. So:
# 1. the database is *probed* (a trivial query on a fresh connection, short timeout): no answer is an outage —
#    the batch is held, no delivery spent, readiness red;
# 2. it answers, and the failure is contention — SQLite busy/locked, PostgreSQL serialization failure (40001),
#    deadlock (40P01), lock not available (55P03) — or a pooled connection found dead: retried in place,
#    bounded, with backoff, without a nak;
# 3. it answers, and anything else: a handler failure — nak with a growing delay, dead-letter at the last
#    delivery.

CONTENTION_SQLSTATES = frozenset({"40001", "40P01", "55P03"})
_SQLITE_CONTENTION = ("database is locked", "database table is locked", "database is busy")
_SQLITE_BUSY, _SQLITE_LOCKED = 5, 6


def _causes(exc: BaseException) -> list[BaseException]:
    """``exc``, the driver error SQLAlchemy wraps (``orig``) and the explicit causes, without cycles."""
    seen: list[BaseException] = []
    todo: list[BaseException | None] = [exc]
    while todo:
        e = todo.pop()
        if e is None or any(e is s for s in seen):
            continue
        seen.append(e)
        todo += [getattr(e, "orig", None), e.__cause__]
    return seen


def is_contention(exc: BaseException) -> bool:
    """True when ``exc`` is lock, busy, deadlock or serialization contention: the same work can succeed if
    retried as it is (a statement that is wrong fails again, whatever the wait)."""
    if is_lost_connection(exc):
        return True  # a pooled connection died (a server restart); the pool makes a fresh one
    for e in _causes(exc):
        code = getattr(e, "sqlstate", None) or getattr(e, "pgcode", None)
        if isinstance(code, str) and code in CONTENTION_SQLSTATES:
            return True
        if getattr(e, "sqlite_errorcode", None) in (_SQLITE_BUSY, _SQLITE_LOCKED):
            return True
        if type(e).__module__.startswith("sqlite3") and any(m in str(e) for m in _SQLITE_CONTENTION):
            return True
    return False


def is_lost_connection(exc: BaseException) -> bool:
    """True when the connection died under ``exc`` (a server restart, a network cut): what it was doing was
    rolled back — unless it was the COMMIT, whose outcome the client then cannot know."""
    return any(isinstance(e, sa.exc.DBAPIError) and e.connection_invalidated for e in _causes(exc))


def is_unique_violation(exc: BaseException) -> bool:
    """True when ``exc`` is a unique index refusing a row (PostgreSQL 23505, SQLite ``UNIQUE constraint
    failed``): for work decided on reads made before another writer's commit filled that index, deciding
    again sees the row (``shared.group_commit``'s ``retry_if``)."""
    for e in _causes(exc):
        if (getattr(e, "sqlstate", None) or getattr(e, "pgcode", None)) == "23505":
            return True
        if type(e).__module__.startswith("sqlite3") and "UNIQUE constraint failed" in str(e):
            return True
    return False


class DatabaseProbe:
    """Does the database answer? A trivial query on a *fresh* connection (never a pooled one, which can be
    broken while the server is fine, or fine while new connections are refused), bounded by ``timeout``."""

    def __init__(self, engine: AsyncEngine, *, timeout: float = 3.0) -> None:
        self.timeout = timeout
        self._sqlite = engine.dialect.name == "sqlite"
        connect_args: dict[str, Any] = {"timeout": timeout}
        # NullPool: each probe opens its own connection and closes it.
        self._engine = create_async_engine(engine.url, poolclass=sa.pool.NullPool, connect_args=connect_args)

    async def answers(self) -> bool:
        # SQLite: reading the schema needs the file itself (a bare SELECT 1 would succeed without it).
        query = "SELECT count(*) FROM sqlite_master" if self._sqlite else "SELECT 1"
        try:
            async with asyncio.timeout(self.timeout):
                async with self._engine.connect() as conn:
                    await conn.exec_driver_sql(query)
        except Exception as exc:  # noqa: BLE001 - whatever it was, the database did not answer
            return is_contention(exc)  # it answered "busy": it is there
        return True

    async def dispose(self) -> None:
        await self._engine.dispose()
