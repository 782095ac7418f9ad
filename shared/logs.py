"""Structured JSON logs (structlog) with the correlation id that follows a request into its events.

The HTTP middleware sets ``correlation_id`` from ``X-Correlation-ID`` (or a new id) and binds the tenant and
edition its path names (``request_fields``); the outbox copies the correlation id into every event it writes;
a consumer sets it from the event it handles and binds the event's tenant, edition, id and type, so one id
ties a POST to every handler it triggers in every service. With tracing on (``shared/tracing.py``) every line
written inside a span also carries ``trace_id`` and ``span_id``, the ids a trace viewer searches by.
"""

from __future__ import annotations

import logging
import re
import sys
from contextvars import ContextVar

import structlog

from shared import tracing

correlation_id: ContextVar[str] = ContextVar("correlation_id", default="")


def _add_correlation(_: object, __: str, event_dict: dict[str, object]) -> dict[str, object]:
    cid = correlation_id.get()
    if cid:
        event_dict.setdefault("correlation_id", cid)
    return event_dict


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is when a line is emitted, not to the object it was at configuration.

    In a process nothing ever replaces ``sys.stderr``, so this is ``StreamHandler(sys.stderr)``. Under pytest an
    app started in-process would keep the stream of one test's capture, closed when that test ends, and every
    later line from another thread (the mail sink's aiosmtpd controller above all) became a "--- Logging error
    --- ValueError: I/O operation on closed file" traceback: ~100k lines of CI log, real errors lost in them."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property  # type: ignore[override]
    def stream(self) -> object:
        return sys.stderr

    @stream.setter
    def stream(self, _value: object) -> None:
        pass


def _add_trace(_: object, __: str, event_dict: dict[str, object]) -> dict[str, object]:
    if tracing.enabled() and (ids := tracing.current_ids()) is not None:
        event_dict.setdefault("trace_id", ids[0])
        event_dict.setdefault("span_id", ids[1])
    return event_dict


_TENANT_PATH = re.compile(r"/tenants/([^/]+)(?:/editions/([^/]+))?")


def request_fields(path: str) -> dict[str, str]:
    """The tenant and edition an HTTP path names (``/tenants/{tenant}/editions/{edition}/…``), for log lines."""
    m = _TENANT_PATH.match(path)
    if m is None:
        return {}
    return {"tenant": m[1], "edition": m[2]} if m[2] else {"tenant": m[1]}


def configure_logging(service: str, level: str = "INFO", json: bool = True) -> None:
    shared = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _add_correlation,
        _add_trace,
        lambda _l, _m, ed: {**ed, "service": service},
    ]
    renderer = structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],  # type: ignore[list-item]
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,  # type: ignore[arg-type]
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            renderer,
        ],
    )
    handler = _StderrHandler()
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("uvicorn.access", "aiosqlite", "sqlalchemy.engine"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    return structlog.get_logger(name)  # type: ignore[no-any-return]
