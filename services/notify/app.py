"""notify: receipts and other messages, in-app and by email, with a delivery log.

uvicorn runs it as a factory: ``services.notify.app:create_app``.
"""

from __future__ import annotations

from fastapi import FastAPI

import shared.service
from services.notify import api, delivery, handlers, models
from shared.service import ServiceSpec

SPEC = ServiceSpec(
    name="notify",
    title="hoithi notify",
    metadata=models.metadata,
    backbone=models.backbone,
    copies=models.copies,
    routers=[api.router],
    handlers=handlers.build,
    background=[delivery.deliver_loop],
)


def create_app() -> FastAPI:
    return shared.service.create_app(SPEC)
