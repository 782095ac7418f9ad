"""Submissions: intake of initiatives and experience reports, deadlines and intake closing, attachments,
eligibility rulings, council review and selection, exports."""

from fastapi import FastAPI

from services.submissions import api, handlers, models
from services.submissions.api import initiatives, reports
from services.submissions.usecases import intake, objects, receipts
from shared import metrics, service
from shared.service import ServiceSpec

SPEC = ServiceSpec(
    name="submissions",
    title="hoithi — submissions (sáng kiến, báo cáo trải nghiệm)",
    metadata=models.metadata,
    backbone=models.backbone,
    copies=models.copies,
    routers=api.routers,
    handlers=handlers.build,
    background=[intake.closing_job, objects.collector_job, receipts.pressure_job],
)

# What an operator watches on a deadline evening: receipts accepted and refused (hoithi_intake_requests_total).
metrics.intake_route("POST", reports.router.prefix + "/experience-reports")
metrics.intake_route("POST", initiatives.router.prefix + "/initiatives/{submission_id}/submission")


def create_app() -> FastAPI:
    return service.create_app(SPEC)
