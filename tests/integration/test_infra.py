"""The run-and-test infrastructure itself: our nats-server, the mail sink, the TCP proxy, fresh databases."""

from __future__ import annotations

import socket
import threading
import time
from email.message import EmailMessage
from pathlib import Path

import aiosmtplib
import asyncpg
import nats
import pytest
from nats.js.api import StorageType, StreamConfig
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from shared.devserver import NatsServer
from shared.mailsink import MailSink
from tests.support.servers import TestServers, via_proxy
from tests.support.tcpproxy import TcpProxy
from tests.support.wait import eventually, eventually_sync


def _asyncpg_dsn(sqlalchemy_url: str) -> str:
    return sqlalchemy_url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def test_given_or_own_nats_accepts_a_jetstream_publish(
    test_servers: TestServers, unique_prefix: str
) -> None:
    nc = await nats.connect(test_servers.nats_url, connect_timeout=5, max_reconnect_attempts=0)
    try:
        js = nc.jetstream()
        stream = unique_prefix.upper()
        await js.add_stream(
            StreamConfig(name=stream, subjects=[f"{unique_prefix}.>"], storage=StorageType.MEMORY)
        )
        try:
            ack = await js.publish(f"{unique_prefix}.hello", b"xin chao")
            assert ack.stream == stream and ack.seq == 1
        finally:
            await js.delete_stream(stream)
    finally:
        await nc.close()


@pytest.mark.fault
async def test_acknowledged_message_survives_kill_and_restart(
    own_nats_server: NatsServer, unique_prefix: str
) -> None:
    stream = unique_prefix.upper()
    nc = await nats.connect(own_nats_server.url, connect_timeout=5, max_reconnect_attempts=0)
    js = nc.jetstream()
    await js.add_stream(StreamConfig(name=stream, subjects=[f"{unique_prefix}.>"], storage=StorageType.FILE))
    ack = await js.publish(
        f"{unique_prefix}.submission.received", "Biên nhận".encode(), headers={"Nats-Msg-Id": "m1"}
    )
    await nc.close()

    own_nats_server.kill()
    assert not own_nats_server.running
    own_nats_server.start()

    nc = await nats.connect(own_nats_server.url, connect_timeout=5, max_reconnect_attempts=0)
    try:
        js = nc.jetstream()
        message = await js.get_msg(stream, ack.seq)
        assert message.data == "Biên nhận".encode()
        assert (await js.stream_info(stream)).state.messages == 1
    finally:
        await nc.close()


@pytest.mark.fault
def test_restart_keeps_port_and_store(tmp_path: Path) -> None:
    with NatsServer(store_dir=tmp_path / "store") as server:
        url = server.url
        first_pid = server.pid
        server.restart()
        assert server.url == url and server.pid != first_pid and server.running
    assert not server.running
    assert (tmp_path / "store" / "jetstream").is_dir()


def test_start_failure_reports_the_log_tail(tmp_path: Path) -> None:
    with NatsServer(store_dir=tmp_path / "a") as first:
        clash = NatsServer(first.port, store_dir=tmp_path / "b")
        with pytest.raises(RuntimeError, match="address already in use"):
            clash.start(timeout=10)
        assert not clash.running


async def test_mail_sink_keeps_a_vietnamese_message_intact(tmp_path: Path) -> None:
    subject = "Biên nhận hồ sơ"
    body = "Hồ sơ sáng kiến của đơn vị đã được tiếp nhận lúc 23:59:59 ngày 25/10/2023.\n"
    with MailSink(tmp_path / "mail") as sink:
        assert sink.port > 0
        message = EmailMessage()
        message["From"] = "hoithi@soctrang.gov.vn"
        message["To"] = "Nguyễn Văn An <an@soctrang.gov.vn>"
        message["Subject"] = subject
        message.set_content(body)
        await aiosmtplib.send(
            message, hostname="127.0.0.1", port=sink.port, recipients=["an@soctrang.gov.vn", "bcc@x.vn"]
        )

        received = await eventually(sink.messages, timeout=5, message="no .eml written")
    assert len(received) == 1
    assert received[0]["Subject"] == subject
    assert received[0]["To"].addresses[0].display_name == "Nguyễn Văn An"
    assert received[0].get_content() == body
    assert received[0]["X-Envelope-To"] == "an@soctrang.gov.vn, bcc@x.vn"
    (path,) = (tmp_path / "mail").iterdir()  # nothing but the finished file: no temp file left behind
    assert path.suffix == ".eml" and path.name[8] == "T"


async def test_proxy_cut_makes_postgres_unreachable_until_restored(
    test_servers: TestServers, postgres_proxy: TcpProxy
) -> None:
    dsn = _asyncpg_dsn(via_proxy(test_servers.database_server_url, postgres_proxy))

    conn = await asyncpg.connect(dsn, timeout=5)
    assert await conn.fetchval("SELECT 1") == 1

    postgres_proxy.cut()
    started = time.monotonic()
    with pytest.raises((OSError, asyncpg.PostgresError, asyncpg.InterfaceError)):
        await asyncpg.connect(dsn, timeout=5)
    assert time.monotonic() - started < 2, "a cut database should fail fast, not hang"
    with pytest.raises((OSError, asyncpg.PostgresError, asyncpg.InterfaceError)):
        await conn.fetchval("SELECT 1")  # the connection open before the cut is gone too
    conn.terminate()

    postgres_proxy.restore()
    conn = await asyncpg.connect(dsn, timeout=5)
    try:
        assert await conn.fetchval("SELECT 2") == 2
    finally:
        await conn.close()


def test_proxy_forwards_large_payloads_both_ways() -> None:
    received = bytearray()
    with socket.create_server(("127.0.0.1", 0)) as echo:

        def serve() -> None:
            conn, _ = echo.accept()
            with conn:
                while data := conn.recv(65536):
                    conn.sendall(data)

        threading.Thread(target=serve, daemon=True).start()
        with TcpProxy("127.0.0.1", echo.getsockname()[1]) as proxy:
            payload = bytes(range(256)) * 4096  # 1 MiB
            with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as client:
                threading.Thread(target=client.sendall, args=(payload,), daemon=True).start()
                while len(received) < len(payload):
                    chunk = client.recv(65536)
                    assert chunk, "proxy closed early"
                    received.extend(chunk)
            assert bytes(received) == payload
            eventually_sync(lambda: proxy.active_connections == 0, timeout=5, message="pair not closed")


async def test_fresh_database_is_created_used_and_dropped(
    test_servers: TestServers, unique_prefix: str
) -> None:
    url = test_servers.create_database(f"infra_{unique_prefix}")
    name = url.rsplit("/", 1)[1]
    assert url.startswith("postgresql+asyncpg://") and unique_prefix in name

    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE receipt (id int PRIMARY KEY)"))
            await conn.execute(text("INSERT INTO receipt VALUES (1)"))
        async with engine.connect() as conn:
            assert (await conn.execute(text("SELECT count(*) FROM receipt"))).scalar_one() == 1
        # The engine's pool still holds an open connection: dropping must terminate it, not fail or hang.
        test_servers.drop_database(url)
    finally:
        await engine.dispose()

    admin = await asyncpg.connect(_asyncpg_dsn(test_servers.database_server_url), timeout=5)
    try:
        assert await admin.fetchval("SELECT count(*) FROM pg_database WHERE datname = $1", name) == 0
    finally:
        await admin.close()


async def test_eventually_returns_the_first_truthy_value_and_reports_the_last_at_the_deadline() -> None:
    calls = iter([0, None, [], "ready"])
    assert await eventually(lambda: next(calls), timeout=2, interval=0.01) == "ready"

    async def never() -> int:
        return 0

    with pytest.raises(AssertionError, match=r"still zero within 0\.1s; last: 0"):
        await eventually(never, timeout=0.1, interval=0.01, message="still zero")
    with pytest.raises(AssertionError, match="ZeroDivisionError"):
        eventually_sync(lambda: 1 / 0, timeout=0.1, interval=0.01)
