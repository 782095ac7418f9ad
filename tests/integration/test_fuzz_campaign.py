"""schemathesis against a running campaign (uvicorn, PostgreSQL, NATS) with a real secretariat token: every
operation of its OpenAPI document, 20 derandomized examples each, tenant and edition pinned to real values so
requests get past the tenant check. No answer may be a server error; the full run is ``make fuzz`` (issue 14)."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.campaign import SECRETARIAT, CampaignSystem, campaign_system
from tests.support.system import EDITION, TENANT

schemathesis = pytest.importorskip("schemathesis")
hypothesis = pytest.importorskip("hypothesis")


@pytest.fixture(scope="module")
def cs(test_servers: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[CampaignSystem]:
    system = campaign_system(
        test_servers, tmp_path_factory.mktemp("fuzz"), "z" + secrets.token_hex(4), "2023-10-20T09:00:00+07:00"
    )
    try:
        yield system
    finally:
        system.stop()


def test_no_operation_of_campaign_answers_a_server_error(cs: CampaignSystem) -> None:
    from schemathesis.checks import not_a_server_error

    base = cs.system.url("campaign")
    schema = schemathesis.openapi.from_url(f"{base}/openapi.json")
    headers = {"Authorization": f"Bearer {cs.system.token(SECRETARIAT)}"}
    failures: list[str] = []
    calls = 0
    started = time.monotonic()
    for result in schema.get_all_operations():
        operation = result.ok()

        @hypothesis.settings(
            max_examples=20,
            derandomize=True,
            deadline=None,
            database=None,
            suppress_health_check=list(hypothesis.HealthCheck),
        )
        @hypothesis.given(case=operation.as_strategy())
        def run(case: Any) -> None:
            nonlocal calls
            if case.path_parameters:
                case.path_parameters.update(
                    {k: v for k, v in (("tenant", TENANT), ("edition", EDITION)) if k in case.path_parameters}
                )
            calls += 1
            try:
                case.call_and_validate(base_url=base, headers=headers, checks=[not_a_server_error])
            except (AssertionError, BaseExceptionGroup) as exc:  # a failure, or schemathesis' group of them
                failures.append(f"{case.operation.label}: {exc}"[:2000])

        run()
    took = time.monotonic() - started
    print(f"schemathesis: {calls} requests in {took:.1f} s")
    assert not failures, "\n\n".join(failures)
