"""Structured JSON logs (structlog) with the correlation id that follows a request into its events.

The HTTP middleware sets ``correlation_id`` from ``X-Correlation-ID`` (or a new id); the outbox copies it into
every event it writes; a consumer sets it from the event it handles, so one id ties a POST to every handler
it triggers in every service.
"""

from __future__ import annotations

import logging
import sys
from contextvars import ContextVar

import structlog

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


def configure_logging(service: str, level: str = "INFO", json: bool = True) -> None:
    shared = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _add_correlation,
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
