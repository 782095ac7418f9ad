"""Webhook subscriptions, managed by the secretariat. Thin: parse → authorise and vet (no database) → one use
case or query (``usecases/webhooks.py``) → the answer."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Response
from pydantic import AfterValidator, BaseModel, Field, HttpUrl, UrlConstraints

from services.notify.usecases import webhooks
from services.notify.usecases.webhooks import WebhookPublic
from shared.documents import Role
from shared.events.catalogue import CATALOGUE
from shared.problems import Problem, bilingual_error, field_error
from shared.service import Caller, CallerDep, RuntimeDep
from shared.uow import Idempotent, run

__all__ = ["WebhookCreate", "WebhookPublic", "router"]

router = APIRouter(tags=["notify"])


def _fits_the_column(url: HttpUrl) -> HttpUrl:
    if len(str(url)) > 1000:
        raise bilingual_error(
            "url_too_long",
            "The address is over 1000 characters once normalised.",
            "Địa chỉ dài quá 1000 ký tự sau khi chuẩn hoá.",
        )
    return url


class WebhookCreate(BaseModel):
    # The stored column holds 1000 characters: longer is a 422 here, as given or once normalised (IDNA), not
    # a database error (a 500) on insert.
    url: Annotated[HttpUrl, UrlConstraints(max_length=1000), AfterValidator(_fits_the_column)]
    secret: str | None = Field(
        default=None, min_length=16, max_length=200, description="shared HMAC secret; generated when omitted"
    )
    event_types: list[str] = Field(
        default_factory=list,
        description="[] = every event; 'deadline.*' a family",
        # what create_webhook accepts: a catalogue type, or a family ending in ".*"
        json_schema_extra={
            "items": {
                "anyOf": [
                    {"type": "string", "enum": sorted(CATALOGUE)},
                    {"type": "string", "pattern": r"^.+\.\*$"},
                ]
            }
        },
    )


def _require_secretariat(caller: Caller) -> None:
    if not caller.has_role(Role.secretariat, Role.admin):
        raise Problem(
            403,
            "Only the secretariat manages webhooks.",
            "Chỉ Thường trực Hội thi (Văn phòng Sở) được quản lý webhook.",
            code="secretariat_only",
        )


@router.post("/tenants/{tenant}/webhooks", response_model=WebhookPublic, status_code=201)
async def create_webhook(
    tenant: str,
    body: WebhookCreate,
    rt: RuntimeDep,
    caller: CallerDep,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> WebhookPublic:
    """Subscribe an HTTP endpoint to this tenant's events (POST of the CloudEvent, ``X-Hoithi-Signature``).
    A retry with the same ``Idempotency-Key`` answers the original subscription (same id and secret), never a
    second one."""
    _require_secretariat(caller)

    bad = [t for t in body.event_types if t not in CATALOGUE and not (t.endswith(".*") and len(t) > 2)]
    if bad:
        raise Problem(
            422,
            f"Unknown event type(s): {', '.join(bad)}.",
            f"Loại sự kiện không tồn tại: {', '.join(bad)}.",
            code="validation",
            errors=[
                field_error("event_types", f"unknown event type {t!r}", f"loại sự kiện {t!r} không tồn tại")
                for t in bad
            ],
        )
    await webhooks.vet_url(rt, str(body.url))
    cmd = webhooks.Subscribe(tenant, str(body.url), body.secret, tuple(body.event_types), caller.person_id)
    key = Idempotent(
        f"{tenant}|{caller.person_id}|webhooks", idempotency_key, body.model_dump(mode="json"), 201
    )
    done = await run(
        rt, webhooks.subscribe, cmd, idempotent=key
    )  # the row and its idempotent answer together
    if done.replayed is not None:  # a retry: the subscription already made
        return WebhookPublic.model_validate(done.replayed.body)
    return done.unwrap()


@router.get("/tenants/{tenant}/webhooks", response_model=list[WebhookPublic])
async def list_webhooks(tenant: str, rt: RuntimeDep, caller: CallerDep) -> list[WebhookPublic]:
    _require_secretariat(caller)
    return await webhooks.subscriptions(rt, tenant)


@router.post("/tenants/{tenant}/webhooks/{webhook_id}/enable", response_model=WebhookPublic)
async def enable_webhook(tenant: str, webhook_id: str, rt: RuntimeDep, caller: CallerDep) -> WebhookPublic:
    """Enable a disabled subscription: what it missed meanwhile is sent now, in order."""
    _require_secretariat(caller)
    return (await run(rt, webhooks.enable, webhooks.Enable(tenant, webhook_id))).unwrap()


@router.delete("/tenants/{tenant}/webhooks/{webhook_id}", status_code=204)
async def delete_webhook(tenant: str, webhook_id: str, rt: RuntimeDep, caller: CallerDep) -> Response:
    _require_secretariat(caller)
    await run(rt, webhooks.delete, webhooks.Delete(tenant, webhook_id))
    return Response(status_code=204)
