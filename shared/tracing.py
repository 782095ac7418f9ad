"""Distributed traces (OpenTelemetry): one receipt is one trace, from its POST to the last email it causes.

The W3C trace context travels with the work, never beside it:

- an HTTP request gets a server span, child of the caller's ``traceparent`` header if it sent one;
- ``Outbox.emit`` (and the intake's group commit, which captures it per request) writes the current context
  into the envelope as the CloudEvents distributed-tracing extension attributes ``traceparent`` and
  ``tracestate`` — the outbox row is the envelope, so no column is needed;
- the relay publishes each row through the service's FastStream broker in the envelope's context; FastStream's
  telemetry middleware opens the producer span, its child, and puts that span's context in the NATS
  ``traceparent`` / ``tracestate`` headers (and a span per fetched batch on the consuming side);
- a consumer applies each message under a consumer span, child of the NATS header's context (or the
  envelope's, for a message without the header: a replay), and whatever the handler emits carries it on;
- notify's delivery loop sends each email or webhook under a span, child of the cause event's context (read
  from notify's inbox, where the cause's envelope is kept).

A missing or malformed ``traceparent`` is ignored: the work goes on under a new root span.

Off by default. ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) turns it on and
exports OTLP over HTTP (protobuf) in batches; ``OTEL_SDK_DISABLED=true`` keeps it off anyway. Off, every helper
here returns at its first line (no span, no header, no envelope attribute) and the SDK is not even imported.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, nullcontext
from typing import Any, Self

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

_propagator = TraceContextTextMapPropagator()
_tracer: Tracer | None = None  # None: tracing is off
_tracer_provider: Any = None  # what _tracer came from (FastStream's middleware traces with it too)
_provider: Any = None

ENDPOINT_VARS = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
TRACE_KEYS = ("traceparent", "tracestate")


def enabled() -> bool:
    return _tracer is not None


def configure_tracing(service: str) -> bool:
    """Turn tracing on for this process when an OTLP endpoint is configured; True if it is on."""
    global _provider
    if _tracer is not None:
        return True
    if os.environ.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return False
    if not any(os.environ.get(v) for v in ENDPOINT_VARS):
        return False
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    name = os.environ.get("OTEL_SERVICE_NAME") or f"hoithi-{service}"
    provider = TracerProvider(resource=Resource.create({"service.name": name, "service.namespace": "hoithi"}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))  # endpoint, headers: OTEL_* variables
    install(provider)
    _provider = provider
    return True


def install(provider: Any) -> None:
    """Trace with ``provider`` (an SDK ``TracerProvider``); tests install one with an in-memory exporter."""
    global _tracer, _tracer_provider
    _tracer = provider.get_tracer("hoithi")
    _tracer_provider = provider


def uninstall() -> None:
    global _tracer, _tracer_provider
    _tracer = None
    _tracer_provider = None


def shutdown() -> None:
    """Flush what is buffered (at a service's shutdown)."""
    global _provider
    if _provider is not None:
        with contextlib.suppress(Exception):
            _provider.shutdown()
    _provider = None
    uninstall()


# ---------------------------------------------------------------------- propagation


def carrier() -> dict[str, str]:
    """The current trace context as ``{"traceparent": ..., "tracestate": ...}``; empty when there is none."""
    if _tracer is None:
        return {}
    out: dict[str, str] = {}
    _propagator.inject(out)
    return out


def context_from(*carriers: Mapping[str, Any] | None) -> otel_context.Context | None:
    """The context of the first carrier holding a valid ``traceparent`` (None: start a new root)."""
    for c in carriers:
        if not c or not isinstance(c.get("traceparent"), str):
            continue
        ctx = _propagator.extract({k: c[k] for k in TRACE_KEYS if isinstance(c.get(k), str)})
        if trace.get_current_span(ctx).get_span_context().is_valid:
            return ctx
    return None


_TRACE_IN_JSON = re.compile(rb'"traceparent":"([^"]{1,128})"(?:,"tracestate":"([^"]{0,512})")?')


def carrier_of_json(payload: bytes) -> dict[str, str]:
    """The trace attributes of a serialized envelope (``Envelope.to_json`` writes them last, after ``data``),
    found without parsing the whole of it."""
    at = payload.rfind(b'"traceparent":"')
    m = _TRACE_IN_JSON.match(payload, at) if at >= 0 else None
    if m is None:
        return {}
    out = {"traceparent": m.group(1).decode()}
    if m.group(2):
        out["tracestate"] = m.group(2).decode()
    return out


def current_ids() -> tuple[str, str] | None:
    """The current trace and span ids (hex), for log lines; None outside any span."""
    ctx = trace.get_current_span().get_span_context()
    if not ctx.is_valid:
        return None
    return format(ctx.trace_id, "032x"), format(ctx.span_id, "016x")


# ---------------------------------------------------------------------- spans


def span(
    name: str,
    *,
    kind: SpanKind = SpanKind.INTERNAL,
    parent: otel_context.Context | None = None,
    attributes: Mapping[str, Any] | None = None,
) -> AbstractContextManager[Span | None]:
    """A current span (``parent`` None: child of the current one, or a root); a no-op when tracing is off."""
    if _tracer is None:
        return nullcontext()
    attrs = {k: v for k, v in (attributes or {}).items() if v is not None}
    return _tracer.start_as_current_span(name, context=parent, kind=kind, attributes=attrs)


def consumer_span(durable: str, env: Any, headers: Mapping[str, str] | None) -> AbstractContextManager[Any]:
    """The span of one message applied by a consumer: child of the producer's span (the NATS header), else of
    the envelope's context."""
    if _tracer is None:
        return nullcontext()
    envelope = {k: getattr(env, k, None) for k in TRACE_KEYS}
    return span(
        f"{durable} process",
        kind=SpanKind.CONSUMER,
        parent=context_from(headers, envelope) or otel_context.Context(),
        attributes={
            "messaging.system": "nats",
            "messaging.operation.type": "process",
            "messaging.consumer.group.name": durable,
            "messaging.message.id": env.id,
            "cloudevents.event_id": env.id,
            "cloudevents.event_type": env.type,
            "cloudevents.event_subject": env.subject,
            "hoithi.tenant": env.tenant,
            "hoithi.edition": env.edition,
        },
    )


@contextlib.contextmanager
def publishing(payload: bytes) -> Iterator[None]:
    """The relay's publish of one outbox row runs in the envelope's trace context: FastStream's telemetry
    middleware on the broker (:func:`broker_middlewares`) opens the producer span as its child and writes that
    span's context into the NATS ``traceparent`` / ``tracestate`` headers."""
    if _tracer is None:
        yield
        return
    token = otel_context.attach(context_from(carrier_of_json(payload)) or otel_context.Context())
    try:
        yield
    finally:
        otel_context.detach(token)


def broker_middlewares() -> tuple[Any, ...]:
    """FastStream's telemetry middleware for a service's broker when tracing is on (none when off): a producer
    span for every publish (the relay's facts, dead letters), child of the current context, whose context goes
    in the message's headers; and a span per fetched batch, linked to its messages' producers. Each message of
    a batch is then applied under its own :func:`consumer_span`."""
    if _tracer is None:
        return ()
    from faststream.nats.opentelemetry import NatsTelemetryMiddleware

    return (NatsTelemetryMiddleware(tracer_provider=_tracer_provider),)


def span_following(
    envelope_json: bytes | None,
    name: str,
    *,
    kind: SpanKind = SpanKind.CLIENT,
    attributes: Mapping[str, Any] | None = None,
) -> AbstractContextManager[Span | None]:
    """A span for work a fact caused later (notify's delivery of a message): child of the trace the fact's
    serialized envelope carries, else a new root."""
    if _tracer is None:
        return nullcontext()
    parent = context_from(carrier_of_json(envelope_json or b"")) or otel_context.Context()
    return span(name, kind=kind, parent=parent, attributes=attributes)


class HttpSpan:
    """A server span per HTTP request, child of the request's ``traceparent`` (for the pure ASGI
    ``shared.service.CorrelationMiddleware``; build one only when ``enabled()``)."""

    def __init__(self, scope: dict[str, Any]) -> None:
        self.scope = scope
        headers = {
            k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"] if k in _TRACE_HEADERS
        }
        self.cm = span(
            f"{scope['method']} {scope['path']}",
            kind=SpanKind.SERVER,
            parent=context_from(headers) or otel_context.Context(),
            attributes={"http.request.method": scope["method"], "url.path": scope["path"]},
        )
        self.span: Span | None = None

    def __enter__(self) -> Self:
        self.span = self.cm.__enter__()
        return self

    def status(self, code: int) -> None:
        if self.span is not None:
            self.span.set_attribute("http.response.status_code", code)
            if code >= 500:
                self.span.set_status(Status(StatusCode.ERROR))

    def __exit__(self, *exc: object) -> None:
        # Routing has run by now: name the span after the route's template (FastAPI sets scope["route"]).
        route = getattr(self.scope.get("route"), "path", None)
        if self.span is not None and route:
            self.span.update_name(f"{self.scope['method']} {route}")
            self.span.set_attribute("http.route", route)
        self.cm.__exit__(*exc)  # type: ignore[arg-type]


_TRACE_HEADERS = {b"traceparent", b"tracestate"}
