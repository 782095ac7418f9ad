"""Every POST that creates something — a record, a ruling, a decision — accepts ``Idempotency-Key`` (README,
ARCHITECTURE: "a retry with the same key returns the original answer"). Walks every POST route of every
service, so a new one must either take the key or be named below as not creating anything."""

from __future__ import annotations

import importlib
from typing import Any

import pytest

from shared.settings import SERVICES

# POSTs that create nothing, each with why a plain retry is already safe.
NOT_CREATING: dict[tuple[str, str], str] = {
    ("rewards", "/tenants/{tenant}/editions/{edition}/rules/validate"): "a check: writes nothing",
    ("notify", "/tenants/{tenant}/inbox/{message_id}/read"): "marks read: the same state again",
    ("notify", "/tenants/{tenant}/inbox/read-all"): "marks read: the same state again",
    ("notify", "/tenants/{tenant}/webhooks/{webhook_id}/enable"): "enables: the same state again",
    ("submissions", "/tenants/{tenant}/editions/{edition}/initiatives/{submission_id}/submission"): (
        "a retry of a submitted draft answers its receipt"
    ),
    ("submissions", "/tenants/{tenant}/editions/{edition}/experience-reports/{submission_id}/withdrawal"): (
        "a state change of the caller's own report, no record"
    ),
    ("submissions", "/tenants/{tenant}/editions/{edition}/initiatives/{submission_id}/withdrawal"): (
        "a state change of the caller's own initiative, no record"
    ),
    (
        "submissions",
        "/tenants/{tenant}/editions/{edition}/initiatives/{submission_id}/authors/{person_id}/confirmation",
    ): ("a co-author confirms their own authorship: the same state again"),
    ("campaign", "/tenants/{tenant}/directory/import"): (
        "imports a whole document: the same document again changes nothing"
    ),
}
# Creating POSTs that do not take the key yet, each with the reason. Keep this empty.
NOT_YET: dict[tuple[str, str], str] = {}


def _posts() -> list[tuple[str, str, dict[str, Any]]]:
    out = []
    for service in SERVICES:
        app = importlib.import_module(f"services.{service}.app").create_app()
        for path, ops in app.openapi()["paths"].items():
            if (op := ops.get("post")) is not None:
                out.append((service, path, op))
    return out


POSTS = _posts()
CREATING = [(s, p, op) for s, p, op in POSTS if (s, p) not in NOT_CREATING]


def test_the_walk_finds_every_post_of_every_service() -> None:
    found = {(s, p) for s, p, _ in POSTS}
    assert ("submissions", "/tenants/{tenant}/editions/{edition}/selection") in found
    assert {s for s, _ in found} == {"campaign", "submissions", "rewards", "notify"}
    assert set(NOT_CREATING) <= found and set(NOT_YET) <= found  # no stale exemption


@pytest.mark.parametrize(("service", "path", "op"), CREATING, ids=[f"{s} POST {p}" for s, p, _ in CREATING])
def test_every_creating_post_accepts_an_idempotency_key(service: str, path: str, op: dict[str, Any]) -> None:
    if (service, path) in NOT_YET:
        pytest.skip(NOT_YET[(service, path)])
    headers = {p["name"].lower() for p in op.get("parameters", []) if p["in"] == "header"}
    assert "idempotency-key" in headers
