"""Trace propagation, in one process with the SDK's in-memory exporter: an HTTP request's span is the parent of
the relay's publish of the fact it emitted, which is the parent of the consumer's span for that message, whose
handler's own facts carry the consumer's context on; log lines inside carry the trace id. A missing or
malformed ``traceparent`` never stops a fact (a new root). Tracing off writes nothing of it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cloudevents.core.formats.json import JSONFormat
from faststream.nats import JStream, NatsBroker, NatsMessage, TestNatsBroker
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from shared import tracing
from shared.clock import Clock
from shared.events.envelope import Envelope
from shared.logs import configure_logging, get_logger
from shared.outbox import BrokerPublisher, Outbox, OutboxRelay
from shared.service import CorrelationMiddleware
from shared.settings import Settings
from tests.support.consumers import (
    TIME,
    FakeMsg,
    FakeNC,
    FlakyJS,
    sqlite_backbone,
    sqlite_consumer,
    withdrawn,
)

UPSTREAM_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
UPSTREAM_SPAN = "00f067aa0ba902b7"


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.install(provider)
    try:
        yield exporter
    finally:
        tracing.uninstall()


def _hex(span: ReadableSpan, parent: bool = False) -> str | None:
    ctx = span.parent if parent else span.context
    return None if ctx is None else format(ctx.span_id, "016x")


def _trace(span: ReadableSpan) -> str:
    assert span.context is not None
    return format(span.context.trace_id, "032x")


def _one(spans: InMemorySpanExporter, kind: SpanKind) -> ReadableSpan:
    found = [s for s in spans.get_finished_spans() if s.kind == kind]
    assert len(found) == 1, [(s.name, s.kind) for s in spans.get_finished_spans()]
    return found[0]


def _ours(spans: InMemorySpanExporter) -> list[ReadableSpan]:
    """The spans hoithi's own code opened (not FastStream's middleware)."""
    return [
        s
        for s in spans.get_finished_spans()
        if s.instrumentation_scope and s.instrumentation_scope.name == "hoithi"
    ]


def _lines(capsys: pytest.CaptureFixture[str], event: str) -> list[dict[str, Any]]:
    out = [json.loads(x) for x in capsys.readouterr().err.splitlines() if x.startswith("{")]
    return [rec for rec in out if rec["event"] == event]


async def test_request_fact_publish_and_consumer_are_one_trace_and_log_lines_carry_it(
    tmp_path: Path, spans: InMemorySpanExporter, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = Settings(env="test")
    engine, bb = await sqlite_backbone(tmp_path / "p.db")
    outbox = Outbox(bb, settings, "submissions", Clock())
    configure_logging("submissions", "INFO", json=True)

    async def withdraw(request: Request) -> JSONResponse:
        get_logger("hoithi.test").info("withdrawing")
        data = withdrawn().data
        async with engine.begin() as conn:
            env = await outbox.emit(
                conn, "submission.withdrawn", data, tenant="soctrang-stnmt", subject="s-1", time=TIME
            )
        assert env is not None
        return JSONResponse({"id": env.id}, status_code=201)

    app = CorrelationMiddleware(
        Starlette(routes=[Route("/tenants/{tenant}/editions/{edition}/w", withdraw, methods=["POST"])])
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        r = await client.post(
            "/tenants/soctrang-stnmt/editions/2023/w",
            headers={"traceparent": f"00-{UPSTREAM_TRACE}-{UPSTREAM_SPAN}-01"},
        )
    assert r.status_code == 201, r.text
    http = _one(spans, SpanKind.SERVER)
    assert _trace(http) == UPSTREAM_TRACE and _hex(http, parent=True) == UPSTREAM_SPAN
    assert http.attributes is not None and http.attributes["http.response.status_code"] == 201
    (line,) = _lines(capsys, "withdrawing")
    assert line["trace_id"] == UPSTREAM_TRACE and line["span_id"] == _hex(http)
    assert line["tenant"] == "soctrang-stnmt" and line["edition"] == "2023"

    # the outbox row is the envelope: it carries the request's context; the relay publishes it through the
    # broker, whose telemetry middleware (FastStream's) opens the producer span as its child
    broker = NatsBroker(middlewares=tracing.broker_middlewares())
    published: list[tuple[str, bytes, dict[str, str]]] = []

    @broker.subscriber("hoithi.>", stream=JStream(settings.stream, declare=False))
    async def watch(msg: NatsMessage) -> None:
        published.append((msg.raw_message.subject, msg.body, dict(msg.headers)))

    async with TestNatsBroker(broker) as test_broker:
        relay = OutboxRelay(engine, bb, BrokerPublisher(test_broker), settings)
        assert await relay.relay_once() == 1
    (subject, payload, headers) = published[0]
    assert json.loads(payload)["traceparent"] == f"00-{UPSTREAM_TRACE}-{_hex(http)}-01"
    (producer,) = [
        s
        for s in spans.get_finished_spans()
        if s.kind == SpanKind.PRODUCER and _hex(s, parent=True) == _hex(http)
    ]
    assert (
        producer.instrumentation_scope is not None
        and producer.instrumentation_scope.name == "opentelemetry.instrumentation.faststream"
    )
    assert _trace(producer) == UPSTREAM_TRACE
    assert headers["traceparent"] == f"00-{UPSTREAM_TRACE}-{_hex(producer)}-01"
    assert headers["Nats-Msg-Id"] == json.loads(payload)["id"]
    await engine.dispose()

    # the consumer: its span is the producer's child, and what its handler emits carries the consumer's span
    seen: list[dict[str, str]] = []

    async def handler(conn: Any, env: Envelope) -> None:
        seen.append(tracing.carrier())
        get_logger("hoithi.rewards").info("applying")

    consumer, cengine, _ = await sqlite_consumer(tmp_path, settings, handler)
    consumer.nc = FakeNC()  # type: ignore[assignment]
    msg = FakeMsg(payload, subject=subject, headers=headers)
    try:
        await consumer.process([msg])
    finally:
        await cengine.dispose()
    assert msg.log == [("ack", None)]
    (process,) = [s for s in _ours(spans) if s.kind == SpanKind.CONSUMER]
    assert _hex(process, parent=True) == _hex(producer) and _trace(process) == UPSTREAM_TRACE
    assert seen == [{"traceparent": f"00-{UPSTREAM_TRACE}-{_hex(process)}-01"}]
    (line,) = _lines(capsys, "applying")
    assert line["trace_id"] == UPSTREAM_TRACE and line["span_id"] == _hex(process)
    assert line["event_id"] == json.loads(payload)["id"] and line["tenant"] == "soctrang-stnmt"


async def _consume(tmp_path: Path, env_json: bytes, headers: dict[str, str]) -> FakeMsg:
    consumer, engine, _ = await sqlite_consumer(tmp_path, Settings(env="test"), _nothing)
    consumer.nc = FakeNC()  # type: ignore[assignment]
    msg = FakeMsg(env_json, headers=headers)
    try:
        await consumer.process([msg])
    finally:
        await engine.dispose()
    return msg


async def _nothing(conn: Any, env: Envelope) -> None:
    pass


@pytest.mark.parametrize(
    ("in_envelope", "in_header"),
    [(None, None), ("garbage", "00-zz-nonsense-01"), ("00-" + "0" * 32 + "-" + "0" * 16 + "-01", "")],
)
async def test_a_fact_with_no_or_a_malformed_traceparent_still_flows_under_a_new_root(
    tmp_path: Path, spans: InMemorySpanExporter, in_envelope: str | None, in_header: str | None
) -> None:
    env = withdrawn().model_copy(update={"traceparent": in_envelope})
    headers = {"Nats-Msg-Id": env.id} | ({"traceparent": in_header} if in_header is not None else {})
    msg = await _consume(tmp_path, env.to_json(), headers)
    assert msg.log == [("ack", None)]  # applied, not dead-lettered
    process = _one(spans, SpanKind.CONSUMER)
    assert process.parent is None


async def test_a_message_without_the_header_a_replay_follows_the_envelope(
    tmp_path: Path, spans: InMemorySpanExporter
) -> None:
    parent = f"00-{UPSTREAM_TRACE}-{UPSTREAM_SPAN}-01"
    env = withdrawn().model_copy(update={"traceparent": parent, "tracestate": "vendor=1"})
    msg = await _consume(tmp_path, env.to_json(), {"Nats-Msg-Id": env.id})
    assert msg.log == [("ack", None)]
    (process,) = [s for s in _ours(spans) if s.kind == SpanKind.CONSUMER]
    assert _trace(process) == UPSTREAM_TRACE and _hex(process, parent=True) == UPSTREAM_SPAN
    assert tracing.carrier_of_json(env.to_json()) == {"traceparent": parent, "tracestate": "vendor=1"}


async def test_tracing_off_writes_no_trace_attribute_or_header(tmp_path: Path) -> None:
    assert not tracing.enabled()
    settings = Settings(env="test")
    engine, bb = await sqlite_backbone(tmp_path / "o.db")
    outbox = Outbox(bb, settings, "submissions", Clock())
    with tracing.span("ignored"):
        async with engine.begin() as conn:
            env = await outbox.emit(
                conn,
                "submission.withdrawn",
                withdrawn().data,
                tenant="soctrang-stnmt",
                subject="s-1",
                time=TIME,
            )
    js = FlakyJS()
    assert await OutboxRelay(engine, bb, js, settings).relay_once() == 1  # type: ignore[arg-type]
    await engine.dispose()
    assert env is not None and env.traceparent is None
    (_, payload, headers) = js.published[0]
    assert b"traceparent" not in payload and headers == {"Nats-Msg-Id": env.id}


def test_the_cloudevents_sdk_reads_the_trace_attributes_as_extensions() -> None:
    parent = f"00-{UPSTREAM_TRACE}-{UPSTREAM_SPAN}-01"
    env = withdrawn().model_copy(update={"traceparent": parent, "tracestate": "vendor=1"})
    ce = JSONFormat().read(None, env.to_json())
    assert ce.get_extension("traceparent") == parent
    assert ce.get_extension("tracestate") == "vendor=1"
    assert Envelope.from_json(env.to_json()).traceparent == parent
