"""The one way a hoithi service is assembled: settings, clock, engine, outbox relay, consumers, HTTP app.

A service supplies its metadata, its consumer handlers and its routers; ``create_app`` wires the rest —
the NATS connection (FastStream's ``NatsBroker``), the outbox relay, the durable consumers (bound, never
created), logging with correlation ids, problem details, ``/health/live``, ``/health/ready`` (its own
database, once the consumers are declared), ``/health/consumers`` (NATS and the consumers), and the AsyncAPI
page of the event catalogue.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager, nullcontext, suppress
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any

import sqlalchemy as sa
import structlog
from fastapi import APIRouter, Depends, FastAPI, Header, Request
from fastapi.responses import HTMLResponse, JSONResponse
from faststream.nats import NatsBroker
from nats.aio.client import Client as NatsClient
from sqlalchemy.ext.asyncio import AsyncEngine

from shared import metrics, problems, tracing
from shared.auth import Principal, authenticate, require_tenant
from shared.clock import Clock
from shared.consumer import EventConsumer, Handler, stop_subscribers
from shared.copies import Copies
from shared.db import Backbone, make_engine
from shared.documents import Person
from shared.guard import HttpGuard, Throttles
from shared.idempotency import Idempotency
from shared.logs import configure_logging, correlation_id, request_fields
from shared.nats_auth import broker_options
from shared.outbox import Outbox, OutboxRelay
from shared.problems import Problem
from shared.settings import ServiceSettings, Settings, get_settings, service_settings
from shared.streams import consumers_of, missing_consumers

log = logging.getLogger("hoithi.service")


@dataclass
class Runtime:
    """Everything a service's routes and handlers share, one per process."""

    name: str
    settings: Settings
    own: ServiceSettings
    clock: Clock
    engine: AsyncEngine
    backbone: Backbone
    copies: Copies | None
    outbox: Outbox
    idempotency: Idempotency
    broker: NatsBroker | None = None
    relay: OutboxRelay | None = None
    consumers: list[EventConsumer] = field(default_factory=list)
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    dead_tasks: dict[str, str] = field(default_factory=dict)  # background tasks that ended (name -> why)
    missing: list[str] = field(default_factory=list)
    started: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def nc(self) -> NatsClient:
        assert self.broker is not None
        return self.broker.connection

    def now(self) -> datetime:
        return self.clock.now()


@dataclass
class ServiceSpec:
    name: str
    title: str
    metadata: sa.MetaData
    backbone: Backbone
    copies: Copies | None
    routers: list[APIRouter]
    # handlers per consumer purpose: {purpose: {event type: handler}}; built once the runtime exists
    handlers: Callable[[Runtime], dict[str, dict[str, Handler]]]
    background: list[Callable[[Runtime], Coroutine[Any, Any, None]]] = field(default_factory=list)


def build_runtime(
    spec: ServiceSpec, settings: Settings | None = None, own: ServiceSettings | None = None
) -> Runtime:
    settings = settings or get_settings()
    own = own or service_settings(spec.name, settings)
    clock = Clock.from_settings(settings)
    engine = make_engine(own.database_url)
    return Runtime(
        name=spec.name,
        settings=settings,
        own=own,
        clock=clock,
        engine=engine,
        backbone=spec.backbone,
        copies=spec.copies,
        outbox=Outbox(spec.backbone, settings, spec.name, clock),
        idempotency=Idempotency(spec.backbone),
    )


def spawn(
    rt: Runtime, work: Coroutine[Any, Any, Any], name: str, *, forever: bool = True
) -> asyncio.Task[Any]:
    """A background task of the service, meant to run until shutdown (``forever``) or to finish cleanly.

    Crash-only: one that ends otherwise is logged at once, turns ``/health/live`` red and stops the process
    (SIGTERM to itself, a graceful shutdown), so compose's restart policy or Kubernetes starts a fresh one —
    never a process that answers HTTP while its consumer or relay is dead."""
    task = asyncio.create_task(work, name=name)

    def ended(t: asyncio.Task[Any]) -> None:
        if t.cancelled():
            return
        exc = t.exception()
        if exc is None and not forever:
            return
        rt.dead_tasks[name] = repr(exc) if exc is not None else "returned"
        log.error(
            "background task %s ended: %s; stopping the process", name, rt.dead_tasks[name], exc_info=exc
        )
        asyncio.get_running_loop().call_later(1.0, os.kill, os.getpid(), signal.SIGTERM)

    task.add_done_callback(ended)
    rt.tasks.append(task)
    return task


async def _start_messaging(rt: Runtime, spec: ServiceSpec) -> None:
    """Connect, wait for the declared consumers (readiness red meanwhile), then relay and consume."""
    broker = NatsBroker(
        **broker_options(rt.settings, rt.name), max_reconnect_attempts=-1, reconnect_time_wait=1
    )
    await broker.connect()
    rt.broker = broker
    relay = OutboxRelay(rt.engine, rt.backbone, rt.nc.jetstream(), rt.settings)
    rt.relay = relay
    rt.outbox.on_commit = relay.wake
    spawn(rt, relay.run(), f"{rt.name}-relay")
    handlers = spec.handlers(rt)
    wanted = [c for c in consumers_of(rt.name) if c.purpose in handlers]
    delay = 0.2
    while True:
        rt.missing = await missing_consumers(rt.nc.jetstream(), rt.settings, rt.name)
        if not rt.missing:
            break
        log.warning("waiting for consumers %s: run `hoithi streams`", rt.missing)
        await asyncio.sleep(delay)
        delay = min(delay * 2, 5.0)
    for c in wanted:
        consumer = EventConsumer(
            spec=c,
            engine=rt.engine,
            backbone=rt.backbone,
            outbox=rt.outbox,
            settings=rt.settings,
            handlers=handlers[c.purpose],
        )
        consumer.nc = rt.nc
        rt.consumers.append(consumer)
        # FastStream batch pull subscribers of the declared durables (bound, never created), raw messages
        consumer.subscribe(broker)
        consumer.subscribe(broker, replay=True)
    await broker.start()  # already connected: starts the subscribers
    spawn(rt, metrics.refresh_nats(rt, [c.durable for c in wanted]), f"{rt.name}-metrics")
    for job in spec.background:
        spawn(rt, job(rt), f"{rt.name}-{job.__name__}")
    rt.started = True


def create_app(
    spec: ServiceSpec, settings: Settings | None = None, own: ServiceSettings | None = None
) -> FastAPI:
    rt = build_runtime(spec, settings, own)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging(rt.name, rt.settings.log_level, rt.settings.logs_as_json)
        tracing.configure_tracing(rt.name)
        starter = spawn(rt, _start_messaging(rt, spec), f"{rt.name}-start", forever=False)
        try:
            yield
        finally:
            # Stop fetching and relaying first; whatever was fetched and not acked is redelivered later.
            pending = [starter, *rt.tasks]
            for t in pending:
                t.cancel()
            await asyncio.wait(pending, timeout=5)
            if rt.broker is not None:
                await stop_subscribers(rt.broker.subscribers)
                # close(), not FastStream's drain(): draining pull subscriptions waits for the drain timeout.
                with suppress(Exception):
                    await asyncio.wait_for(rt.nc.close(), 5)
            await rt.engine.dispose()
            tracing.shutdown()

    app = FastAPI(title=spec.title, version="0.1.0", lifespan=lifespan)
    app.state.runtime = rt
    problems.install(app)

    app.state.throttles = Throttles(rt.settings)
    # inside the correlation id: the guard's own answers carry one too
    app.add_middleware(HttpGuard, settings=rt.settings, throttles=app.state.throttles)
    app.add_middleware(CorrelationMiddleware)
    app.add_middleware(metrics.HttpMetrics)

    @app.get("/health/live", tags=["health"])
    async def live() -> JSONResponse:
        if rt.dead_tasks:
            return JSONResponse({"status": "dead", "tasks": rt.dead_tasks}, status_code=503)
        return JSONResponse({"status": "ok"})

    async def consumer_checks() -> dict[str, Any]:
        """The broker side: NATS, the consumers, the relay ("ok" or why not)."""
        checks: dict[str, Any] = {}
        checks["nats"] = "ok" if rt.broker is not None and rt.nc.is_connected else "disconnected"
        checks["consumers"] = "ok" if rt.started else f"missing: {', '.join(rt.missing) or 'starting'}"
        for c in rt.consumers:
            if not c.state.ready:
                checks[c.spec.durable] = "waiting for the database"
        if rt.relay is not None:
            checks["outbox"] = "ok" if rt.relay.healthy else f"retrying: {rt.relay.last_error}"
        return checks

    @app.get("/health/ready", tags=["health"])
    async def ready() -> JSONResponse:
        """Ready = can serve HTTP with its own database, once the consumers have been declared (checked once,
        at start). A NATS outage afterwards does not take the service out of rotation — the outbox keeps what
        it accepts until the broker is back — so the broker side is reported here but judged by
        ``/health/consumers``."""
        checks: dict[str, Any] = {}
        try:
            async with rt.engine.connect() as conn:
                await conn.execute(sa.text("SELECT 1"))
            checks["database"] = "ok"
        except Exception as exc:  # noqa: BLE001
            checks["database"] = f"unreachable: {type(exc).__name__}"
        checks["declared"] = "ok" if rt.started else f"missing: {', '.join(rt.missing) or 'starting'}"
        ok = checks["database"] == "ok" and checks["declared"] == "ok"
        broker = await consumer_checks()
        return JSONResponse(
            {
                "status": "ok" if ok else "unavailable",
                "checks": checks,
                "consumers": "ok"
                if all(v == "ok" for k, v in broker.items() if k != "outbox")
                else "degraded",
                "broker": broker,
            },
            status_code=200 if ok else 503,
        )

    @app.get("/health/consumers", tags=["health"])
    async def consumers_health() -> JSONResponse:
        """The broker side alone: NATS connected, consumers bound and fetching (the relay's retries are
        reported, not failed: the outbox keeps its rows). For alerting and dashboards, not for a probe."""
        broker = await consumer_checks()
        ok = all(v == "ok" for k, v in broker.items() if k != "outbox")
        return JSONResponse(
            {"status": "ok" if ok else "unavailable", "checks": broker}, status_code=200 if ok else 503
        )

    @app.get("/metrics", tags=["health"], include_in_schema=False)
    async def prometheus_metrics() -> Any:
        return await metrics.exposition(rt, readiness=ready)

    @app.get("/asyncapi.json", tags=["docs"], include_in_schema=False)
    async def asyncapi_json() -> JSONResponse:
        from shared.events.asyncapi import asyncapi_document

        return JSONResponse(asyncapi_document(prefix=rt.settings.event_prefix))

    @app.get("/asyncapi", tags=["docs"], include_in_schema=False)
    async def asyncapi_page() -> HTMLResponse:
        from shared.events.asyncapi import asyncapi_document, asyncapi_html

        return HTMLResponse(asyncapi_html(asyncapi_document(prefix=rt.settings.event_prefix)))

    for router in spec.routers:
        app.include_router(router)
    app.include_router(__import__("shared.deadletters").deadletters.router)  # read-only dead letters
    return app


class CorrelationMiddleware:
    """``X-Correlation-ID`` in (or a new one), set for the request's log lines and events, and echoed back.

    Pure ASGI rather than ``@app.middleware("http")``: Starlette's BaseHTTPMiddleware costs a task and a
    stream per request, measurable on the intake path.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cid = next((v.decode() for k, v in scope["headers"] if k == b"x-correlation-id"), "") or str(
            uuid.uuid4()
        )
        token = correlation_id.set(cid)
        # tracing on: a server span, child of the caller's traceparent; what the request emits carries it on
        http_span = tracing.HttpSpan(scope) if tracing.enabled() else None

        async def send_with_header(message: Any) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (b"x-correlation-id", cid.encode())]
                if http_span is not None:
                    http_span.status(message["status"])
            await send(message)

        try:
            with (
                http_span or nullcontext(),
                structlog.contextvars.bound_contextvars(**request_fields(scope["path"])),
            ):
                await self.app(scope, receive, send_with_header)
        finally:
            correlation_id.reset(token)


# ---------------------------------------------------------------------- dependencies for routes


def runtime(request: Request) -> Runtime:
    return request.app.state.runtime  # type: ignore[no-any-return]


RuntimeDep = Annotated[Runtime, Depends(runtime)]


@dataclass(frozen=True)
class Caller:
    """The authenticated person as the service's directory copy knows them at the request time."""

    principal: Principal
    person: Person | None

    @property
    def person_id(self) -> str:
        return self.principal.person_id

    def has_role(self, *roles: str) -> bool:
        return self.person is not None and any(self.person.has_role(r) for r in roles)


async def current_caller(
    request: Request, tenant: str, authorization: Annotated[str | None, Header()] = None
) -> Caller:
    rt = runtime(request)
    # HttpGuard verified the token before the body was read; verify here only when it did not run
    principal = request.scope.get("state", {}).get("principal") or await authenticate(
        rt.settings, authorization
    )
    require_tenant(principal, tenant)
    throttles: Throttles | None = getattr(request.app.state, "throttles", None)
    if throttles is not None:  # intake and every other write, per person
        throttles.write(request.method, principal.tenant, principal.person_id)
    person = None
    if rt.copies is not None:
        async with rt.engine.connect() as conn:
            person = await rt.copies.person(conn, tenant, principal.person_id, rt.now())
    return Caller(principal, person)


CallerDep = Annotated[Caller, Depends(current_caller)]


def require_person(caller: Caller) -> Person:
    if caller.person is None:
        raise Problem(
            403,
            "You are not in this tenant's directory (as of today).",
            "Bạn không có trong danh bạ của đơn vị (tại thời điểm hiện tại).",
            code="not_in_directory",
        )
    return caller.person
