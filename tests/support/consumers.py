"""Helpers for tests of the event consumer and outbox: a lifecycle fact to feed them, settings with streams of
their own, a fresh SQLite backbone (with a consumer over it), and small fakes of a JetStream message, connection
and publisher for the unit tier."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
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


# ---------------------------------------------------------------- fake messages and connections (no broker)
@dataclass
class FakeMsg:
    data: bytes
    subject: str = "hoithi.soctrang-stnmt.submission.withdrawn"
    headers: dict[str, str] | None = None
    delivered: int = 1
    seq: int = 1
    log: list[tuple[str, Any]] = field(default_factory=list)

    @property
    def metadata(self) -> Any:
        return SimpleNamespace(
            num_delivered=self.delivered, stream="HOITHI", sequence=SimpleNamespace(stream=self.seq)
        )

    async def ack(self) -> None:
        self.log.append(("ack", None))

    async def nak(self, delay: float | None = None) -> None:
        self.log.append(("nak", delay))

    async def in_progress(self) -> None:
        self.log.append(("wpi", None))


class FakeJS:
    def __init__(self) -> None:
        self.published: list[tuple[str, bytes, dict[str, str]]] = []

    async def publish(
        self, subject: str, payload: bytes, timeout: float = 0, stream: str | None = None, headers: Any = None
    ) -> None:
        self.published.append((subject, payload, headers or {}))


class FakeNC:
    def __init__(self) -> None:
        self.js = FakeJS()

    def jetstream(self) -> FakeJS:
        return self.js


class PullJS(FakeJS):
    """A JetStream whose pull subscription is a new ``sub_type()`` (asserting the durable's name when given)."""

    def __init__(self, sub_type: type[Any], durable: str | None = None) -> None:
        super().__init__()
        self.sub_type, self.durable = sub_type, durable

    async def pull_subscribe_bind(self, durable: str, stream: str) -> Any:
        if self.durable is not None:
            assert durable == self.durable
        return self.sub_type()


class PullNC(FakeNC):
    """A connection whose consumer fetches from ``sub_type`` (see :class:`PullJS`)."""

    def __init__(self, sub_type: type[Any], durable: str | None = None) -> None:
        self.js = PullJS(sub_type, durable)


class FlakyJS:
    """Acks every publish, except that the first ``fail`` publishes raise (a broker outage)."""

    def __init__(self, fail: int = 0) -> None:
        self.fail = fail
        self.published: list[tuple[str, bytes, dict[str, str]]] = []

    async def publish(
        self, subject: str, payload: bytes, timeout: float = 0, stream: str | None = None, headers: Any = None
    ) -> None:
        if self.fail > 0:
            self.fail -= 1
            raise TimeoutError("nats: timeout")
        self.published.append((subject, payload, headers))
