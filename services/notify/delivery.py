"""The delivery loop: hands pending ``deliveries`` rows to SMTP, outside any database transaction.

For each due row: lease it (a conditional UPDATE, so one process sends it), send, then in one transaction mark
it and emit ``notification.sent`` / ``notification.failed`` through the outbox. A failure is retried with a
growing delay (``domain.retry_delay``) until ``domain.MAX_ATTEMPTS``, then the row is ``failed`` for good. A row
marked ``sent`` is never selected again. SMTP gives no way to make a hand-over and the mark one atomic step:
a process that dies between the two sends that message again once its lease expires (at least once, with the
same ``Message-ID``, so a mail client can tell).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any

import aiosmtplib
import sqlalchemy as sa

from services.notify import domain, models
from services.notify.handlers import wake_event
from shared.events.catalogue import NotificationFailed, NotificationSent
from shared.logs import correlation_id
from shared.service import Runtime
from shared.settings import ServiceSettings

log = logging.getLogger("hoithi.notify.delivery")

BATCH = 100
CONCURRENCY = 10
POLL = 0.25  # seconds between looks at the table when nothing woke the loop
LEASE = timedelta(seconds=120)  # longer than an SMTP hand-over can take (SMTP_TIMEOUT)
SMTP_TIMEOUT = 30.0

Sender = Callable[[ServiceSettings, EmailMessage], Awaitable[Any]]


async def smtp_send(own: ServiceSettings, message: EmailMessage) -> None:
    assert own.smtp_host is not None
    await aiosmtplib.send(
        message,
        hostname=own.smtp_host,
        port=own.smtp_port,
        username=own.smtp_username,
        password=own.smtp_password,
        start_tls=own.smtp_starttls,
        timeout=SMTP_TIMEOUT,
    )


def email_message(own: ServiceSettings, row: Any) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = own.mail_from
    msg["To"] = row.to_address
    msg["Subject"] = row.subject
    msg["Date"] = format_datetime(datetime.now(UTC))
    msg["Message-ID"] = f"<{row.id}@hoithi.local>"  # the same on a resend
    msg["X-Hoithi-Notification"] = row.id
    msg.set_content(row.text)
    if row.html:
        msg.add_alternative(row.html, subtype="html")
    return msg


async def deliver_loop(rt: Runtime, send: Sender = smtp_send) -> None:
    """Run until cancelled (``ServiceSpec.background``). Without ``smtp_host`` email rows stay pending."""
    if rt.own.smtp_host is None:
        log.warning("no SMTP host (HOITHI_NOTIFY_SMTP_HOST): email is not sent; deliveries stay pending")
        return
    wake = wake_event(rt)
    failures = 0
    while True:
        wake.clear()
        try:
            n = await deliver_due(rt, send)
            failures = 0
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - the database may be down: back off, never give up
            failures += 1
            delay = min(0.2 * 2 ** min(failures, 8), 30.0)
            log.warning("delivery loop failed (%d), retrying in %.1fs: %r", failures, delay, exc)
            await asyncio.sleep(delay)
            continue
        if n < BATCH:
            try:
                await asyncio.wait_for(wake.wait(), POLL)
            except TimeoutError:
                pass


async def deliver_due(rt: Runtime, send: Sender = smtp_send) -> int:
    """Send every due pending row (up to ``BATCH``); return how many were attempted."""
    t = models.deliveries
    now = datetime.now(UTC)
    async with rt.engine.connect() as conn:
        rows = (
            await conn.execute(
                sa.select(t)
                .where(t.c.status == "pending", t.c.next_attempt_at <= now)
                .where(sa.or_(t.c.lease_until.is_(None), t.c.lease_until < now))
                .order_by(t.c.next_attempt_at)
                .limit(BATCH)
            )
        ).all()
        await conn.rollback()
    if not rows:
        return 0
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(row: Any) -> None:
        async with gate:
            await deliver_one(rt, row, send)

    await asyncio.gather(*(one(r) for r in rows))
    return len(rows)


async def deliver_one(rt: Runtime, row: Any, send: Sender = smtp_send) -> bool:
    """Lease, send, mark. Returns True if this call sent the row."""
    t = models.deliveries
    now = datetime.now(UTC)
    async with rt.engine.begin() as conn:
        leased = await conn.execute(
            sa.update(t)
            .where(t.c.id == row.id, t.c.status == "pending")
            .where(sa.or_(t.c.lease_until.is_(None), t.c.lease_until < now))
            .values(lease_until=now + LEASE)
        )
    if leased.rowcount != 1:
        return False  # sent, failed or leased by another process meanwhile
    error: str | None = None
    try:
        await send(rt.own, email_message(rt.own, row))
    except Exception as exc:  # noqa: BLE001 - every SMTP or network failure is retried
        error = f"{type(exc).__name__}: {exc}"[:2000]
    token = correlation_id.set(row.correlation_id or row.cause_event_id)
    try:
        for attempt in range(5):
            try:
                await _mark(rt, row, error)
                break
            except Exception as exc:  # noqa: BLE001 - keep the lease; try to record the outcome again
                log.warning("could not record delivery %s (%r); retrying", row.id, exc)
                await asyncio.sleep(0.5 * 2**attempt)
        else:
            log.error("delivery %s: outcome not recorded; it is sent again after its lease", row.id)
    finally:
        correlation_id.reset(token)
    rt.outbox.committed()
    return error is None


async def _mark(rt: Runtime, row: Any, error: str | None) -> None:
    t = models.deliveries
    attempt = row.attempts + 1
    real_now = datetime.now(UTC)
    business_now = rt.now()
    common: dict[str, Any] = {
        "notification_id": row.id,
        "channel": row.channel,
        "recipient": row.recipient,
        "template": row.template,
        "cause_event_id": row.cause_event_id,
        "attempt": attempt,
    }
    async with rt.engine.begin() as conn:
        if error is None:
            done = await conn.execute(
                sa.update(t)
                .where(t.c.id == row.id, t.c.status == "pending")
                .values(status="sent", attempts=attempt, sent_at=business_now, lease_until=None)
            )
            if done.rowcount:
                await rt.outbox.emit(
                    conn,
                    "notification.sent",
                    NotificationSent.model_validate(common),
                    tenant=row.tenant,
                    subject=row.id,
                    time=business_now,
                    edition=row.edition,
                    causation_id=row.cause_event_id,
                    event_id=domain.sent_event_id(row.id),
                )
            log.info("sent %s %s to %s", row.template, row.id, row.recipient)
            return
        final = domain.gives_up(attempt)
        done = await conn.execute(
            sa.update(t)
            .where(t.c.id == row.id, t.c.status == "pending")
            .values(
                status="failed" if final else "pending",
                attempts=attempt,
                last_error=error,
                next_attempt_at=real_now + domain.retry_delay(attempt),
                lease_until=None,
            )
        )
        if done.rowcount:
            await rt.outbox.emit(
                conn,
                "notification.failed",
                NotificationFailed.model_validate({**common, "error": error, "final": final}),
                tenant=row.tenant,
                subject=row.id,
                time=business_now,
                edition=row.edition,
                causation_id=row.cause_event_id,
                event_id=domain.failed_event_id(row.id, attempt),
            )
        log.warning(
            "delivery %s attempt %d failed%s: %s", row.id, attempt, " for good" if final else "", error
        )
