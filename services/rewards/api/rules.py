"""rewards' rules routes: check a rules document before publishing it, and the versions received with the
edition. Thin: each parses, checks the caller is a person, calls ``usecases/rules.py`` and shapes the answer."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body
from pydantic import BaseModel

from services.rewards.usecases import rules
from shared.clock import VN
from shared.problems import Problem
from shared.service import CallerDep, RuntimeDep, require_person

router = APIRouter(tags=["rewards"])


class RulesCheck(BaseModel):
    valid: bool
    rules_version: int | None = None
    errors: list[dict[str, str]] = []


@router.post("/tenants/{tenant}/editions/{edition}/rules/validate", response_model=RulesCheck)
async def validate_rules(
    tenant: str,
    edition: str,
    rt: RuntimeDep,
    caller: CallerDep,
    body: Annotated[
        dict[str, Any],
        Body(
            description="a `rewards` section, or an object holding one (an edition document: with its `parts`)"
        ),
    ],
) -> RulesCheck:
    """Check a rewards rules document before publishing it: 200 when valid; 422 with one error per field
    (English and Vietnamese) otherwise. Nothing is stored."""
    require_person(caller)
    rewards = body.get("rewards", body) if isinstance(body, dict) else body
    if not isinstance(rewards, dict):
        raise Problem(
            422, "The rules must be an object.", "Quy tắc phải là một đối tượng.", code="validation"
        )
    await rules.check(rt, tenant, edition, body, rewards)
    return RulesCheck(valid=True, rules_version=int(rewards.get("rules_version", 1)))


class RulesVersion(BaseModel):
    version: int
    rules_version: int
    valid: bool
    in_force: bool
    errors: list[dict[str, str]]
    rules: dict[str, Any]
    published_at: datetime


@router.get("/tenants/{tenant}/editions/{edition}/rules", response_model=list[RulesVersion])
async def rules_versions(tenant: str, edition: str, rt: RuntimeDep, caller: CallerDep) -> list[RulesVersion]:
    """Every rules version received with the edition, the refused ones with their errors; which is in force."""
    require_person(caller)
    rows = await rules.versions(rt, tenant, edition)
    in_force = max((x.version for x in rows if x.valid), default=None)
    return [
        RulesVersion(
            version=x.version,
            rules_version=x.rules_version,
            valid=x.valid,
            in_force=x.version == in_force,
            errors=[
                {"field": e["field"], "message": e["en"], "message_vi": e["vi"]} for e in json.loads(x.errors)
            ],
            rules=json.loads(x.doc),
            published_at=x.published_at.astimezone(VN),
        )
        for x in rows
    ]
