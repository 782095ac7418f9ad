"""rewards: the participation ledger and the priority list for the reward council (Hội đồng thi đua khen thưởng).

uvicorn runs it as a factory: ``services.rewards.app:create_app``.
"""

from __future__ import annotations

from fastapi import FastAPI

import shared.service
from services.rewards import api, handlers, models
from services.rewards.usecases import standings_job
from shared.service import ServiceSpec

SPEC = ServiceSpec(
    name="rewards",
    title="hoithi rewards",
    metadata=models.metadata,
    backbone=models.backbone,
    copies=models.copies,
    routers=api.routers,
    handlers=handlers.build,
    background=[standings_job.standings_job],
)


def create_app() -> FastAPI:
    return shared.service.create_app(SPEC)
