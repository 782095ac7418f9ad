"""Validate-only for edition documents (``POST /tenants/{t}/editions?dry_run=true``), on PostgreSQL and NATS: the
same checks a publication makes, answered without publishing — no new version, no ``edition.published`` event,
nothing remembered under the Idempotency-Key (the same key then publishes)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.campaign import SECRETARIAT, CampaignSystem, running_campaign
from tests.support.system import EDITION, TENANT

OFFICIAL = "p-0002"


@pytest.fixture(scope="module")
def cs(test_servers: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[CampaignSystem]:
    with running_campaign(
        test_servers,
        tmp_path_factory.mktemp("campaign-dry-run"),
        "v" + secrets.token_hex(4),
        "2023-10-20T09:00:00+07:00",
    ) as system:
        yield system


def test_a_dry_run_answers_like_a_publication_and_publishes_nothing(cs: CampaignSystem) -> None:
    base = f"/tenants/{TENANT}/editions"
    with cs.system.client("campaign", SECRETARIAT) as c:
        doc = c.get(f"{base}/{EDITION}/versions/1").json()
        before = c.get(f"{base}/{EDITION}/versions").json()
        published = len(cs.outbox("edition.published"))

        bad = {**doc, "parts": [{**doc["parts"][0], "deadline": "2023-08-01"}, *doc["parts"][1:]]}
        bad["title"] = ""
        r = c.post(base, json=bad, params={"dry_run": "true"})
        assert r.status_code == 422, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        fields = {e["field"] for e in r.json()["errors"]}
        assert "title" in fields and any(f.startswith("parts") for f in fields), fields
        assert all(e["message_vi"] for e in r.json()["errors"])

        changed = {**doc, "title": "Hội thi Cải cách hành chính năm 2023 (dự thảo sửa đổi)"}
        key = {"Idempotency-Key": "dry-" + secrets.token_hex(4)}
        r = c.post(base, json=changed, params={"dry_run": "true"}, headers=key)
        assert r.status_code == 200, r.text
        assert r.json() == {"edition": EDITION, "valid": True, "latest_version": before[-1]["version"]}
        with cs.system.client("campaign", OFFICIAL) as other:
            assert other.post(base, json=changed, params={"dry_run": "true"}).status_code == 403

        assert c.get(f"{base}/{EDITION}/versions").json() == before
        assert c.get(f"{base}/{EDITION}").json()["title"] == doc["title"]
        assert len(cs.outbox("edition.published")) == published
        # the key was not used up by the dry run: the same key publishes
        r = c.post(base, json=changed, headers=key)
        assert r.status_code == 201, r.text
        assert r.json()["version"] == before[-1]["version"] + 1
