"""notify's SMTP pool against a real SMTP server (``MailSink``) behind a TCP proxy that counts connections.

A batch of deliveries goes through a few reused connections, never one per message; at most the pool's size
are in flight; a connection the network broke is reopened for the next message; a message that cannot be
handed over fails alone and goes through once the server is reachable again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest

from services.notify.settings import NotifySettings
from services.notify.usecases.delivery import SmtpPool, smtp_send
from shared.mailsink import MailSink
from tests.support.tcpproxy import TcpProxy
from tests.support.wait import eventually


@pytest.fixture
def sink(tmp_path: Path) -> Iterator[tuple[MailSink, TcpProxy]]:
    mail = MailSink(tmp_path / "mail").start()
    proxy = TcpProxy("127.0.0.1", mail.port).start()
    yield mail, proxy
    proxy.stop()
    mail.stop()


def _settings(port: int) -> NotifySettings:
    return NotifySettings(smtp_host="127.0.0.1", smtp_port=port)


def _message(i: int) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "Hội thi CCHC <no-reply@hoithi.local>"
    msg["To"] = f"cb{i:03d}@example.vn"
    msg["Subject"] = f"Nhắc hạn nộp báo cáo số {i}"
    msg["Message-ID"] = f"<d-{i}@hoithi.test>"
    msg.set_content("Hạn nộp: hết ngày 25/10/2023.")
    return msg


def _received(mail: MailSink) -> list[str]:
    return sorted(str(m["To"]) for m in mail.messages())


async def test_a_batch_reuses_a_few_connections_and_a_broken_one_is_reopened(
    sink: tuple[MailSink, TcpProxy],
) -> None:
    mail, proxy = sink
    own = _settings(proxy.port)
    pool = SmtpPool(own, 3)
    in_flight = peak = 0
    send = pool.send

    async def counted(i: int) -> None:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        try:
            await send(own, _message(i))
        finally:
            in_flight -= 1

    await asyncio.gather(*(counted(i) for i in range(30)))
    assert _received(mail) == sorted(f"cb{i:03d}@example.vn" for i in range(30))
    assert proxy.accepted <= 3 and pool.opened == proxy.accepted  # 30 messages, at most 3 connections

    # The network drops every open connection (the server is fine): the next messages reopen, none is lost.
    proxy.cut()
    proxy.restore()
    await asyncio.gather(*(pool.send(own, _message(i)) for i in range(30, 36)))
    assert len(_received(mail)) == 36
    assert proxy.accepted <= 6

    # Unreachable: each message fails by itself (the delivery loop retries it) …
    proxy.cut()
    for i in (36, 37):
        with pytest.raises(Exception):  # noqa: B017 - whatever the network says, the send failed
            await pool.send(own, _message(i))
    # … and goes through once the server can be reached again.
    proxy.restore()
    await pool.send(own, _message(36))
    await pool.send(own, _message(37))
    assert len(_received(mail)) == 38
    await pool.close()
    await eventually(lambda: proxy.active_connections == 0, timeout=10, message="connections closed (QUIT)")


async def test_a_one_off_send_opens_and_closes_its_own_connection(sink: tuple[MailSink, TcpProxy]) -> None:
    mail, proxy = sink
    await smtp_send(_settings(proxy.port), _message(1))
    assert _received(mail) == ["cb001@example.vn"]
    assert proxy.accepted == 1
    await eventually(lambda: proxy.active_connections == 0, timeout=10, message="connection closed")
