"""The relay publishes through the service's FastStream broker, and a consumer subscribed on a broker applies what
arrives by the inbox rules — checked without a server on FastStream's ``TestNatsBroker`` (the fault tests keep
real servers): each fact applied once however often it is published, a malformed one dead-lettered through the
broker, never applied."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from faststream.nats import JStream, NatsBroker, NatsMessage, TestNatsBroker

from shared.clock import Clock
from shared.events.envelope import Envelope
from shared.outbox import BrokerPublisher, Outbox, OutboxRelay
from shared.settings import Settings
from tests.support.consumers import TIME, sqlite_consumer


async def _consumer_and_producer(tmp_path: Path) -> tuple[Any, Outbox, Any, list[str]]:
    applied: list[str] = []

    async def handler(conn: Any, env: Envelope) -> None:
        applied.append(env.subject or "")

    settings = Settings(env="test")
    consumer, engine, bb = await sqlite_consumer(tmp_path, settings, handler)
    # submissions' outbox in the same file: it produces what rewards' consumer takes
    return consumer, Outbox(bb, settings, "submissions", Clock()), engine, applied


async def _withdraw(engine: Any, outbox: Outbox, *subjects: str) -> None:
    async with engine.begin() as conn:
        for subject in subjects:
            await outbox.emit(
                conn,
                "submission.withdrawn",
                {
                    "submission_id": subject,
                    "kind": "experience_report",
                    "part": "experience",
                    "author_id": "p-0002",
                    "unit_id": "u-vp",
                    "at": TIME,
                },
                tenant="soctrang-stnmt",
                edition="2023",
                subject=subject,
                time=TIME,
            )


async def test_the_relay_publishes_through_the_broker_and_each_fact_is_applied_once(tmp_path: Path) -> None:
    consumer, outbox, engine, applied = await _consumer_and_producer(tmp_path)
    broker = NatsBroker()
    consumer.subscribe(broker)
    seen: list[dict[str, str]] = []

    @broker.subscriber("hoithi.>", stream=JStream(consumer.settings.stream, declare=False))
    async def watch(msg: NatsMessage) -> None:
        seen.append(dict(msg.headers))

    async with TestNatsBroker(broker) as test_broker:
        relay = OutboxRelay(engine, consumer.inbox.backbone, BrokerPublisher(test_broker), consumer.settings)
        await _withdraw(engine, outbox, "s-1", "s-2", "s-3")
        assert await relay.relay_once() == 3  # pipelined: the three arrive in any order
        assert sorted(applied) == ["s-1", "s-2", "s-3"]
        ids = [h["Nats-Msg-Id"] for h in seen]
        async with engine.begin() as conn:  # the relay died before marking: every row goes out again
            await conn.execute(sa.update(relay.table).values(published_at=None))
        assert await relay.relay_once() == 3
        assert sorted(applied) == ["s-1", "s-2", "s-3"]  # the inbox took the second copies as duplicates
        assert sorted(h["Nats-Msg-Id"] for h in seen) == sorted(ids + ids)  # the event id is the message id
        assert len(set(ids)) == 3
    await engine.dispose()


async def test_a_malformed_payload_is_dead_lettered_through_the_broker_and_never_applied(
    tmp_path: Path,
) -> None:
    consumer, _outbox, engine, applied = await _consumer_and_producer(tmp_path)
    settings = consumer.settings
    broker = NatsBroker()
    consumer.subscribe(broker)
    letters: list[dict[str, Any]] = []

    @broker.subscriber(
        settings.deadletter_subject("soctrang-stnmt", "rewards"),
        stream=JStream(settings.deadletter_stream, declare=False),
    )
    async def dead(msg: NatsMessage) -> None:
        letters.append(json.loads(msg.body))

    async with TestNatsBroker(broker) as test_broker:
        await test_broker.publish(
            b'{"not": "an envelope"}',
            settings.event_subject("soctrang-stnmt", "submission.withdrawn"),
            stream=settings.stream,
            # what JetStream delivers it with: the stream, the durable, deliveries and the stream sequence
            reply_to=f"$JS.ACK.{settings.stream}.rewards-facts-v1.1.7.7.1700000000000000000.0",
        )
    assert applied == []
    (letter,) = letters
    assert letter["type"] == "deadletter.recorded"
    assert letter["data"]["reason"] == "invalid_payload"
    assert letter["data"]["original_subject"] == "hoithi.soctrang-stnmt.submission.withdrawn"
    assert (letter["data"]["stream"], letter["data"]["stream_sequence"]) == (settings.stream, 7)
    await engine.dispose()
