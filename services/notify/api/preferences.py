"""A person's notification preferences (immediate or a daily digest, quiet hours, language). Thin: parse →
check (no database) → one query or use case (``usecases/preferences.py``) → the answer."""

from __future__ import annotations

from datetime import time
from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, field_validator

from services.notify.usecases import preferences
from shared.problems import Problem, bilingual_error, field_error
from shared.service import CallerDep, RuntimeDep
from shared.uow import run

router = APIRouter(tags=["notify"])

HHMM_PATTERN = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"


class PreferencePublic(BaseModel):
    # Quiet hours have both ends or neither: said in the schema too, so a client drawing from it agrees.
    model_config = ConfigDict(
        json_schema_extra={
            "anyOf": [
                {
                    "required": ["quiet_from", "quiet_to"],
                    "properties": {"quiet_from": {"type": "string"}, "quiet_to": {"type": "string"}},
                },
                {"properties": {"quiet_from": {"type": "null"}, "quiet_to": {"type": "null"}}},
            ]
        }
    )

    mode: Literal["immediate", "digest"] = Field(
        default="immediate",
        description="non-urgent kinds: at once, or one email a day at 07:30 (+07:00); receipts and deadline "
        "notices are always immediate",
    )
    quiet_from: str | None = Field(
        default=None,
        description="HH:MM Vietnam time; quiet hours may wrap midnight",
        json_schema_extra={"pattern": HHMM_PATTERN},
    )
    quiet_to: str | None = Field(default=None, json_schema_extra={"pattern": HHMM_PATTERN})
    language: Literal["vi", "en"] = "vi"

    @field_validator("quiet_from", "quiet_to")
    @classmethod
    def _hhmm(cls, v: str | None) -> str | None:
        if v is None:
            return v
        try:
            time.fromisoformat(v)
            ok = len(v) == 5
        except ValueError:
            ok = False
        if not ok:
            raise bilingual_error(
                "hhmm", "expected HH:MM, e.g. 21:00", "cần dạng giờ:phút (HH:MM), ví dụ 21:00"
            )
        return v


@router.get("/tenants/{tenant}/preferences/me", response_model=PreferencePublic)
async def my_preferences(tenant: str, rt: RuntimeDep, caller: CallerDep) -> PreferencePublic:
    r = await preferences.mine(rt, tenant, caller.person_id)
    if r is None:
        return PreferencePublic()
    return PreferencePublic(mode=r.mode, quiet_from=r.quiet_from, quiet_to=r.quiet_to, language=r.language)


@router.put("/tenants/{tenant}/preferences/me", response_model=PreferencePublic)
async def set_my_preferences(
    tenant: str, body: PreferencePublic, rt: RuntimeDep, caller: CallerDep
) -> PreferencePublic:
    if (body.quiet_from is None) != (body.quiet_to is None):
        field = "quiet_to" if body.quiet_to is None else "quiet_from"
        raise Problem(
            422,
            "Quiet hours need both a start and an end.",
            "Giờ yên lặng cần cả giờ bắt đầu và giờ kết thúc.",
            code="validation",
            errors=[
                field_error(
                    field,
                    "required with the other end of the quiet hours",
                    "bắt buộc khi đã đặt đầu kia của giờ yên lặng",
                    code="required",
                )
            ],
        )
    cmd = preferences.SavePreferences(
        tenant, caller.person_id, body.mode, body.quiet_from, body.quiet_to, body.language
    )
    await run(rt, preferences.save, cmd)
    return body
