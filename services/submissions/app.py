"""Submissions: intake of initiatives and experience reports (later: council review and selection)."""

from fastapi import FastAPI

from services.submissions import api, handlers, models
from shared import service
from shared.service import ServiceSpec

SPEC = ServiceSpec(
    name="submissions",
    title="hoithi — submissions (sáng kiến, báo cáo trải nghiệm)",
    metadata=models.metadata,
    backbone=models.backbone,
    copies=models.copies,
    routers=[api.router],
    handlers=handlers.build,
)


def create_app() -> FastAPI:
    return service.create_app(SPEC)
