"""Nobody forges a fact: NATS refuses anonymous clients, a service publishes only its own event types, and a
consumer dead-letters an envelope that does not match the subject it came on (issue 14, item 1).

Against real servers: the session's test server (``own``/``containers`` run it with the generated users) and the
nats-server command ``hoithi up`` runs.
"""

from __future__ import annotations

import shlex
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nats
import pytest
from nats.errors import TimeoutError as NatsTimeout
from nats.js.api import StreamConfig

from shared.cli import local_nats
from shared.devserver import free_port
from shared.nats_auth import ADMIN, credentials_file, read_credentials, with_userinfo, without_userinfo
from shared.streams import attachments_bucket
from tests.support.faults import FaultSystem
from tests.support.forgery import OTHER, assert_dead_lettered_and_nothing_changed, publish_forged_receipt
from tests.support.servers import TestServers, service_credentials
from tests.support.system import TENANT
from tests.support.wait import eventually


def _authenticated(test_servers: TestServers) -> None:
    if service_credentials(test_servers.nats_url, "campaign") is None:
        pytest.skip("HOITHI_TEST_SERVERS=given: the server and its users belong to someone else")


async def _refused(url: str, **credentials: str) -> str:
    """The error an anonymous (or wrongly credentialed) client gets; fails the test if it is let in."""
    try:
        nc = await nats.connect(
            url, connect_timeout=5, max_reconnect_attempts=0, allow_reconnect=False, **credentials
        )
    except Exception as error:  # noqa: BLE001 - nats-py raises several types for a refused connection
        return f"{type(error).__name__}: {error}"
    await nc.close()
    pytest.fail(f"{url} let in a client with credentials {sorted(credentials)}")


async def _as(url: str, service: str, errors: list[str] | None = None) -> Any:
    creds = service_credentials(url, service)
    assert creds is not None

    async def on_error(error: Exception) -> None:
        if errors is not None:
            errors.append(str(error))

    return await nats.connect(
        without_userinfo(url), user=creds[0], password=creds[1], connect_timeout=5, max_reconnect_attempts=0,
        error_cb=on_error,
    )  # fmt: skip


async def test_the_test_server_refuses_an_anonymous_client(test_servers: TestServers) -> None:
    _authenticated(test_servers)
    why = await _refused(without_userinfo(test_servers.nats_url))
    assert "authorization" in why.lower() or "auth" in why.lower(), why
    await _refused(without_userinfo(test_servers.nats_url), user="campaign", password="not-the-password")


async def test_a_service_user_cannot_publish_another_services_event_types(
    test_servers: TestServers, unique_prefix: str
) -> None:
    _authenticated(test_servers)
    stream = unique_prefix.upper()
    admin = await nats.connect(test_servers.nats_url, connect_timeout=5)
    errors: list[str] = []
    campaign = await _as(test_servers.nats_url, "campaign", errors)
    try:
        await admin.jetstream().add_stream(StreamConfig(name=stream, subjects=[f"{unique_prefix}.>"]))
        js = campaign.jetstream()
        ack = await js.publish(f"{unique_prefix}.{TENANT}.edition.opened", b"{}", timeout=5)  # its own type
        assert ack.stream == stream
        with pytest.raises(NatsTimeout):  # submissions' type: the server drops it
            await js.publish(f"{unique_prefix}.{TENANT}.submission.received", b"{}", timeout=1)
        info = await admin.jetstream().stream_info(stream)
        assert info.state.messages == 1
        await eventually(
            lambda: any("permissions violation" in e.lower() for e in errors), timeout=5, message=f"{errors}"
        )
    finally:
        await admin.jetstream().delete_stream(stream)
        await campaign.close()
        await admin.close()


async def test_a_fault_tests_own_server_refuses_an_anonymous_client(own_nats_server: Any) -> None:
    """``own_nats_server`` (what the fault tests kill and restart) has the generated users too."""
    why = await _refused(own_nats_server.anonymous_url)
    assert "authorization" in why.lower(), why
    nc = await nats.connect(own_nats_server.url, connect_timeout=5)  # the admin's URL
    await nc.close()


# ------------------------------------------------------------------ hoithi up's own nats-server


async def _admin_gets_in(url: str, password: str) -> None:
    """Wait until the server started in the background lets its admin in."""

    async def admin_in() -> bool:
        try:
            nc = await nats.connect(with_userinfo(url, ADMIN, password), connect_timeout=1)
        except Exception:  # noqa: BLE001 - not listening yet
            return False
        await nc.close()
        return True

    await eventually(admin_in, timeout=15, message="hoithi up's nats-server lets its admin in")


@pytest.fixture
def up_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """The nats-server command ``hoithi up`` runs (on free ports), started from its data directory."""
    port, monitor = free_port(), free_port()
    command = local_nats(tmp_path, port=port, monitor_port=monitor)
    log = (tmp_path / "nats.log").open("wb")
    process = subprocess.Popen(shlex.split(command), stdout=log, stderr=subprocess.STDOUT)
    try:
        yield f"nats://127.0.0.1:{port}", tmp_path
    finally:
        process.terminate()
        process.wait(10)
        log.close()


async def test_hoithi_ups_server_refuses_anonymous_clients_and_keeps_its_passwords_private(
    up_server: tuple[str, Path],
) -> None:
    url, data = up_server
    passwords = read_credentials(data)
    assert set(passwords) == {ADMIN, "campaign", "submissions", "rewards", "notify", "portal"}

    await _admin_gets_in(url, passwords[ADMIN])
    await _refused(url)
    log = (data / "nats.log").read_text(encoding="utf-8")
    assert "Starting http monitor on 127.0.0.1:" in log, log  # the monitor answers on loopback only
    for kept in (credentials_file(data), data / "nats" / "server.conf"):
        assert stat.S_IMODE(kept.stat().st_mode) == 0o600, kept
    # a second `hoithi up` keeps the passwords the first one made
    local_nats(data, port=free_port(), monitor_port=free_port())
    assert read_credentials(data) == passwords


# ------------------------------------------------------------------ the consumer checks what permissions cannot


async def test_a_forged_receipt_published_by_an_allowed_but_wrong_service_is_dead_lettered_and_changes_nothing(
    tmp_path: Path, test_servers: TestServers, unique_prefix: str
) -> None:
    _authenticated(test_servers)
    fs = FaultSystem.build(
        test_servers=test_servers, nats_url=test_servers.nats_url, prefix=unique_prefix, workdir=tmp_path
    )
    fs.system.start()
    try:
        await fs.wait_settled()
        unit = (await fs.assignments())[OTHER]["unit_id"]
        # campaign may publish edition.opened, which rewards consumes: the envelope inside says otherwise
        nc = await _as(test_servers.nats_url, "campaign")
        try:
            seq, sid = await publish_forged_receipt(fs, nc, unit)
        finally:
            await nc.close()
        await assert_dead_lettered_and_nothing_changed(fs, seq, sid)
    finally:
        fs.stop(grace=3.0)


# ------------------------------------------------------------------ the attachments bucket the code uses


async def test_the_submissions_user_reaches_the_attachments_bucket_and_no_other_user_does(
    test_servers: TestServers, unique_prefix: str
) -> None:
    from services.submissions.usecases.objects import open_bucket
    from shared.streams import declare
    from tests.support.consumers import stream_settings

    _authenticated(test_servers)
    settings = stream_settings(unique_prefix)
    admin = await nats.connect(test_servers.nats_url, connect_timeout=5)
    submissions = await _as(test_servers.nats_url, "submissions")
    rewards = await _as(test_servers.nats_url, "rewards")
    try:
        await declare(admin.jetstream(), settings)
        store = await open_bucket(submissions.jetstream(), settings)
        await store.put("bien-nhan.pdf", "%PDF- Biên nhận".encode())
        assert (await store.get("bien-nhan.pdf")).data == "%PDF- Biên nhận".encode()
        # Another user reads neither the file nor writes one (opening the bucket may succeed where the test
        # server grants stream info on every stream name — the metrics read stream sizes — but no content).
        with pytest.raises(Exception):  # noqa: B017 - a timeout or an API error, by server version
            other = await rewards.jetstream().object_store(attachments_bucket(settings))
            await other.get("bien-nhan.pdf")
        with pytest.raises(Exception):  # noqa: B017
            other = await rewards.jetstream().object_store(attachments_bucket(settings))
            await other.put("gia-mao.pdf", b"%PDF- forged")
        assert [i.name for i in await store.list()] == ["bien-nhan.pdf"]
    finally:
        js = admin.jetstream()
        for name in (settings.stream, settings.deadletter_stream, settings.replay_stream):
            await js.delete_stream(name)
        await js.delete_object_store(attachments_bucket(settings))
        await rewards.close()
        await submissions.close()
        await admin.close()


async def test_hoithi_status_reads_nats_as_the_operator_of_hoithi_ups_server(
    up_server: tuple[str, Path],
) -> None:
    """``hoithi status`` against a deployment ``hoithi up`` started: NATS answers it (the admin's kept password),
    not "Authorization Violation" — the services are down here, so it exits 1 and says so."""
    import asyncio
    import json
    import os
    import sys

    url, data = up_server
    passwords = read_credentials(data)

    await _admin_gets_in(url, passwords[ADMIN])
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HOITHI_", "NATS_"))}
    env.update(HOITHI_DATA_DIR=str(data), HOITHI_NATS_URL=url)
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "shared.cli", "status", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    report = json.loads(done.stdout)
    assert report["nats"] == "ok", report
    assert done.returncode == 1 and not any(s["ready"] for s in report["services"])
