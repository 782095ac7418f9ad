"""Live updates: each portal replica reads the stream through an **ordered ephemeral consumer** and pushes a
hint to the browsers of the same tenant over server-sent events.

This is the one documented exception to "only ``hoithi streams`` declares consumers": an ordered consumer is
created by the client, lives as long as its connection, acks nothing and is never shared, so there is nothing
to declare. The portal connects as its own NATS user (``shared/nats_auth.py``), allowed to read the stream and
to publish no event.

What is pushed carries no data: only the event's type. The page then fetches itself again with the person's
own token, so an update never shows what the person's role may not read.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

from shared.settings import Settings

log = logging.getLogger("hoithi.portal.live")
USER = "portal"
# Facts after which a dashboard's figures may change.
INTERESTING = (
    "submission.",
    "assignment.",
    "deadline.",
    "initiative.",
    "reward.",
    "onlineservice.",
    "intake.",
)


class LiveFeed:
    def __init__(self, settings: Settings, *, enabled: bool = True) -> None:
        self.settings = settings
        self.enabled = enabled
        self.listeners: dict[str, set[asyncio.Queue[str]]] = {}
        self._task: asyncio.Task[None] | None = None
        self._nc: Any = None

    async def start(self) -> None:
        if self.enabled:
            self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):  # shutting down
                await self._task
        if self._nc is not None:
            with contextlib.suppress(Exception):
                await self._nc.close()

    async def _run(self) -> None:
        import nats
        from nats.js.api import ConsumerConfig, DeliverPolicy

        from shared.nats_auth import connect_options

        while True:
            try:
                self._nc = await nats.connect(
                    **connect_options(self.settings, USER), connect_timeout=5, max_reconnect_attempts=-1
                )
                js = self._nc.jetstream()
                await js.subscribe(
                    f"{self.settings.event_prefix}.*.>",
                    stream=self.settings.stream,
                    ordered_consumer=True,
                    config=ConsumerConfig(deliver_policy=DeliverPolicy.NEW),
                    cb=self._on_message,
                )
                log.info("live updates: reading %s", self.settings.stream)
                await asyncio.Event().wait()  # the subscription lives until stop()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the portal works without live updates
                log.warning("live updates unavailable, retrying: %r", exc)
                if self._nc is not None:
                    with contextlib.suppress(Exception):
                        await self._nc.close()
                    self._nc = None
                await asyncio.sleep(5)

    async def _on_message(self, msg: Any) -> None:
        try:
            envelope = json.loads(msg.data)
            type_, tenant = str(envelope["type"]), str(envelope["tenant"])
        except (ValueError, KeyError, TypeError):
            return
        if type_.startswith(INTERESTING):
            self.publish(tenant, type_)

    def publish(self, tenant: str, type_: str) -> None:
        for queue in list(self.listeners.get(tenant, ())):
            if queue.qsize() < 100:
                queue.put_nowait(type_)

    async def stream(self, tenant: str, *, heartbeat: float = 15.0) -> AsyncIterator[str]:
        """Server-sent events for one browser of ``tenant``: ``event: fact`` with the type, and comments as a
        heartbeat so proxies keep the connection."""
        queue: asyncio.Queue[str] = asyncio.Queue()
        self.listeners.setdefault(tenant, set()).add(queue)
        try:
            yield "retry: 3000\n\n"
            while True:
                try:
                    type_ = await asyncio.wait_for(queue.get(), timeout=heartbeat)
                except TimeoutError:
                    yield ": keep-alive\n\n"
                    continue
                yield f"event: fact\ndata: {json.dumps({'type': type_})}\n\n"
        finally:
            self.listeners[tenant].discard(queue)
