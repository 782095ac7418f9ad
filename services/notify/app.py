"""notify: receipts, reminders, summaries, daily lists and digests — in-app, by email and by webhook.

uvicorn runs it as a factory: ``services.notify.app:create_app``. The template set (built-in plus the
operator's ``HOITHI_NOTIFY_TEMPLATES_DIR``) is checked here: a bad set stops the start with file and line.
"""

from __future__ import annotations

import sys

from fastapi import FastAPI

import shared.service
from services.notify import api, handlers, models
from services.notify.domain import rendering
from services.notify.usecases import delivery, timed
from shared.service import ServiceSpec

SPEC = ServiceSpec(
    name="notify",
    title="hoithi notify",
    metadata=models.metadata,
    backbone=models.backbone,
    copies=models.copies,
    routers=api.routers,
    handlers=handlers.build,
    background=[delivery.deliver_loop, timed.timed_loop],
)


def create_app() -> FastAPI:
    try:
        rendering.load()
    except rendering.TemplateSetError as exc:
        # One line per problem (``file:line: what``), then stop: nothing starts on a refused template set.
        for problem in exc.problems:
            print(f"notify: template refused: {problem}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None
    return shared.service.create_app(SPEC)
