"""The delivery loop: hands pending ``deliveries`` rows to SMTP or a webhook, outside any database transaction.

For each due row: lease it (a conditional UPDATE, so one process sends it), send, then in one transaction mark
it and emit ``notification.sent`` / ``notification.failed`` through the outbox. A pass's email rows are leased,
and their send intents committed, in one transaction, and their outcomes recorded in groups (``Outcomes``):
three commits per email made a deadline rush's receipts wait minutes for their mail on SQLite (9 e-mails/s,
every commit also waiting for the write lock behind the consumer's). A failure is retried with a
growing delay (``domain.retry_delay``, base and cap from ``HOITHI_NOTIFY_RETRY_BASE_SECONDS`` /
``HOITHI_NOTIFY_RETRY_MAX_SECONDS``) until ``HOITHI_NOTIFY_MAX_ATTEMPTS`` (default 8), then the row is ``failed``
for good. A row marked ``sent`` is never selected again. A row with ``due_at`` (quiet hours) waits for that
business instant. A webhook that fails ``domain.WEBHOOK_FAILURES_TO_DISABLE`` times in a row is disabled: its
rows are ``paused`` (kept, sent when it is enabled again) and the secretariat is told once.

One replica of the deployment sends: the holder of the delivery lease (``shared/lease.py``, ``notify-delivery``);
the others stand by and take over when it stops renewing. Every decision to send (a row's lease, a send intent)
is fenced by the lease's generation, so a sender that stalled past its lease starts nothing after its successor
took over; recording an outcome is not fenced (what the server answered is a fact, whoever holds the lease).

Email is exactly once but for one window. Before an email is handed to SMTP, a **send intent** is committed
(``models.send_intents``: the delivery id and its stable ``Message-ID``, ``<delivery-id@hoithi.<tenant>>``); the
mark after the SMTP server accepted settles it in the same transaction as ``sent``. A sender that takes the lease
first reconciles: every intent its predecessor left unsettled (and every row it had leased) is due again at
once, and is sent with the **same** Message-ID. So a crash before the intent or after it but before the hand-over
sends the message once; a crash after the mark sends nothing more; only a crash between the SMTP server's
acceptance and the mark's commit (the window: milliseconds) sends it twice, with one Message-ID, which a
receiver deduplicating by Message-ID shows once. Failpoints (shared/failpoints.py, test-only) prove each case.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from email.header import Header
from email.message import Message
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import format_datetime, formataddr, parseaddr
from typing import Any

import aiosmtplib
import sqlalchemy as sa

from services.notify import domain, models
from services.notify.settings import NotifySettings
from services.notify.usecases import queue, webhook_calls
from services.notify.usecases.queue import wake_event
from shared import failpoints, metrics, tracing
from shared.clock import VN
from shared.events.catalogue import NotificationFailed, NotificationSent
from shared.lease import Lease, fenced_begin, periodic
from shared.logs import correlation_id
from shared.service import Runtime
from shared.streams import consumers_of

log = logging.getLogger("hoithi.notify.delivery")

BATCH = 100
CONCURRENCY = 10
POLL = 0.25  # seconds between looks at the table when nothing woke the loop
LEASE = timedelta(seconds=120)  # longer than an SMTP hand-over can take (SMTP_TIMEOUT)
SMTP_TIMEOUT = 30.0

WEBHOOK_TIMEOUT = 10.0
DELIVERY_LEASE = "notify-delivery"

Sender = Callable[[NotifySettings, Message], Awaitable[Any]]


def retry_policy(own: NotifySettings) -> tuple[timedelta, timedelta, int]:
    """(base, cap, max attempts) from ``HOITHI_NOTIFY_RETRY_BASE_SECONDS`` / ``_RETRY_MAX_SECONDS`` /
    ``_MAX_ATTEMPTS``."""
    return (
        timedelta(seconds=own.retry_base_seconds),
        timedelta(seconds=own.retry_max_seconds),
        own.max_attempts,
    )


async def smtp_send(own: NotifySettings, message: Message) -> None:
    """One message on a connection of its own (a one-off send; the loop sends through an :class:`SmtpPool`)."""
    pool = SmtpPool(own, 1)
    try:
        await pool.send(own, message)
    finally:
        await pool.close()


# Failures that mean the connection itself is gone (the server closed an idle one, a reset): the message was not
# taken on that connection as far as we know, so a reused connection is reopened and the message sent once more.
_BROKEN = (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPConnectError, ConnectionError)


class SmtpPool:
    """At most ``size`` SMTP connections, each reused for message after message (one batch of deliveries), instead
    of a connection, a greeting, TLS and a login per message. ``send`` has the shape of a ``Sender``; at most
    ``size`` messages are in flight. STARTTLS (``HOITHI_NOTIFY_SMTP_STARTTLS``) or implicit TLS
    (``HOITHI_NOTIFY_SMTP_TLS``, port 465 usually), credentials from settings; plain SMTP otherwise.

    A message the server refuses fails alone (its delivery is retried as before) and its connection is closed,
    never reused in an unknown state. A reused connection found broken is reopened once for the same message; a
    fresh one that fails is that message's failure. A message the server accepted but whose answer was lost is
    sent again by the retry with its one Message-ID, exactly as when a connection per message broke there."""

    def __init__(self, own: NotifySettings, size: int) -> None:
        self.own = own
        self._gate = asyncio.Semaphore(max(1, size))
        self._idle: list[aiosmtplib.SMTP] = []
        self.opened = 0  # connections opened (for tests and logs)

    async def _open(self) -> aiosmtplib.SMTP:
        own = self.own
        assert own.smtp_host is not None
        client = aiosmtplib.SMTP(
            hostname=own.smtp_host,
            port=own.smtp_port,
            username=own.smtp_username,
            password=own.smtp_password,
            use_tls=own.smtp_tls,
            start_tls=False if own.smtp_tls else own.smtp_starttls,
            timeout=SMTP_TIMEOUT,
        )
        await client.connect()
        self.opened += 1
        return client

    async def send(self, own: NotifySettings, message: Message) -> None:
        async with self._gate:
            client = self._idle.pop() if self._idle else None
            if client is not None and not client.is_connected:
                client = None
            reused = client is not None
            try:
                if client is None:
                    client = await self._open()
                try:
                    await client.send_message(message)
                except _BROKEN:
                    if not reused:
                        raise
                    _drop(client)
                    client = await self._open()
                    await client.send_message(message)
            except BaseException:
                if client is not None:
                    _drop(client)
                raise
            self._idle.append(client)

    async def close(self) -> None:
        """QUIT every idle connection (a server that does not answer is dropped)."""
        idle, self._idle = self._idle, []
        for client in idle:
            try:
                await asyncio.wait_for(client.quit(), 5.0)
            except Exception:  # noqa: BLE001 - closing: whatever the server says, the connection is done
                _drop(client)


def _drop(client: aiosmtplib.SMTP) -> None:
    with contextlib.suppress(Exception):  # already gone
        client.close()


async def webhook_post(rt: Runtime, row: Any, secret: str) -> None:
    """POST the CloudEvent exactly as stored, signed, to a vetted address (``webhook_calls.post``); any status but
    2xx is a failure, recorded by its code only (never the answer's body)."""
    body = row.text.encode()
    headers = {
        "Content-Type": "application/cloudevents+json; charset=utf-8",
        domain.SIGNATURE_HEADER: domain.sign(secret, body),
        "X-Hoithi-Delivery": row.id,
        "X-Hoithi-Event-Type": row.template,
    }
    status = await webhook_calls.post(
        row.to_address,
        body,
        headers,
        production=rt.settings.env == "production",
        allow=webhook_calls.AllowList.parse(rt.own.webhook_allowed_hosts),
        timeout=WEBHOOK_TIMEOUT,
    )
    if not 200 <= status < 300:
        raise RuntimeError(f"HTTP {status}")


def message_id(tenant: str, delivery_id: str) -> str:
    """The stable ``Message-ID`` of a delivery: the same however often (and by whichever replica) it is sent."""
    return f"<{delivery_id}@hoithi.{tenant}>"


# The steps of sending one email at which the exactly-once tests crash notify (shared/failpoints.py).
FAILPOINT_STEPS = ("notify.before_intent", "notify.after_intent", "notify.after_smtp", "notify.after_mark")


def _fail(rt: Runtime, step: str) -> None:
    failpoints.crash(step, sigkill=True)


def email_message(own: NotifySettings, row: Any, now: datetime) -> Message:
    """The email of one delivery row. ``Date:`` is ``now`` on the deployment's clock (a simulated 2023 in the
    demo), in Vietnam time — the same clock every other time the recipient reads comes from.

    Built with the ``compat32`` classes and the non-ASCII headers encoded explicitly (RFC 2047, UTF-8), not with
    ``EmailMessage``: its header registry parses and refolds every header, which made building and flattening
    a Vietnamese message half of notify's time while a rush's receipts went out (1.4 ms against 0.35 ms a
    message, measured). A reader parses the same From, Subject and bodies either way."""
    text = MIMEText(row.text, "plain", "utf-8")
    if row.html:
        # A boundary of our own: the generator's random one is checked against the parts with a regular
        # expression compiled per message (a third of a millisecond). The parts are base64 (UTF-8), whose
        # alphabet has no "_", so this one cannot occur in them.
        msg: Message = MIMEMultipart("alternative", boundary=f"=_hoithi_{row.id}")
        msg.attach(text)
        msg.attach(MIMEText(row.html, "html", "utf-8"))
    else:
        msg = text
    name, address = parseaddr(own.mail_from)
    msg["From"] = formataddr((name, address), charset="utf-8") if name else address
    msg["To"] = row.to_address
    msg["Subject"] = Header(row.subject, "utf-8") if not row.subject.isascii() else row.subject
    msg["Date"] = format_datetime(now.astimezone(VN))
    msg["Message-ID"] = message_id(row.tenant, row.id)  # the same on a resend, whoever sends it
    msg["X-Hoithi-Notification"] = row.id
    msg["X-Hoithi-Template"] = row.template
    return msg


async def deliver_loop(rt: Runtime, send: Sender = smtp_send) -> None:
    """Run until cancelled (``ServiceSpec.background``), in the replica holding the delivery lease; the others
    stand by. Without ``smtp_host`` email rows stay pending."""
    if rt.own.smtp_host is None:
        log.warning("no SMTP host (HOITHI_NOTIFY_SMTP_HOST): email is not sent; deliveries stay pending")
    wake = wake_event(rt)
    lease = rt.extra["delivery_lease"] = Lease(rt.backbone.leases, DELIVERY_LEASE, ttl=rt.settings.lease_ttl)
    reconciled: int | None = None  # the lease generation this replica reconciled for

    async def one_pass() -> float:
        nonlocal reconciled
        if reconciled != lease.generation:
            await reconcile(rt, lease)
            reconciled = lease.generation
        wake.clear()
        async with rt.rush_turn("email-delivery"):  # a receipt's mail may wait for intake's rush to pass
            n = await deliver_due(rt, send, lease)
        if n < BATCH:
            try:
                await asyncio.wait_for(wake.wait(), POLL)
            except TimeoutError:
                pass
        return 0.0

    def failed(exc: Exception, failures: int) -> float:  # the database may be down: back off, never give up
        delay = min(0.2 * 2 ** min(failures, 8), 30.0)
        log.warning("delivery loop failed (%d), retrying in %.1fs: %r", failures, delay, exc)
        return delay

    await periodic(rt.engine, lease, one_pass, standby=max(POLL, rt.settings.lease_ttl / 5), on_error=failed)


async def reconcile(rt: Runtime, lease: Lease | None) -> int:
    """On taking the delivery lease: what a previous sender left in flight is due again now. Its email rows'
    leases are dropped (it can no longer send them), and each unsettled send intent — a hand-over whose outcome nobody recorded —
    is resent by the loop with the same Message-ID. Returns how many intents were open."""
    t, i = models.deliveries, models.send_intents
    async with fenced_begin(rt.engine, lease) as conn:
        open_ids = (
            (await conn.execute(sa.select(i.c.delivery_id).where(i.c.settled_at.is_(None)))).scalars().all()
        )
        if open_ids:
            # settled rows (an intent left open by an older version) need nothing more
            await conn.execute(
                sa.update(i)
                .where(i.c.settled_at.is_(None))
                .where(i.c.delivery_id.in_(sa.select(t.c.id).where(t.c.status != "pending")))
                .values(settled_at=datetime.now(UTC))
            )
        # Email rows only: a predecessor that still runs cannot send one of them any more (its intent would be
        # refused by the fence). A webhook row has no intent between its lease and its POST, so it keeps its row
        # lease (``LEASE``) and is retried once that expires, as before.
        await conn.execute(
            sa.update(t)
            .where(t.c.status == "pending", t.c.channel == domain.EMAIL, t.c.lease_until.is_not(None))
            .values(lease_until=None)
        )
    if open_ids:
        log.warning(
            "%d email(s) were being handed to SMTP when the previous sender stopped: sending them again now, "
            "with the same Message-ID",
            len(open_ids),
        )
    return len(open_ids)


def due_in_lane(
    lane: int, now: datetime, business_now: datetime, channels: Sequence[str], limit: int
) -> sa.Select[Any]:
    """The next ``limit`` rows of ``lane`` due now, in the order they fell due: a range of ``ix_deliveries_lane``
    read in its order, whatever the planner knows. With every lane in one statement (ordered by lane), SQLite
    without statistics took ``ix_deliveries_due`` (dropped since, migration ``c4e6a8b0d2f1``) and sorted every
    pending row due at each pass — 38 ms a pass of 100 e-mails with 34,000 pending after a 20,000-official rush,
    so a backlog cost its square to send. A row of a lane not in ``domain.LANES`` is never read: every writer
    takes its lane from ``domain.lane``."""
    t = models.deliveries
    return (
        sa.select(t)
        .where(t.c.status == "pending", t.c.lane == lane, t.c.next_attempt_at <= now)
        .where(t.c.channel.in_(channels))
        .where(sa.or_(t.c.due_at.is_(None), t.c.due_at <= business_now))
        .where(sa.or_(t.c.lease_until.is_(None), t.c.lease_until < now))
        .order_by(t.c.next_attempt_at)
        .limit(limit)
    )


async def deliver_due(rt: Runtime, send: Sender = smtp_send, lease: Lease | None = None) -> int:
    """Send every due pending row (up to ``BATCH``); return how many were attempted."""
    now = datetime.now(UTC)
    business_now = rt.now()
    channels = [domain.WEBHOOK] + ([domain.EMAIL] if rt.own.smtp_host else [])
    rows: list[Any] = []
    async with rt.engine.connect() as conn:
        for lane in domain.LANES:  # receipts first (``domain.lane``)
            rows += (
                await conn.execute(due_in_lane(lane, now, business_now, channels, BATCH - len(rows)))
            ).all()
            if len(rows) >= BATCH:
                break
        await conn.rollback()
    if not rows:
        return 0
    gate = asyncio.Semaphore(CONCURRENCY)
    # The batch's email goes through at most CONCURRENCY SMTP connections, each reused message after message.
    pool = SmtpPool(rt.own, CONCURRENCY) if send is smtp_send else None
    sender = pool.send if pool is not None else send
    emails = [r for r in rows if r.channel == domain.EMAIL]
    outcomes = Outcomes(rt)

    async def one(row: Any) -> None:
        async with gate:
            await deliver_one(rt, row, sender, lease)

    async def email(row: Any) -> None:
        async with gate:
            await _traced(rt, row, lambda: _send_leased(rt, row, sender, outcomes))

    try:
        leased = await _lease_emails(rt, emails, lease)
        await asyncio.gather(
            *(one(r) for r in rows if r.channel != domain.EMAIL), *(email(r) for r in leased)
        )
    finally:
        if pool is not None:
            await pool.close()
    return len(rows)


async def deliver_one(rt: Runtime, row: Any, send: Sender = smtp_send, lease: Lease | None = None) -> bool:
    """Lease, (email: record the send intent), send, mark. Returns True if this call sent the row. (The loop
    sends a batch's email through ``_lease_emails`` and ``_send_leased``: the same steps, one transaction for the
    batch's leases and intents, the outcomes recorded in groups.)"""
    return await _traced(rt, row, lambda: _deliver_one(rt, row, send, lease))


async def _traced(rt: Runtime, row: Any, deliver: Callable[[], Awaitable[bool]]) -> bool:
    """Tracing on: ``deliver()`` under a span, child of the cause event's trace (its envelope, kept in notify's
    inbox)."""
    if not tracing.enabled():
        return await deliver()
    async with rt.engine.connect() as conn:
        i = rt.backbone.inbox
        purposes = [c.purpose for c in consumers_of(rt.name)]
        cause = (
            await conn.execute(
                sa.select(i.c.envelope).where(i.c.purpose.in_(purposes), i.c.event_id == row.cause_event_id)
            )
        ).scalar()
    with tracing.span_following(
        cause,
        f"notify deliver {row.channel}",
        attributes={
            "hoithi.channel": row.channel,
            "hoithi.template": row.template,
            "hoithi.delivery_id": row.id,
        },
    ) as span:
        sent = await deliver()
        if span is not None:
            span.set_attribute("hoithi.sent", sent)
        return sent


async def _deliver_one(rt: Runtime, row: Any, send: Sender, lease: Lease | None) -> bool:
    t = models.deliveries
    now = datetime.now(UTC)
    async with fenced_begin(rt.engine, lease) as conn:
        leased = await conn.execute(
            sa.update(t)
            .where(t.c.id == row.id, t.c.status == "pending")
            .where(sa.or_(t.c.lease_until.is_(None), t.c.lease_until < now))
            .values(lease_until=now + LEASE)
        )
    if leased.rowcount != 1:
        return False  # sent, failed or leased by another process meanwhile
    error: str | None = None
    secret: str | None = None
    if row.channel == domain.WEBHOOK:
        secret = await _webhook_secret(rt, row)
        if secret is None:  # disabled or removed meanwhile: keep the row for when it is enabled again
            await _pause(rt, row)
            return False
    else:
        _fail(rt, "notify.before_intent")
        async with fenced_begin(rt.engine, lease) as conn:
            await _intend(conn, [row], lease)
        _fail(rt, "notify.after_intent")
    try:
        if row.channel == domain.WEBHOOK:
            assert secret is not None
            await webhook_post(rt, row, secret)
        else:
            await send(rt.own, email_message(rt.own, row, rt.now()))
    except Exception as exc:  # noqa: BLE001 - every SMTP, HTTP or network failure is retried
        error = f"{type(exc).__name__}: {exc}"[:2000]
    return await _outcome(rt, row, error, None)


async def _lease_emails(rt: Runtime, rows: list[Any], lease: Lease | None) -> list[Any]:
    """One transaction for a batch's email rows: lease each one still pending and not leased by another sender
    (a conditional UPDATE … RETURNING), and commit its send intent — so a batch of 100 is one commit before
    the hand-overs, not 200. Returns the rows leased."""
    if not rows:
        return []
    t = models.deliveries
    now = datetime.now(UTC)
    _fail(rt, "notify.before_intent")
    async with fenced_begin(rt.engine, lease) as conn:
        got = set(
            (
                await conn.execute(
                    sa.update(t)
                    .where(t.c.id.in_([r.id for r in rows]), t.c.status == "pending")
                    .where(sa.or_(t.c.lease_until.is_(None), t.c.lease_until < now))
                    .values(lease_until=now + LEASE)
                    .returning(t.c.id)
                )
            )
            .scalars()
            .all()
        )
        leased = [r for r in rows if r.id in got]
        await _intend(conn, leased, lease)
    _fail(rt, "notify.after_intent")
    return leased


async def _intend(conn: Any, rows: list[Any], lease: Lease | None) -> None:
    """Record, before the hand-over, that these emails are about to be sent and under which Message-ID."""
    if not rows:
        return
    i = models.send_intents
    recorded_at = datetime.now(UTC)

    def values(row: Any) -> dict[str, Any]:
        return {
            "tenant": row.tenant,
            "message_id": message_id(row.tenant, row.id),
            "attempt": row.attempts + 1,
            "generation": lease.generation if lease is not None else None,
            "recorded_at": recorded_at,
            "settled_at": None,
        }

    known = set(
        (await conn.execute(sa.select(i.c.delivery_id).where(i.c.delivery_id.in_([r.id for r in rows]))))
        .scalars()
        .all()
    )
    again = [{"k_id": r.id, **values(r)} for r in rows if r.id in known]
    if again:
        await conn.execute(
            sa.update(i)
            .where(i.c.delivery_id == sa.bindparam("k_id"))
            .values(**{k: sa.bindparam(k) for k in values(rows[0])}),
            again,
        )
    new = [{"delivery_id": r.id, **values(r)} for r in rows if r.id not in known]
    if new:
        await conn.execute(sa.insert(i), new)


async def _send_leased(rt: Runtime, row: Any, send: Sender, outcomes: Outcomes) -> bool:
    """Hand one leased, intended email to SMTP and record what the server answered (with the batch's others)."""
    error: str | None = None
    try:
        await send(rt.own, email_message(rt.own, row, rt.now()))
    except Exception as exc:  # noqa: BLE001 - every SMTP or network failure is retried
        error = f"{type(exc).__name__}: {exc}"[:2000]
    return await _outcome(rt, row, error, outcomes)


async def _outcome(rt: Runtime, row: Any, error: str | None, outcomes: Outcomes | None) -> bool:
    """Record the outcome of one hand-over (in a group when ``outcomes``; alone if the group failed)."""
    metrics.email(row.channel, error is None)
    if row.channel == domain.EMAIL and error is None:
        _fail(rt, "notify.after_smtp")  # inside the window: accepted by SMTP, not yet marked
    token = correlation_id.set(row.correlation_id or row.cause_event_id)
    try:
        recorded = False
        if outcomes is not None:
            with contextlib.suppress(Exception):  # the group failed: recorded alone below
                await outcomes.record(row, error)
                recorded = True
        for attempt in range(5):
            if recorded:
                break
            try:
                await _mark(rt, row, error)
                recorded = True
            except Exception as exc:  # noqa: BLE001 - keep the lease; try to record the outcome again
                log.warning("could not record delivery %s (%r); retrying", row.id, exc)
                await asyncio.sleep(0.5 * 2**attempt)
        if not recorded:
            log.error("delivery %s: outcome not recorded; it is sent again after its lease", row.id)
    finally:
        correlation_id.reset(token)
    rt.outbox.committed()
    if row.channel == domain.EMAIL and error is None:
        _fail(rt, "notify.after_mark")
    return error is None


class Outcomes:
    """The outcomes of one batch's hand-overs, recorded in groups: whoever finds the previous group committing
    waits for it, then commits every outcome queued meanwhile in one transaction. An email's mark waits at most
    one more commit than alone (the window between the SMTP server's acceptance and the mark stays a few
    milliseconds), and a batch of 100 costs a few commits, not 100."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self._queued: list[tuple[Any, str | None, asyncio.Future[None]]] = []
        self._turn = asyncio.Lock()

    async def record(self, row: Any, error: str | None) -> None:
        mine: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queued.append((row, error, mine))
        async with self._turn:
            if not mine.done():  # nobody committed it meanwhile: commit it with everything queued
                group, self._queued = self._queued, []
                try:
                    async with self.rt.engine.begin() as conn:
                        if sent := [r for r, e, _ in group if e is None]:
                            await _record_sent(conn, self.rt, sent)
                        for r, e, _ in group:
                            if e is not None:
                                await _record(conn, self.rt, r, e)
                except BaseException as exc:  # each outcome of the group is then recorded alone
                    for _, _, f in group:
                        if not f.done():
                            f.set_exception(exc if isinstance(exc, Exception) else RuntimeError("stopping"))
                    if not isinstance(exc, Exception):
                        raise
                else:
                    for _, _, f in group:
                        f.set_result(None)
        await mine


async def _webhook_secret(rt: Runtime, row: Any) -> str | None:
    w = models.webhooks
    async with rt.engine.connect() as conn:
        sub = (await conn.execute(sa.select(w.c.secret, w.c.enabled).where(w.c.id == row.recipient))).first()
    return sub.secret if sub is not None and sub.enabled else None


async def _pause(rt: Runtime, row: Any) -> None:
    t = models.deliveries
    async with rt.engine.begin() as conn:
        await conn.execute(
            sa.update(t)
            .where(t.c.id == row.id, t.c.status == "pending")
            .values(status="paused", lease_until=None)
        )


async def _webhook_outcome(conn: Any, rt: Runtime, row: Any, error: str | None) -> bool:
    """Count the subscription's failures in a row; True when this failure disabled it (rows paused, notice)."""
    w = models.webhooks
    if error is None:
        await conn.execute(sa.update(w).where(w.c.id == row.recipient).values(consecutive_failures=0))
        return False
    await conn.execute(
        sa.update(w).where(w.c.id == row.recipient).values(consecutive_failures=w.c.consecutive_failures + 1)
    )
    sub = (await conn.execute(sa.select(w).where(w.c.id == row.recipient))).first()
    if sub is None or not sub.enabled or sub.consecutive_failures < domain.WEBHOOK_FAILURES_TO_DISABLE:
        return False
    # Conditional, so two replicas failing at once disable it (and tell the secretariat) once.
    done = await conn.execute(
        sa.update(w)
        .where(w.c.id == sub.id, w.c.enabled.is_(True))
        .values(enabled=False, disabled_at=rt.now(), disabled_count=w.c.disabled_count + 1)
    )
    if not done.rowcount:
        return False
    t = models.deliveries
    await conn.execute(
        sa.update(t)
        .where(t.c.recipient == sub.id, t.c.channel == domain.WEBHOOK, t.c.status == "pending")
        .values(status="paused", lease_until=None)
    )
    cause = f"webhook:{sub.id}:{sub.disabled_count + 1}"
    who = await queue.people(conn, rt, sub.tenant, rt.now())
    for person in who.with_role("secretariat"):
        await queue.enqueue(
            conn,
            rt,
            tenant=sub.tenant,
            edition=None,
            person=person,
            template=domain.WEBHOOK_DISABLED,
            context={
                "person_name": person.name,
                "url": sub.url,
                "failures": sub.consecutive_failures,
                "last_error": error,
                "at_vn": domain.format_datetime_vn(rt.now()),
            },
            cause_event_id=domain.deterministic_id(cause),
            correlation_id=row.correlation_id,
            ids={
                ch: domain.notification_id(cause, person.id, ch, domain.WEBHOOK_DISABLED)
                for ch in (domain.IN_APP, domain.EMAIL)
            },
        )
    log.warning(
        "webhook %s (%s) disabled after %d failures in a row", sub.id, sub.url, sub.consecutive_failures
    )
    return True


async def _mark(rt: Runtime, row: Any, error: str | None) -> None:
    """Record the outcome in a transaction of its own."""
    async with rt.engine.begin() as conn:
        await _record(conn, rt, row, error)


# What every hand-over records, built once (``shared/db.py``: hot statements).
_SETTLE_INTENTS = (
    sa.update(models.send_intents)
    .where(
        models.send_intents.c.delivery_id.in_(sa.bindparam("p_ids", expanding=True)),
        models.send_intents.c.settled_at.is_(None),
    )
    .values(settled_at=sa.bindparam("p_at"))
)
_SENT = (
    sa.update(models.deliveries)
    .where(
        models.deliveries.c.id.in_(sa.bindparam("p_ids", expanding=True)),
        models.deliveries.c.status == "pending",
    )
    .values(
        status="sent",
        attempts=models.deliveries.c.attempts + 1,
        sent_at=sa.bindparam("p_at"),
        lease_until=None,
    )
    .returning(models.deliveries.c.id)
)


def _common(row: Any) -> dict[str, Any]:
    """What ``notification.sent`` and ``notification.failed`` say of the hand-over of ``row``."""
    return {
        "notification_id": row.id,
        "channel": row.channel,
        "recipient": row.recipient,
        "template": row.template,
        "cause_event_id": row.cause_event_id,
        "attempt": row.attempts + 1,
    }


async def _record_sent(conn: Any, rt: Runtime, rows: list[Any]) -> None:
    """Record hand-overs the server accepted, set-wise (a group of ``Outcomes``, or one): their send intents
    settled, the rows still pending marked sent (one statement each for the group), and a ``notification.sent``
    for each row marked. Not fenced (``_record``)."""
    ids = [r.id for r in rows]
    business_now = rt.now()
    await conn.execute(_SETTLE_INTENTS, {"p_ids": ids, "p_at": datetime.now(UTC)})
    marked = set((await conn.execute(_SENT, {"p_ids": ids, "p_at": business_now})).scalars())
    for row in rows:
        if row.channel == domain.WEBHOOK:
            await _webhook_outcome(conn, rt, row, None)
        if row.id in marked:
            await rt.outbox.emit(
                conn,
                "notification.sent",
                NotificationSent.model_validate(_common(row)),
                tenant=row.tenant,
                subject=row.id,
                time=business_now,
                edition=row.edition,
                causation_id=row.cause_event_id,
                event_id=domain.sent_event_id(row.id),
            )
        log.info("sent %s %s to %s", row.template, row.id, row.recipient)


async def _record(conn: Any, rt: Runtime, row: Any, error: str | None) -> None:
    """Record the outcome. Not fenced: what the SMTP server or webhook answered is a fact whoever holds the lease
    now, and recording it keeps a successor from sending the row again (it only sends ``pending`` rows)."""
    if error is None:
        await _record_sent(conn, rt, [row])
        return
    t = models.deliveries
    base, cap, max_attempts = retry_policy(rt.own)
    attempt = row.attempts + 1
    real_now = datetime.now(UTC)
    business_now = rt.now()
    # the send intent is settled with the outcome, in the same transaction
    await conn.execute(_SETTLE_INTENTS, {"p_ids": [row.id], "p_at": real_now})
    final = domain.gives_up(attempt, max_attempts)
    disabled = False
    if row.channel == domain.WEBHOOK:
        disabled = await _webhook_outcome(conn, rt, row, error)
    status = "paused" if disabled else "failed" if final else "pending"
    done = await conn.execute(
        sa.update(t)
        .where(t.c.id == row.id, t.c.status.in_(("pending", "paused")))
        .values(
            status=status,
            attempts=attempt,
            last_error=error,
            next_attempt_at=real_now + domain.retry_delay(attempt, base, cap),
            lease_until=None,
        )
    )
    if done.rowcount:
        await rt.outbox.emit(
            conn,
            "notification.failed",
            NotificationFailed.model_validate({**_common(row), "error": error, "final": final}),
            tenant=row.tenant,
            subject=row.id,
            time=business_now,
            edition=row.edition,
            causation_id=row.cause_event_id,
            event_id=domain.failed_event_id(row.id, attempt),
        )
    log.warning("delivery %s attempt %d failed%s: %s", row.id, attempt, " for good" if final else "", error)
