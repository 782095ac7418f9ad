"""OpenAPI honesty: every route of every service documents the errors it can give as
``application/problem+json`` (what the server sends), so generated clients and fuzzers agree with the server."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import pytest

import shared.service
from shared.problems import PROBLEM_JSON
from shared.settings import SERVICES, ServiceSettings, Settings


def _openapi(name: str, tmp: Path) -> dict[str, Any]:
    spec = importlib.import_module(f"services.{name}.app").SPEC
    own = ServiceSettings(name=name, database_url=f"sqlite+aiosqlite:///{tmp / name}.db", port=1)
    return shared.service.create_app(spec, Settings(env="test", data_dir=tmp), own).openapi()  # type: ignore[no-any-return]


@pytest.mark.parametrize("name", SERVICES)
def test_every_route_documents_its_errors_as_problem_json(name: str, tmp_path: Path) -> None:
    doc = _openapi(name, tmp_path)
    assert doc["components"]["schemas"]["Problem"]["properties"]["detail_vi"]
    wrong: list[str] = []
    for path, operations in doc["paths"].items():
        for method, op in operations.items():
            where = f"{method.upper()} {path}"
            responses = op["responses"]
            if "default" in responses:
                wrong.append(f"{where}: a catch-all default response")
            errors = {int(c): r for c, r in responses.items() if c.isdigit() and int(c) >= 400}
            for status, response in errors.items():
                if list(response.get("content", {})) != [PROBLEM_JSON]:
                    wrong.append(f"{where} {status}: {list(response.get('content', {}))}")
            expected: set[int] = set()
            if path.startswith("/tenants/"):
                expected |= {401, 403, 404, 429}
            if op.get("parameters") or "requestBody" in op:
                expected.add(422)
            if method in ("post", "put", "patch"):
                expected |= {413, 415, 422}
            if "requestBody" in op:
                expected.add(400)  # a body that cannot be parsed at all (FastAPI's own answer)
            if missing := expected - set(errors):
                wrong.append(f"{where}: {sorted(missing)} not listed")
    assert not wrong, "\n".join(wrong)


def test_raw_document_imports_document_their_bodies(tmp_path: Path) -> None:
    paths = _openapi("campaign", tmp_path)["paths"]
    assert "application/yaml" in paths["/tenants/{tenant}/directory/import"]["post"]["requestBody"]["content"]
    upload = _openapi("submissions", tmp_path)["paths"][
        "/tenants/{tenant}/editions/{edition}/initiatives/{submission_id}/attachments"
    ]["post"]
    assert "requestBody" in upload
