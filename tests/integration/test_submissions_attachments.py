"""Attachments in the NATS JetStream object store (issue 4): bytes stored before the row that references them,
a collector that never deletes an object whose row is about to commit, and nothing lost to a NATS restart.

Real PostgreSQL (row locks are the point) and a nats-server this test owns (it kills and restarts it)."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from datetime import UTC, datetime, timedelta

import nats
import sqlalchemy as sa

from services.submissions import models
from services.submissions.usecases import objects
from shared.db import make_engine
from shared.devserver import NatsServer
from shared.migrate import upgrade
from shared.settings import Settings
from shared.streams import declare
from tests.support.servers import TestServers
from tests.support.wait import eventually, waiting_on_a_lock

PDF = b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog >>\nendobj\n%%EOF\n"
NOW = timedelta(0)


async def _attach(conn: sa.ext.asyncio.AsyncConnection, digest: str, size: int) -> None:
    await conn.execute(
        models.attachments.insert().values(
            id=str(uuid.uuid4()),
            tenant="soctrang-stnmt",
            submission_id=str(uuid.uuid4()),
            sha256=digest,
            filename="thuyet-minh.pdf",
            file_type="pdf",
            size=size,
            uploaded_by="p-0001",
            uploaded_at=datetime.now(UTC),
        )
    )
    await objects.finish_upload(conn, digest)


async def test_collector_spares_pending_and_committing_uploads_and_nats_restart_loses_nothing(
    test_servers: TestServers, own_nats_server: NatsServer, unique_prefix: str
) -> None:
    url = test_servers.create_database("submissions")
    await asyncio.to_thread(upgrade, "submissions", url)
    engine = make_engine(url)
    settings = Settings(env="test", stream=unique_prefix.upper())
    nc = await nats.connect(own_nats_server.url)
    try:
        await declare(nc.jetstream(), settings)  # streams, consumers and the bucket, as `hoithi streams` does
        store = await objects.open_bucket(nc.jetstream(), settings)

        # 1. Stored, its row not yet written: the pending mark keeps it, even with no grace at all.
        digest = await objects.begin_upload(engine, store, PDF)
        assert digest == hashlib.sha256(PDF).hexdigest()
        assert await objects.collect(engine, store, grace=NOW) == []

        # 2. Its row is being committed while the collector runs, pending protection switched off: the
        #    collector waits on the hash's row lock, then sees the reference.
        async with engine.begin() as conn:
            await _attach(conn, digest, len(PDF))
            collecting = asyncio.create_task(objects.collect(engine, store, grace=NOW, pending_timeout=NOW))

            await eventually(
                lambda: waiting_on_a_lock(engine), timeout=10, message="collector blocked on the row lock"
            )
            assert not collecting.done()
        assert await collecting == []
        assert (await objects.read(store, digest)) == PDF

        # 3. An orphan (bytes with no row: an upload that died) is collected; the referenced one is not.
        orphan = b"%PDF-1.4\norphan\n%%EOF\n"
        await store.put(objects.sha256(orphan), orphan)
        assert await objects.collect(engine, store, grace=NOW) == [objects.sha256(orphan)]
        # ... but not while it is younger than the grace period.
        await store.put(objects.sha256(orphan + b"2"), orphan + b"2")
        assert await objects.collect(engine, store) == []
    finally:
        await nc.close()

    # 4. NATS restarted (killed, even) between upload and download: the bytes come back, same SHA-256.
    await asyncio.to_thread(own_nats_server.kill)
    await asyncio.to_thread(own_nats_server.restart)
    nc = await nats.connect(own_nats_server.url)
    try:
        store = await objects.open_bucket(nc.jetstream(), settings)
        data = await objects.read(store, digest)
        assert hashlib.sha256(data).hexdigest() == digest
        # Once no row references it, it is collected.
        async with engine.begin() as conn:
            await conn.execute(sa.delete(models.attachments).where(models.attachments.c.sha256 == digest))
        assert digest in await objects.collect(engine, store, grace=NOW)
    finally:
        await nc.close()
        await engine.dispose()
