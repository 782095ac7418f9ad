"""Campaign: editions, the org directory, assignments (later: the deadline clock and the 90-day campaign)."""

from fastapi import FastAPI

from services.campaign import api, handlers, models
from services.campaign.usecases import deadlines
from shared import service
from shared.service import ServiceSpec

SPEC = ServiceSpec(
    name="campaign",
    title="hoithi — campaign (kỳ hội thi, danh bạ, phân công)",
    metadata=models.metadata,
    backbone=models.backbone,
    copies=models.copies,
    routers=api.routers,
    handlers=handlers.build,
    background=[deadlines.deadline_clock],
)


def create_app() -> FastAPI:
    return service.create_app(SPEC)
