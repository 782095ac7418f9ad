"""schemathesis against the four running services (uvicorn, PostgreSQL, NATS, the 2023 seed) with a real
secretariat and a real official token: every operation of each OpenAPI document, 20 derandomized examples
each, tenant and edition pinned to real values so requests get past the tenant check. No answer may be a
server error (about 2,500 requests, a minute on a quiet machine); the full stateful run is ``make fuzz``."""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Iterator
from typing import Any

import pytest

from shared.settings import SERVICES
from tests.support.system import EDITION, TENANT, System

# `make fuzz` runs this (HOITHI_FUZZ=1). Not in `make test`: in the containers mode of the full suite one run
# failed in a way pytest itself could not report (INTERNALERROR formatting the traceback: "AST constructor
# recursion depth mismatch"), while the same test passes alone in both modes — to be found before it returns
# to CI (see the closing note).
if os.environ.get("HOITHI_FUZZ") != "1":
    pytest.skip("the schemathesis run is `make fuzz` (HOITHI_FUZZ=1), outside make test", allow_module_level=True)

schemathesis = pytest.importorskip("schemathesis")
hypothesis = pytest.importorskip("hypothesis")

SECRETARIAT, OFFICIAL = "p-0004", "p-0002"


@pytest.fixture(scope="module")
def system(test_servers: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    s = System(
        nats_url=test_servers.nats_url,
        prefix="z" + secrets.token_hex(4),
        workdir=tmp_path_factory.mktemp("fuzz"),
        database_urls={name: test_servers.create_database(name) for name in SERVICES},
    )
    try:
        yield s.start()
    finally:
        s.stop()


SETTINGS = hypothesis.settings(
    max_examples=20,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(hypothesis.HealthCheck),
)


def _fuzz(operation: Any, base: str, person: str, token: str, failures: list[str]) -> int:
    """20 examples of one operation as ``person``; failures appended; returns the number of requests."""
    from schemathesis.checks import not_a_server_error

    calls = 0

    @SETTINGS
    @hypothesis.given(case=operation.as_strategy())
    def run(case: Any) -> None:
        nonlocal calls
        if case.path_parameters:
            pinned = {"tenant": TENANT, "edition": EDITION}
            case.path_parameters.update({k: v for k, v in pinned.items() if k in case.path_parameters})
        calls += 1
        try:
            case.call_and_validate(
                base_url=base, headers={"Authorization": f"Bearer {token}"}, checks=[not_a_server_error]
            )
        except (AssertionError, BaseExceptionGroup) as exc:  # a failure, or schemathesis' group of them
            failures.append(f"{person} {case.operation.label}: {exc}"[:2000])

    run()
    return calls


@pytest.mark.parametrize("name", SERVICES)
def test_no_operation_answers_a_server_error(system: System, name: str) -> None:
    base = system.url(name)
    schema = schemathesis.openapi.from_url(f"{base}/openapi.json")
    failures: list[str] = []
    started = time.monotonic()
    calls = sum(
        _fuzz(result.ok(), base, person, system.token(person), failures)
        for person in (SECRETARIAT, OFFICIAL)
        for result in schema.get_all_operations()
    )
    print(f"schemathesis on {name}: {calls} requests in {time.monotonic() - started:.1f} s")
    assert not failures, "\n\n".join(failures)
