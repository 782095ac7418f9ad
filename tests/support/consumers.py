"""Helpers for tests of the event consumer and outbox: a lifecycle fact to feed them, settings with streams of
their own, and a fresh SQLite backbone (with a consumer over it)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.clock import Clock
from shared.consumer import EventConsumer
from shared.db import Backbone, backbone_tables, make_engine
from shared.events.envelope import Envelope, make_event
from shared.outbox import Outbox
from shared.settings import Settings
from shared.streams import ConsumerSpec

TIME = datetime(2023, 10, 20, 2, 0, tzinfo=UTC)


def withdrawn(sub: str = "s-1", seq: int = 2) -> Envelope:
    """A ``submission.withdrawn`` fact for submission ``sub`` (an experience report of p-0002, u-vp)."""
    return make_event(
        "submission.withdrawn",
        {
            "submission_id": sub,
            "kind": "experience_report",
            "part": "experience",
            "author_id": "p-0002",
            "unit_id": "u-vp",
            "at": TIME,
        },
        source="submissions",
        tenant="soctrang-stnmt",
        edition="2023",
        subject=sub,
        sequence=seq,
        time=TIME,
    )


def stream_settings(prefix: str, **overrides: Any) -> Settings:
    """Settings whose subjects and streams (events, dead letters, replays) are named after ``prefix`` (a test's
    ``unique_prefix``), so a test on a shared NATS server has streams of its own."""
    return Settings(
        event_prefix=prefix,
        deadletter_prefix=f"{prefix}-dl",
        replay_prefix=f"{prefix}-replay",
        stream=prefix.upper(),
        deadletter_stream=f"{prefix.upper()}_DL",
        replay_stream=f"{prefix.upper()}_REPLAY",
        **overrides,
    )


async def sqlite_backbone(path: Path) -> tuple[AsyncEngine, Backbone]:
    """A fresh SQLite file at ``path`` holding just the backbone tables (outbox, inbox, leases, ...)."""
    md = sa.MetaData()
    bb = backbone_tables(md)
    engine = make_engine(f"sqlite+aiosqlite:///{path}")
    async with engine.begin() as conn:
        await conn.run_sync(md.create_all)
    return engine, bb


async def sqlite_consumer(
    tmp_path: Path, settings: Settings, handler: Callable[[Any, Envelope], Awaitable[None]]
) -> tuple[EventConsumer, AsyncEngine, Backbone]:
    """rewards' facts consumer for ``submission.withdrawn`` only, applying ``handler``, on a fresh SQLite file
    holding just the backbone tables. Returns the consumer, its engine and the backbone tables."""
    engine, bb = await sqlite_backbone(tmp_path / "c.db")
    consumer = EventConsumer(
        spec=ConsumerSpec("rewards", "facts", 1, ("submission.withdrawn",)),
        engine=engine,
        backbone=bb,
        outbox=Outbox(bb, settings, "rewards", Clock()),
        settings=settings,
        handlers={"submission.withdrawn": handler},
    )
    return consumer, engine, bb
