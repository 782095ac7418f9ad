"""Prometheus metrics: the one place every series of every service is defined and exposed (``/metrics``).

Cheap where it runs often: the HTTP middleware is pure ASGI (two dict lookups and a histogram observation);
a consumer counts a batch once, not per message; the outbox gauges are read when Prometheus scrapes; the
consumer lag and stream sizes come from NATS in a periodic task, never per message. Each process is one
service, so no series carries a ``service`` label: Prometheus adds ``job``/``instance``. Services add their
own counters here (deadlines decided, emails, intake), so the dashboard and the alert rules
(``deploy/observability``) name series from one module.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest
from starlette.responses import Response

if TYPE_CHECKING:
    from shared.service import Runtime

log = logging.getLogger("hoithi.metrics")


# ---------------------------------------------------------------------- FastStream's own
def broker_middlewares(service: str) -> tuple[Any, ...]:
    """FastStream's Prometheus middleware for a service's broker, on the registry ``/metrics`` serves, labelled
    ``app_name`` = the service: messages received (``faststream_received_messages_total``, its sizes), batches
    processed with their status and duration (``faststream_received_processed_messages_total``,
    ``…_duration_seconds``), in flight, and the relay's publishes (``faststream_published_messages_total``).
    A batch's handler settles each message itself, so the outcome of each (applied, duplicate, naked,
    dead-lettered) is ours: ``hoithi_messages_total``."""
    from faststream.nats.prometheus import NatsPrometheusMiddleware
    from prometheus_client import REGISTRY

    return (NatsPrometheusMiddleware(registry=REGISTRY, app_name=service),)


# ---------------------------------------------------------------------- HTTP
HTTP_REQUESTS = Counter(
    "hoithi_http_requests_total", "HTTP requests by route template and status", ["method", "route", "status"]
)
HTTP_DURATION = Histogram(
    "hoithi_http_request_duration_seconds",
    "HTTP request latency by route template",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
INTAKE = Counter(
    "hoithi_intake_requests_total",
    "Submissions offered at an intake route: accepted (2xx) or refused (4xx); error is 5xx",
    ["route", "outcome"],
)

# ---------------------------------------------------------------------- database
DB_STATEMENTS = Counter(
    "hoithi_db_statements_total",
    "SQL statements sent to the database (an executemany counts once), by first keyword",
    ["kind"],
)
_STATEMENT_KINDS = {k: DB_STATEMENTS.labels(k) for k in ("select", "insert", "update", "delete", "other")}


def _count_statement(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
    """Every statement of every engine of the process (the services', the group-commit writer's, the tools'):
    what a fact or a request costs in round trips, comparable from one machine to another where CPU figures are
    not (``bench/rush.py`` prints it per report)."""
    kind = _STATEMENT_KINDS.get(statement.lstrip()[:6].lower())
    (kind or _STATEMENT_KINDS["other"]).inc()


sa.event.listen(sa.engine.Engine, "before_cursor_execute", _count_statement)

GROUP_COMMIT_SIZE = Histogram(
    "hoithi_group_commit_batch_size",
    "Requests per group-commit transaction (shared/group_commit.py), by writer",
    ["writer"],
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
)
GROUP_COMMIT_SECONDS = Histogram(
    "hoithi_group_commit_seconds",
    "One group-commit transaction, BEGIN to COMMIT (SQLite: waiting for the write lock included), by writer",
    ["writer"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
GROUP_COMMIT_RETRIES = Counter(
    "hoithi_group_commit_retries_total",
    "Group-commit batches retried for contention (busy, deadlock)",
    ["writer"],
)

SQLITE_LOCK_WAITS = Counter(
    "hoithi_sqlite_write_lock_waits_total",
    "Times a group-commit writer found SQLite's write lock held by another connection and waited on the loop",
)

CONSUMER_YIELDED = Counter(
    "hoithi_consumer_yielded_seconds_total",
    "Seconds a consumer waited after its batches because intake signalled a rush (shared/pacing.py)",
    ["service", "purpose"],
)
INTAKE_PRESSURE_SIGNALS = Counter(
    "hoithi_intake_pressure_signals_total",
    "Rush signals intake published to the deployment's consumers (shared/pacing.py)",
    ["service"],
)

# ---------------------------------------------------------------------- messages
MESSAGES = Counter(
    "hoithi_messages_total",
    "Events a consumer settled: applied, duplicate, naked (retried later) or dead_lettered",
    ["purpose", "outcome"],
)
HANDLER_DURATION = Histogram(
    "hoithi_handler_duration_seconds",
    "Time in one event's handler (inside the batch transaction)",
    ["purpose", "event_type"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
DEADLETTERS = Counter(
    "hoithi_deadletters_total", "Events this service dead-lettered, by reason", ["consumer", "reason"]
)

# ---------------------------------------------------------------------- read when scraped / refreshed
OUTBOX_DEPTH = Gauge("hoithi_outbox_depth", "Outbox rows not yet published")
OUTBOX_OLDEST_AGE = Gauge(
    "hoithi_outbox_oldest_unpublished_age_seconds", "Age of the oldest unpublished outbox row (0 when empty)"
)
READY = Gauge("hoithi_service_ready", "1 when /health/ready answers 200")
CLOCK = Gauge("hoithi_clock_seconds", "The service's (possibly simulated) clock, as a Unix time")
CONSUMER_PENDING = Gauge(
    "hoithi_consumer_num_pending", "Messages on the stream not yet delivered to the durable", ["durable"]
)
CONSUMER_ACK_PENDING = Gauge(
    "hoithi_consumer_num_ack_pending", "Messages delivered to the durable and not yet acked", ["durable"]
)
CONSUMER_REDELIVERED = Gauge(
    "hoithi_consumer_num_redelivered", "Messages delivered more than once and not yet acked", ["durable"]
)
STREAM_MESSAGES = Gauge("hoithi_stream_messages", "Messages held by the stream", ["stream"])
STREAM_BYTES = Gauge("hoithi_stream_bytes", "Bytes held by the stream", ["stream"])
STREAM_MAX_BYTES = Gauge("hoithi_stream_max_bytes", "The stream's max_bytes (-1: unlimited)", ["stream"])
DEADLETTER_STREAM = Gauge(
    "hoithi_deadletter_stream_messages", "Dead letters recorded (the dead-letter stream's message count)"
)

# ---------------------------------------------------------------------- services' own
DEADLINES = Counter(
    "hoithi_deadlines_decided_total", "campaign: deadline decisions emitted (reminder, missed)", ["kind"]
)
EMAILS = Counter("hoithi_emails_total", "notify: deliveries attempted (sent, failed)", ["channel", "outcome"])

UNMATCHED = "<unmatched>"
_intake_routes: set[tuple[str, str]] = set()


def intake_route(method: str, path: str) -> None:
    """Count requests to ``method path`` (a route template) in ``hoithi_intake_requests_total`` too."""
    _intake_routes.add((method.upper(), path))


def messages(purpose: str, outcome: str, n: int = 1) -> None:
    if n:
        MESSAGES.labels(purpose, outcome).inc(n)


def dead_lettered(purpose: str, consumer: str, reason: str) -> None:
    MESSAGES.labels(purpose, "dead_lettered").inc()
    DEADLETTERS.labels(consumer, reason).inc()


def handler_timer(purpose: str, event_type: str) -> Any:
    """``with handler_timer(...)``: observe the handler's duration."""
    return HANDLER_DURATION.labels(purpose, event_type).time()


def deadlines_decided(kind: str, n: int = 1) -> None:
    if n:
        DEADLINES.labels(kind).inc(n)


def email(channel: str, ok: bool) -> None:
    EMAILS.labels(channel, "sent" if ok else "failed").inc()


class HttpMetrics:
    """Pure ASGI: count and time each request by its route template (``scope["route"]``, set by routing)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        start = time.perf_counter()

        async def send_status(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = getattr(scope.get("route"), "path", None) or UNMATCHED
            method = scope.get("method", "GET")
            HTTP_REQUESTS.labels(method, route, str(status)).inc()
            HTTP_DURATION.labels(method, route).observe(time.perf_counter() - start)
            if (method, route) in _intake_routes:
                outcome = "accepted" if status < 400 else "refused" if status < 500 else "error"
                INTAKE.labels(route, outcome).inc()


# ---------------------------------------------------------------------- scrape and refresh
async def _outbox_gauges(rt: Runtime) -> None:
    t = rt.backbone.outbox
    async with rt.engine.connect() as conn:
        row = (
            await conn.execute(
                sa.select(sa.func.count(), sa.func.min(t.c.created_at)).where(t.c.published_at.is_(None))
            )
        ).one()
    OUTBOX_DEPTH.set(int(row[0]))
    oldest = row[1]
    if oldest is not None and oldest.tzinfo is None:
        oldest = oldest.replace(tzinfo=UTC)
    OUTBOX_OLDEST_AGE.set(max(0.0, (datetime.now(UTC) - oldest).total_seconds()) if oldest else 0.0)


async def exposition(rt: Runtime, readiness: Callable[[], Awaitable[Any]]) -> Response:
    """``GET /metrics``: refresh what is read at scrape time, then the text exposition format."""
    try:
        await _outbox_gauges(rt)
    except Exception as exc:  # noqa: BLE001 - the database may be down; readiness says so
        log.debug("outbox gauges not read: %r", exc)
    ready = await readiness()
    READY.set(1 if getattr(ready, "status_code", 503) == 200 else 0)
    CLOCK.set(rt.now().timestamp())
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


async def refresh_nats(rt: Runtime, durables: list[str]) -> None:
    """Consumer lag of ``durables`` and the streams' sizes, every ``metrics_refresh`` seconds."""
    s = rt.settings
    while True:
        try:
            js = rt.nc.jetstream()
            for durable in durables:
                info = await js.consumer_info(s.stream, durable)
                CONSUMER_PENDING.labels(durable).set(info.num_pending or 0)
                CONSUMER_ACK_PENDING.labels(durable).set(info.num_ack_pending or 0)
                CONSUMER_REDELIVERED.labels(durable).set(info.num_redelivered or 0)
            for stream in (s.stream, s.deadletter_stream, s.replay_stream):
                si = await js.stream_info(stream)
                STREAM_MESSAGES.labels(stream).set(si.state.messages)
                STREAM_BYTES.labels(stream).set(si.state.bytes)
                STREAM_MAX_BYTES.labels(stream).set(si.config.max_bytes or -1)
                if stream == s.deadletter_stream:
                    DEADLETTER_STREAM.set(si.state.messages)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - NATS may be restarting: the gauges keep their last value
            log.debug("consumer/stream info not read: %r", exc)
        await asyncio.sleep(s.metrics_refresh)
