"""The container tier's own servers: a paused PostgreSQL container is an outage that ends when it is unpaused,
and a restarted NATS container comes back on the same host port, so a connected client just reconnects."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import asyncpg
import nats
import pytest
from nats.js.api import StorageType, StreamConfig

from shared.devserver import free_port
from tests.support.servers import (
    ContainerNats,
    container_tier_skip_reason,
    postgres_container_url,
    start_postgres_container,
)
from tests.support.wait import eventually

_WHY_NOT = container_tier_skip_reason()
pytestmark = [pytest.mark.fault, pytest.mark.skipif(bool(_WHY_NOT), reason=_WHY_NOT or "-")]


@pytest.fixture
def paused_postgres() -> Iterator[Any]:
    container = start_postgres_container(port=free_port())
    try:
        yield container
    finally:
        container.stop()


async def test_a_paused_postgres_container_is_an_outage_until_unpaused(paused_postgres: Any) -> None:
    dsn = postgres_container_url(paused_postgres)
    conn = await asyncpg.connect(dsn, timeout=10)
    await conn.execute("CREATE TABLE bien_nhan (id int PRIMARY KEY)")
    await conn.execute("INSERT INTO bien_nhan VALUES (1)")
    await conn.close()

    paused_postgres.get_wrapped_container().pause()
    started = time.monotonic()
    with pytest.raises((TimeoutError, OSError, asyncpg.PostgresError)):
        await asyncpg.connect(dsn, timeout=2)
    assert time.monotonic() - started < 5

    paused_postgres.get_wrapped_container().unpause()
    conn = await asyncpg.connect(dsn, timeout=10)  # same host port: the URL still holds
    try:
        assert await conn.fetchval("SELECT count(*) FROM bien_nhan") == 1
    finally:
        await conn.close()


async def test_a_restarted_nats_container_keeps_its_port_and_a_client_reconnects(unique_prefix: str) -> None:
    server = await asyncio.to_thread(lambda: ContainerNats().start())
    try:
        nc = await nats.connect(
            server.url, connect_timeout=5, reconnect_time_wait=0.2, max_reconnect_attempts=-1
        )
        js = nc.jetstream()
        stream = unique_prefix.upper()
        await js.add_stream(
            StreamConfig(name=stream, subjects=[f"{unique_prefix}.>"], storage=StorageType.FILE)
        )
        first = await js.publish(f"{unique_prefix}.a", b"truoc", headers={"Nats-Msg-Id": "m1"})
        url = server.url
        await asyncio.to_thread(server.restart)
        assert server.url == url

        async def published_again() -> Any:
            try:
                return await js.publish(
                    f"{unique_prefix}.b", b"sau", headers={"Nats-Msg-Id": "m2"}, timeout=2
                )
            except Exception:  # noqa: BLE001 - still reconnecting
                return None

        second = await eventually(published_again, timeout=30, interval=0.2, message="publish after restart")
        assert second.seq == first.seq + 1  # the stream and its message survived the restart
        assert (await js.get_msg(stream, first.seq)).data == b"truoc"
        await nc.close()
    finally:
        await asyncio.to_thread(server.stop)
