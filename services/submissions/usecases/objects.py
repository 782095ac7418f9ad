"""The object store adapter: attachments' bytes in a NATS JetStream object store, named by SHA-256, and the
collector of orphans. The use cases (``usecases/initiatives.py``) store and read through it.

Order of an upload (reliability rule 5 — no row ever points to a missing file):
1. ``stored_objects`` row for the hash with ``pending_since`` = now, committed (the collector now keeps it);
2. the bytes are put into the object store under the hash (always put: a collector may have just deleted it);
3. the ``attachments`` row and ``pending_since = NULL`` commit together.
The collector deletes an object only while holding that hash's ``stored_objects`` row lock, and only if no
attachment references it, no upload is pending on it (younger than ``pending_timeout``) and it is older than
``grace``. Step 1 of a concurrent upload of the same bytes waits for that lock, then puts the bytes again.
One replica of the deployment collects, the holder of the collector's lease (shared/lease.py); each of its
transactions is fenced by the lease's generation, so a replica that stalled past its lease deletes nothing.

The bucket is declared with the streams in ``shared/streams.py`` (``hoithi streams``); the service never
creates it, and stays not-ready until it exists.

While NATS is away it refuses with ``Refusal.UNAVAILABLE`` (``unavailable``), which the API answers 503 with
``Retry-After``: nothing was stored, try again later.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from nats.errors import Error as NatsError
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError, ObjectNotFoundError
from nats.js.object_store import ObjectStore
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.submissions import models
from shared.errors import DomainError, Refusal
from shared.lease import Lease, fenced_begin, periodic
from shared.settings import Settings
from shared.streams import attachments_bucket

log = logging.getLogger("hoithi.submissions.objects")

# What the object store raises while NATS is away (a reconnecting client times out or refuses the request).
BROKER_AWAY: tuple[type[BaseException], ...] = (NatsError, TimeoutError, asyncio.TimeoutError, OSError)

PENDING_TIMEOUT = timedelta(hours=1)  # an upload request never lives this long
GRACE = timedelta(minutes=10)


def bucket_name(settings: Settings) -> str:
    """One bucket per deployment, beside its event stream (tests' unique stream names keep them apart)."""
    return attachments_bucket(settings)


RETRY_AFTER = 10  # seconds a client is asked to wait when the object store cannot be reached


def unavailable() -> DomainError:
    """503 with ``Retry-After``: the bytes go to the JetStream object store first, so an upload (or a download)
    waits for NATS — while receipts of reports and initiatives whose attachments are stored go on (outbox)."""
    return DomainError(
        Refusal.UNAVAILABLE,
        "Attachments cannot be stored or read right now (the message broker is unreachable); "
        f"nothing was saved. Try again in {RETRY_AFTER} seconds.",
        "Hiện chưa thể lưu hoặc đọc tệp đính kèm (máy chủ truyền tin tạm thời không kết nối được); "
        f"chưa có gì được lưu. Vui lòng thử lại sau {RETRY_AFTER} giây.",
        code="attachments_unavailable",
        headers={"Retry-After": str(RETRY_AFTER)},
    )


async def store_of(rt: Any) -> ObjectStore:
    """The runtime's handle on the bucket (declared by ``hoithi streams``); ``unavailable()`` while NATS is
    away."""
    if rt.broker is None or not rt.nc.is_connected:
        raise unavailable()
    store = rt.extra.get("attachments")
    if store is None:
        try:
            store = rt.extra["attachments"] = await open_bucket(rt.nc.jetstream(), rt.settings)
        except BROKER_AWAY as exc:
            raise unavailable() from exc
    return store  # type: ignore[no-any-return]


async def open_bucket(js: JetStreamContext, settings: Settings) -> ObjectStore:
    """The bucket ``hoithi streams`` declared (the service starts only once it exists: see readiness)."""
    return await js.object_store(bucket_name(settings))


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def _lock_object(conn: AsyncConnection, digest: str) -> None:
    """Hold the hash's row lock (PostgreSQL row lock; SQLite: the write lock) until commit."""
    t = models.stored_objects
    if conn.dialect.name == "postgresql":
        await conn.execute(sa.select(t.c.sha256).where(t.c.sha256 == digest).with_for_update())
    else:
        await conn.execute(sa.update(t).where(t.c.sha256 == digest).values(sha256=t.c.sha256))


async def begin_upload(engine: AsyncEngine, store: ObjectStore, data: bytes) -> str:
    """Steps 1 and 2: mark the hash pending, then store the bytes. Returns the hash."""
    digest = sha256(data)
    t = models.stored_objects
    now = datetime.now(UTC)
    async with engine.begin() as conn:
        await _lock_object(conn, digest)
        if (await conn.execute(sa.select(t.c.sha256).where(t.c.sha256 == digest))).first() is None:
            await conn.execute(
                t.insert().values(sha256=digest, size=len(data), pending_since=now, stored_at=now)
            )
        else:
            await conn.execute(sa.update(t).where(t.c.sha256 == digest).values(pending_since=now))
    try:
        await store.put(digest, data)
    except BROKER_AWAY as exc:  # the pending mark stays: the collector forgets it after PENDING_TIMEOUT
        raise unavailable() from exc
    return digest


async def finish_upload(conn: AsyncConnection, digest: str) -> None:
    """Step 3, inside the transaction that inserts the attachment row."""
    t = models.stored_objects
    await conn.execute(sa.update(t).where(t.c.sha256 == digest).values(pending_since=None))


async def read(store: ObjectStore, digest: str) -> bytes:
    try:
        res = await store.get(digest)
    except (NotFoundError, ObjectNotFoundError):
        raise
    except BROKER_AWAY as exc:
        raise unavailable() from exc
    return res.data or b""


def _parse_mtime(value: str | None) -> datetime | None:
    """The server's RFC 3339 time with nanoseconds (``2026-11-30T00:35:28.123456789Z``), to microseconds."""
    m = re.match(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:\d{2})$", value or "")
    if m is None:
        return None
    frac = (m.group(2) or "0")[:6].ljust(6, "0")
    tz = "+00:00" if m.group(3) == "Z" else m.group(3)
    return datetime.fromisoformat(f"{m.group(1)}.{frac}{tz}")


async def collect(
    engine: AsyncEngine,
    store: ObjectStore,
    *,
    grace: timedelta = GRACE,
    pending_timeout: timedelta = PENDING_TIMEOUT,
    lease: Lease | None = None,
) -> list[str]:
    """Delete objects no attachment references (see the module docstring), each in a transaction fenced by
    ``lease`` (``LeaseLost``: that one deleted nothing). Returns the hashes deleted."""
    try:
        infos = await store.list(ignore_deletes=True)
    except NotFoundError:  # an empty bucket
        return []
    now = datetime.now(UTC)
    deleted = []
    s, a = models.stored_objects, models.attachments
    for info in infos:
        digest = info.name
        mtime = _parse_mtime(info.mtime)
        if mtime is not None and now - mtime < grace:
            continue
        async with fenced_begin(engine, lease) as conn:
            await _lock_object(conn, digest)
            row = (await conn.execute(sa.select(s.c.pending_since).where(s.c.sha256 == digest))).first()
            if (
                row is not None
                and row.pending_since is not None
                and now - row.pending_since < pending_timeout
            ):
                continue
            if (
                await conn.execute(sa.select(a.c.id).where(a.c.sha256 == digest).limit(1))
            ).first() is not None:
                continue
            try:
                await store.delete(digest)
            except (ObjectNotFoundError, NotFoundError):
                pass
            await conn.execute(sa.delete(s).where(s.c.sha256 == digest))
        deleted.append(digest)
    if deleted:
        log.info("collected %d unreferenced objects", len(deleted))
    return deleted


COLLECTOR_LEASE = "submissions-attachment-collector"
COLLECT_EVERY = 300.0  # seconds between passes of the collector


async def collector_job(rt: object) -> None:
    """Background: collect unreferenced attachments every few minutes, in the replica holding the lease."""
    from shared.service import Runtime

    assert isinstance(rt, Runtime)
    lease = rt.extra["collector_lease"] = Lease(
        rt.backbone.leases, COLLECTOR_LEASE, ttl=rt.settings.lease_ttl
    )

    async def one_pass() -> float:
        await collect(rt.engine, await store_of(rt), lease=lease)
        return COLLECT_EVERY

    def failed(exc: Exception, failures: int) -> float:  # NATS or the database away: the next round
        log.warning("collecting attachments failed: %r", exc)
        return COLLECT_EVERY

    await periodic(rt.engine, lease, one_pass, standby=rt.settings.lease_ttl / 5, on_error=failed)
