"""Intake's route reads no caller from the directory per request (its batch does), yet the HTTP edge must still
verify its token before a byte of the body is read and throttle it per person, like every other write."""

from __future__ import annotations

from fastapi.routing import APIRoute

from services.submissions.api.reports import router
from shared.guard import _needs_caller


def test_the_guard_verifies_intakes_token_before_its_body() -> None:
    route = next(
        r
        for r in router.routes
        if isinstance(r, APIRoute) and r.path.endswith("/experience-reports") and "POST" in r.methods
    )
    assert _needs_caller(route)
