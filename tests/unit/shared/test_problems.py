"""A domain refusal reaches the person as the right status, in English and Vietnamese, as problem details."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from services.submissions import domain
from shared import problems
from shared.errors import DomainError, Refusal, field_error


@pytest.mark.parametrize(
    ("refusal", "status"),
    [
        (Refusal.INVALID, 422),
        (Refusal.CONFLICT, 409),
        (Refusal.FORBIDDEN, 403),
        (Refusal.NOT_FOUND, 404),
        (Refusal.TOO_LARGE, 413),
        (Refusal.UNSUPPORTED, 415),
        (Refusal.UNAVAILABLE, 503),
    ],
)
def test_the_api_layer_maps_each_refusal_to_its_status(refusal: Refusal, status: int) -> None:
    app = FastAPI()
    problems.install(app)

    @app.post("/x")
    def refuse() -> None:
        raise DomainError(
            refusal,
            "The shares add up to 90%, not 100%.",
            "Tổng tỷ lệ đóng góp là 90%, không phải 100%.",
            code="shares",
            errors=[field_error("authors", "must add up to 100%", "phải bằng 100%")],
        )

    answer = TestClient(app).post("/x")
    assert answer.status_code == status
    assert answer.headers["content-type"].startswith("application/problem+json")
    body = answer.json()
    assert body["status"] == status and body["type"].endswith("/shares")
    assert body["detail_vi"] == "Tổng tỷ lệ đóng góp là 90%, không phải 100%."
    assert body["errors"][0]["message_vi"] == "phải bằng 100%"


def test_a_refusal_carries_its_headers_to_the_answer() -> None:
    """Something away for now (the object store while NATS restarts) says when to try again."""
    app = FastAPI()
    problems.install(app)

    @app.post("/x")
    def refuse() -> None:
        raise DomainError(
            Refusal.UNAVAILABLE, "Try again later.", "Vui lòng thử lại sau.", headers={"Retry-After": "10"}
        )

    answer = TestClient(app).post("/x")
    assert (answer.status_code, answer.headers["retry-after"]) == (503, "10")


def test_a_rule_of_the_submissions_domain_answers_409_through_the_api_layer() -> None:
    """check_changeable knows only that a withdrawn report is a conflict; the answer is still a 409."""
    app = FastAPI()
    problems.install(app)

    @app.post("/reports/r-1/revise")
    def revise() -> None:
        domain.check_changeable("withdrawn", "Báo cáo")

    answer = TestClient(app).post("/reports/r-1/revise")
    assert answer.status_code == 409
    assert "Báo cáo" in answer.json()["detail_vi"]
