"""Our consumers as FastStream subscribers (``shared/consumer.py`` ``BoundBatchSubscriber``), on a real
nats-server: what the workarounds recorded in ``test_faststream_limits.py`` must keep true. A consumer binds to
the durable ``hoithi streams`` declared and never creates one (it waits for the declaration), and a partial batch
reaches the inbox at once, not after the fetch timeout."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import nats
import pytest
from nats.js.errors import NotFoundError

from shared.consumer import EventConsumer
from shared.events.envelope import Envelope
from shared.settings import Settings
from shared.streams import declare, stream_configs
from tests.support.consumers import sqlite_consumer, stream_settings, withdrawn
from tests.support.servers import nats_client_options
from tests.support.wait import eventually

FETCH_TIMEOUT = 5.0  # seconds: long, so a batch held until the timeout would show


@pytest.fixture
async def rig(test_servers: Any, unique_prefix: str, tmp_path: Path) -> AsyncIterator[Any]:
    """rewards' facts consumer (SQLite inbox) on streams of its own, its durable not declared yet."""
    url = test_servers.nats_url
    settings = stream_settings(
        unique_prefix,
        env="test",
        nats_url=url,
        consumer_batch=50,
        consumer_fetch_timeout=FETCH_TIMEOUT,
    )
    nc = await nats.connect(url, **nats_client_options(url))
    js = nc.jetstream()
    for sc in stream_configs(settings):
        await js.add_stream(sc)
    applied: list[str] = []

    async def handler(conn: Any, env: Envelope) -> None:
        applied.append(env.subject)

    consumer, engine, _ = await sqlite_consumer(tmp_path, settings, handler)
    try:
        yield nc, js, settings, consumer, applied
    finally:
        for sc in stream_configs(settings):
            with contextlib.suppress(Exception):
                await js.delete_stream(sc.name or "")
        await engine.dispose()
        await nc.close()


async def _publish(js: Any, settings: Settings, env: Envelope) -> float:
    await js.publish(
        settings.event_subject(env.tenant, env.type), env.to_json(), headers={"Nats-Msg-Id": env.id}
    )
    return time.monotonic()


async def test_a_consumer_waits_for_its_declared_durable_never_creating_one_then_a_partial_batch_flows_at_once(
    rig: Any,
) -> None:
    nc, js, settings, consumer, applied = rig
    consumer: EventConsumer
    task = asyncio.create_task(consumer.run(nc))
    try:
        # bound (not created) and fetching: every fetch of a durable that is not there fails and is retried
        await eventually(lambda: consumer.state.last_error, timeout=20, message="a fetch was tried")
        with pytest.raises(NotFoundError):
            await js.consumer_info(settings.stream, consumer.spec.durable)
        await declare(js, settings)
        info = await js.consumer_info(settings.stream, consumer.spec.durable)
        assert info.config.max_deliver == settings.max_deliver  # ours, as declared

        # one fact, alone in its batch of up to 50: applied well before the fetch timeout
        published = await _publish(js, settings, withdrawn("s-alone"))
        await eventually(lambda: applied == ["s-alone"], timeout=20, message="the fact applied")
        assert time.monotonic() - published < FETCH_TIMEOUT * 0.6
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 15)
