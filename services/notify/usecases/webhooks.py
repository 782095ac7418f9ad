"""Webhook subscriptions: the secretariat subscribes an HTTP endpoint to a tenant's events, lists, enables and
deletes them. Each change is one use case in one unit of work (``shared/uow.py``); the URL is vetted before
(``vet_url``: no database, a name look-up), as delivery would vet it anyway (``webhook_calls.py``). The routers
are ``api/webhooks.py``.
"""

from __future__ import annotations

import json
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

import sqlalchemy as sa
from pydantic import BaseModel, Field

from services.notify import domain, models
from services.notify.usecases import webhook_calls
from shared.errors import DomainError, Refusal, field_error
from shared.service import Runtime
from shared.uow import UnitOfWork

Uow = UnitOfWork[Runtime]


# A subscription as the secretariat sees it: the answer of every route, and a creation's stored idempotent
# answer. (No docstring: it would become the schema's description in the OpenAPI document.)
class WebhookPublic(BaseModel):
    id: str
    url: str
    event_types: list[str]
    enabled: bool
    consecutive_failures: int
    disabled_at: datetime | None
    created_at: datetime
    secret: str | None = Field(default=None, description="shown once, at creation")


def public(r: object, secret: str | None = None) -> WebhookPublic:
    return WebhookPublic(
        id=r.id,  # type: ignore[attr-defined]
        url=r.url,  # type: ignore[attr-defined]
        event_types=json.loads(r.event_types),  # type: ignore[attr-defined]
        enabled=r.enabled,  # type: ignore[attr-defined]
        consecutive_failures=r.consecutive_failures,  # type: ignore[attr-defined]
        disabled_at=domain.vn_time(r.disabled_at) if r.disabled_at else None,  # type: ignore[attr-defined]
        created_at=domain.vn_time(r.created_at),  # type: ignore[attr-defined]
        secret=secret,
    )


def no_webhook() -> DomainError:
    return DomainError(
        Refusal.NOT_FOUND, "No such webhook.", "Không có webhook này.", code="webhook_not_found"
    )


async def vet_url(rt: Runtime, url: str) -> None:
    """Refuse (on ``url``) what delivery would refuse anyway (see ``webhook_calls``): credentials, http in
    production, internal addresses. A name that does not resolve now is accepted: delivery resolves (and vets)
    again."""
    allow = webhook_calls.AllowList.parse(rt.own.webhook_allowed_hosts)
    try:
        webhook_calls.check_url(url, production=rt.settings.env == "production", allow=allow)
        parts = urlsplit(url)
        if parts.hostname:
            try:
                await webhook_calls.vetted_addresses(parts.hostname, parts.port or 443, allow)
            except webhook_calls.WebhookRefused as exc:
                if not isinstance(exc.__cause__, (OSError, TimeoutError)):
                    raise
    except webhook_calls.WebhookRefused as exc:
        raise DomainError(
            Refusal.INVALID,
            f"This webhook URL is not accepted: {exc}.",
            f"Địa chỉ webhook không được chấp nhận: {exc.vi}.",
            code="validation",
            errors=[field_error("url", str(exc), exc.vi, code="webhook_url_refused")],
        ) from None


async def subscriptions(rt: Runtime, tenant: str) -> list[WebhookPublic]:
    """The tenant's subscriptions, oldest first (a query)."""
    w = models.webhooks
    async with rt.engine.connect() as conn:
        rows = (await conn.execute(sa.select(w).where(w.c.tenant == tenant).order_by(w.c.created_at))).all()
    return [public(r) for r in rows]


@dataclass(frozen=True)
class Subscribe:
    tenant: str
    url: str  # vetted (``vet_url``)
    secret: str | None  # None: one is generated
    event_types: tuple[str, ...]  # catalogue types or families ("deadline.*"); () = every event
    created_by: str


async def subscribe(uow: Uow, cmd: Subscribe) -> WebhookPublic:
    """Record the subscription; the answer shows its secret (once)."""
    secret = cmd.secret or secrets.token_urlsafe(32)
    row = {
        "id": str(uuid.uuid4()),
        "tenant": cmd.tenant,
        "url": cmd.url,
        "secret": secret,
        "event_types": json.dumps(list(cmd.event_types)),
        "enabled": True,
        "consecutive_failures": 0,
        "disabled_count": 0,
        "created_at": uow.now(),
        "created_by": cmd.created_by,
    }
    w = models.webhooks
    await uow.conn.execute(sa.insert(w).values(row))
    r = (await uow.conn.execute(sa.select(w).where(w.c.id == row["id"]))).one()
    return public(r, secret)


@dataclass(frozen=True)
class Enable:
    tenant: str
    webhook_id: str


async def enable(uow: Uow, cmd: Enable) -> WebhookPublic:
    """Enable a disabled subscription: what it missed meanwhile (its paused rows) is due again, in order."""
    w, t = models.webhooks, models.deliveries
    conn = uow.conn
    r = (await conn.execute(sa.select(w).where(w.c.tenant == cmd.tenant, w.c.id == cmd.webhook_id))).first()
    if r is None:
        raise no_webhook()
    await conn.execute(
        sa.update(w)
        .where(w.c.id == cmd.webhook_id)
        .values(enabled=True, consecutive_failures=0, disabled_at=None)
    )
    await conn.execute(
        sa.update(t)
        .where(t.c.recipient == cmd.webhook_id, t.c.channel == domain.WEBHOOK, t.c.status == "paused")
        .values(status="pending", attempts=0)
    )
    r = (await conn.execute(sa.select(w).where(w.c.id == cmd.webhook_id))).one()
    return public(r)


@dataclass(frozen=True)
class Delete:
    tenant: str
    webhook_id: str


async def delete(uow: Uow, cmd: Delete) -> None:
    w = models.webhooks
    res = await uow.conn.execute(sa.delete(w).where(w.c.tenant == cmd.tenant, w.c.id == cmd.webhook_id))
    if not res.rowcount:
        raise no_webhook()
