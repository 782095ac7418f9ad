"""notify's HTTP routes: a person's in-app messages, and the delivery log for the secretariat."""

from __future__ import annotations

import json
import secrets
import uuid
from datetime import datetime, time
from typing import Annotated, Literal, overload
from urllib.parse import urlsplit

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Header, Query, Response
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, HttpUrl, UrlConstraints, field_validator

from services.notify import domain, models
from services.notify.usecases import webhook_calls as webhooks
from shared.clock import VN
from shared.db import insert_ignore
from shared.documents import Role
from shared.events.catalogue import CATALOGUE
from shared.privacy import Sight, Viewer, no_store
from shared.problems import Problem, bilingual_error, field_error
from shared.service import Caller, CallerDep, Runtime, RuntimeDep
from shared.uow import Idempotent, begin

router = APIRouter(tags=["notify"])


class InAppMessage(BaseModel):
    id: str
    title: str
    body: str
    template: str
    cause_event_id: str
    created_at: datetime
    read_at: datetime | None


class Delivery(BaseModel):
    id: str
    channel: str
    template: str
    recipient: str
    to: str
    subject: str
    status: str
    attempts: int
    last_error: str | None
    cause_event_id: str
    created_at: datetime
    sent_at: datetime | None
    next_attempt_at: datetime | None
    due_at: datetime | None = None
    digest_on: str | None = None


@router.get("/tenants/{tenant}/inbox", response_model=list[InAppMessage], dependencies=[Depends(no_store)])
async def inbox(
    tenant: str,
    rt: RuntimeDep,
    caller: CallerDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    unread: bool = False,
) -> list[InAppMessage]:
    """The caller's own in-app messages, newest first (``unread=true``: only those not yet read)."""
    t = models.inapp
    q = sa.select(t).where(t.c.tenant == tenant, t.c.person_id == caller.person_id)
    if unread:
        q = q.where(t.c.read_at.is_(None))
    async with rt.engine.connect() as conn:
        rows = (await conn.execute(q.order_by(t.c.created_at.desc(), t.c.id).limit(limit))).all()
    return [
        InAppMessage(
            id=r.id,
            title=r.title,
            body=r.body,
            template=r.template,
            cause_event_id=r.cause_event_id,
            created_at=_vn(r.created_at),
            read_at=_vn(r.read_at),
        )
        for r in rows
    ]


@router.get("/tenants/{tenant}/deliveries", response_model=list[Delivery], dependencies=[Depends(no_store)])
async def deliveries(
    tenant: str,
    rt: RuntimeDep,
    caller: CallerDep,
    status: Literal["pending", "sent", "failed", "held", "digested", "paused"] | None = None,
    person: str | None = None,
    event: str | None = None,
    channel: Literal["email", "webhook"] | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[Delivery]:
    """The delivery log, newest first, per person (recipient), per event (cause id), per state, per channel.

    The secretariat reads all of it; anyone may read their own (``person`` = themselves).
    """
    # one policy (shared.privacy): the whole log to the secretariat (and the administrator), one's own to anyone
    if Viewer.of(caller.person_id, caller.person).sight(person or "", None) < Sight.full:
        raise Problem(
            403,
            "Only the secretariat may read the delivery log (others: their own, with person=<your id>).",
            "Chỉ Thường trực Hội thi (Văn phòng Sở) được xem nhật ký gửi thông báo "
            "(người khác chỉ xem của mình, với person=<mã của mình>).",
            code="secretariat_only",
        )
    t = models.deliveries
    q = sa.select(t).where(t.c.tenant == tenant)
    if status is not None:
        q = q.where(t.c.status == status)
    if person is not None:
        q = q.where(t.c.recipient == person)
    if event is not None:
        q = q.where(t.c.cause_event_id == event)
    if channel is not None:
        q = q.where(t.c.channel == channel)
    async with rt.engine.connect() as conn:
        rows = (await conn.execute(q.order_by(t.c.created_at.desc(), t.c.id).limit(limit))).all()
    return [
        Delivery(
            id=r.id,
            channel=r.channel,
            template=r.template,
            recipient=r.recipient,
            to=r.to_address,
            subject=r.subject,
            status=r.status,
            attempts=r.attempts,
            last_error=r.last_error,
            cause_event_id=r.cause_event_id,
            created_at=_vn(r.created_at),
            sent_at=_vn(r.sent_at),
            next_attempt_at=_vn(r.next_attempt_at) if r.status == "pending" else None,
            due_at=_vn(r.due_at) if r.due_at is not None else None,
            digest_on=r.digest_on.isoformat() if r.digest_on is not None else None,
        )
        for r in rows
    ]


# ---------------------------------------------------------------------------------------------- in-app inbox


@router.get("/tenants/{tenant}/inbox/unread-count")
async def unread_count(tenant: str, rt: RuntimeDep, caller: CallerDep) -> dict[str, int]:
    t = models.inapp
    async with rt.engine.connect() as conn:
        n = (
            await conn.execute(
                sa.select(sa.func.count())
                .select_from(t)
                .where(t.c.tenant == tenant, t.c.person_id == caller.person_id, t.c.read_at.is_(None))
            )
        ).scalar_one()
    return {"unread": int(n)}


@router.post("/tenants/{tenant}/inbox/{message_id}/read", response_model=InAppMessage)
async def mark_read(tenant: str, message_id: str, rt: RuntimeDep, caller: CallerDep) -> InAppMessage:
    """Mark one of the caller's messages read (idempotent: the first reading time is kept)."""
    t = models.inapp
    mine = sa.and_(t.c.tenant == tenant, t.c.id == message_id, t.c.person_id == caller.person_id)
    async with rt.engine.begin() as conn:
        await conn.execute(sa.update(t).where(mine, t.c.read_at.is_(None)).values(read_at=rt.now()))
        r = (await conn.execute(sa.select(t).where(mine))).first()
    if r is None:
        raise Problem(
            404,
            "No such message in your inbox.",
            "Không có thông báo này trong hộp thư của bạn.",
            code="message_not_found",
        )
    return InAppMessage(
        id=r.id,
        title=r.title,
        body=r.body,
        template=r.template,
        cause_event_id=r.cause_event_id,
        created_at=_vn(r.created_at),
        read_at=_vn(r.read_at),
    )


@router.post("/tenants/{tenant}/inbox/read-all")
async def mark_all_read(tenant: str, rt: RuntimeDep, caller: CallerDep) -> dict[str, int]:
    t = models.inapp
    async with rt.engine.begin() as conn:
        res = await conn.execute(
            sa.update(t)
            .where(t.c.tenant == tenant, t.c.person_id == caller.person_id, t.c.read_at.is_(None))
            .values(read_at=rt.now())
        )
    return {"marked": int(res.rowcount or 0)}


# ---------------------------------------------------------------------------------------------- preferences


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
    t = models.preferences
    async with rt.engine.connect() as conn:
        r = (
            await conn.execute(sa.select(t).where(t.c.tenant == tenant, t.c.person_id == caller.person_id))
        ).first()
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
    await _save_preferences(rt, tenant, caller, body)
    return body


async def _save_preferences(rt: RuntimeDep, tenant: str, caller: Caller, body: PreferencePublic) -> None:
    t = models.preferences
    values = {**body.model_dump(), "updated_at": rt.now()}
    async with rt.engine.begin() as conn:
        res = await conn.execute(
            sa.update(t).where(t.c.tenant == tenant, t.c.person_id == caller.person_id).values(**values)
        )
        if not res.rowcount:
            await conn.execute(
                insert_ignore(conn, t, {"tenant": tenant, "person_id": caller.person_id, **values})
            )


# ---------------------------------------------------------------------------------------------- webhooks


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


class WebhookPublic(BaseModel):
    id: str
    url: str
    event_types: list[str]
    enabled: bool
    consecutive_failures: int
    disabled_at: datetime | None
    created_at: datetime
    secret: str | None = Field(default=None, description="shown once, at creation")


def _require_secretariat(caller: Caller) -> None:
    if not caller.has_role(Role.secretariat, Role.admin):
        raise Problem(
            403,
            "Only the secretariat manages webhooks.",
            "Chỉ Thường trực Hội thi (Văn phòng Sở) được quản lý webhook.",
            code="secretariat_only",
        )


def _webhook(r: object, secret: str | None = None) -> WebhookPublic:
    return WebhookPublic(
        id=r.id,  # type: ignore[attr-defined]
        url=r.url,  # type: ignore[attr-defined]
        event_types=json.loads(r.event_types),  # type: ignore[attr-defined]
        enabled=r.enabled,  # type: ignore[attr-defined]
        consecutive_failures=r.consecutive_failures,  # type: ignore[attr-defined]
        disabled_at=_vn(r.disabled_at) if r.disabled_at else None,  # type: ignore[attr-defined]
        created_at=_vn(r.created_at),  # type: ignore[attr-defined]
        secret=secret,
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
    await _vet_webhook_url(rt, str(body.url))
    secret = body.secret or secrets.token_urlsafe(32)
    row = {
        "id": str(uuid.uuid4()),
        "tenant": tenant,
        "url": str(body.url),
        "secret": secret,
        "event_types": json.dumps(body.event_types),
        "enabled": True,
        "consecutive_failures": 0,
        "disabled_count": 0,
        "created_at": rt.now(),
        "created_by": caller.person_id,
    }
    w = models.webhooks
    key = Idempotent(
        f"{tenant}|{caller.person_id}|webhooks", idempotency_key, body.model_dump(mode="json"), 201
    )
    async with begin(rt) as uow:  # the unit of work as a block: the row and its idempotent answer together
        stored = await uow.replayed(key)
        if stored is not None:  # a retry: the subscription already made
            return WebhookPublic.model_validate(stored.body)
        await uow.conn.execute(sa.insert(w).values(row))
        r = (await uow.conn.execute(sa.select(w).where(w.c.id == row["id"]))).one()
        answer = _webhook(r, secret)
        await uow.remember(key, answer)
    return answer


async def _vet_webhook_url(rt: Runtime, url: str) -> None:
    """422 on ``url`` for what delivery would refuse anyway (see ``webhooks``): credentials, http in production,
    internal addresses. A name that does not resolve now is accepted: delivery resolves (and vets) again."""
    allow = webhooks.AllowList.parse(rt.own.webhook_allowed_hosts)
    try:
        webhooks.check_url(url, production=rt.settings.env == "production", allow=allow)
        parts = urlsplit(url)
        if parts.hostname:
            try:
                await webhooks.vetted_addresses(parts.hostname, parts.port or 443, allow)
            except webhooks.WebhookRefused as exc:
                if not isinstance(exc.__cause__, (OSError, TimeoutError)):
                    raise
    except webhooks.WebhookRefused as exc:
        raise Problem(
            422,
            f"This webhook URL is not accepted: {exc}.",
            f"Địa chỉ webhook không được chấp nhận: {exc.vi}.",
            code="validation",
            errors=[field_error("url", str(exc), exc.vi, code="webhook_url_refused")],
        ) from None


@router.get("/tenants/{tenant}/webhooks", response_model=list[WebhookPublic])
async def list_webhooks(tenant: str, rt: RuntimeDep, caller: CallerDep) -> list[WebhookPublic]:
    _require_secretariat(caller)
    w = models.webhooks
    async with rt.engine.connect() as conn:
        rows = (await conn.execute(sa.select(w).where(w.c.tenant == tenant).order_by(w.c.created_at))).all()
    return [_webhook(r) for r in rows]


@router.post("/tenants/{tenant}/webhooks/{webhook_id}/enable", response_model=WebhookPublic)
async def enable_webhook(tenant: str, webhook_id: str, rt: RuntimeDep, caller: CallerDep) -> WebhookPublic:
    """Enable a disabled subscription: what it missed meanwhile is sent now, in order."""
    _require_secretariat(caller)
    w, t = models.webhooks, models.deliveries
    async with rt.engine.begin() as conn:
        r = (await conn.execute(sa.select(w).where(w.c.tenant == tenant, w.c.id == webhook_id))).first()
        if r is None:
            raise _no_webhook()
        await conn.execute(
            sa.update(w)
            .where(w.c.id == webhook_id)
            .values(enabled=True, consecutive_failures=0, disabled_at=None)
        )
        await conn.execute(
            sa.update(t)
            .where(t.c.recipient == webhook_id, t.c.channel == domain.WEBHOOK, t.c.status == "paused")
            .values(status="pending", attempts=0)
        )
        r = (await conn.execute(sa.select(w).where(w.c.id == webhook_id))).one()
    return _webhook(r)


@router.delete("/tenants/{tenant}/webhooks/{webhook_id}", status_code=204)
async def delete_webhook(tenant: str, webhook_id: str, rt: RuntimeDep, caller: CallerDep) -> Response:
    _require_secretariat(caller)
    w = models.webhooks
    async with rt.engine.begin() as conn:
        res = await conn.execute(sa.delete(w).where(w.c.tenant == tenant, w.c.id == webhook_id))
    if not res.rowcount:
        raise _no_webhook()
    return Response(status_code=204)


def _no_webhook() -> Problem:
    return Problem(404, "No such webhook.", "Không có webhook này.", code="webhook_not_found")


@overload
def _vn(dt: datetime) -> datetime: ...
@overload
def _vn(dt: None) -> None: ...
def _vn(dt: datetime | None) -> datetime | None:
    """Instants are shown in Vietnam time (+07:00)."""
    return dt.astimezone(VN) if dt is not None else None


# ------------------------------------------------------------------------------------------------ reminders

from services.notify import reminders  # its own module, mounted with notify's routes

router.include_router(reminders.router)
