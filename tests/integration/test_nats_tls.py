"""NATS over TLS, as compose runs it (issue 14, item 1): deploy/compose/nats_init.py makes the users, a development
CA and the server's certificate; a real nats-server (the wheel's) runs its configuration. Plaintext clients,
anonymous clients and clients that do not trust the CA are refused; a service connects with the settings compose
gives it (``tls://``, ``HOITHI_NATS_CA``, its user and password file) through the one place connections are built.
The compose stack itself is tested in tests/e2e/test_compose_deploy.py (container tier)."""

from __future__ import annotations

import asyncio
import json
import os
import ssl
import stat
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import nats
import pytest
from faststream.nats import NatsBroker
from nats.js.api import StreamConfig

from shared.devserver import NatsServer
from shared.nats_auth import USERS, broker_options, connect_options
from shared.settings import Settings
from tests.support.natsprobe import plaintext_answer, refused

ROOT = Path(__file__).resolve().parents[2]
NATS_INIT = ROOT / "deploy" / "compose" / "nats_init.py"


@dataclass
class Deployment:
    server_dir: Path
    users_dir: Path
    server: NatsServer

    @property
    def tls_url(self) -> str:
        return f"tls://127.0.0.1:{self.server.port}"

    def settings(self, user: str, **overrides: object) -> Settings:
        """What compose gives a container acting as ``user``."""
        home = self.users_dir / user
        values: dict[str, object] = {
            "nats_url": self.tls_url,
            "nats_ca": home / "ca.pem",
            "nats_user": user,
            "nats_password_file": home / "password",
            "data_dir": self.server_dir.parent / "nowhere",
        }
        values.update(overrides)
        return Settings(**values)  # type: ignore[arg-type]


def nats_init(server_dir: Path, users_dir: Path, **env: str) -> str:
    done = subprocess.run(
        [sys.executable, str(NATS_INIT)],
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith("HOITHI_")},
            "PYTHONPATH": str(ROOT),
            "NATS_SERVER_DIR": str(server_dir),
            "NATS_USERS_DIR": str(users_dir),
            "NATS_CONFIG_MOUNT": str(server_dir),
            "HOITHI_UID": str(os.getuid()),
            **env,
        },
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[Deployment]:
    server_dir, users_dir = tmp_path / "nats-server", tmp_path / "nats-users"
    for user in USERS:  # compose mounts one volume per user
        (users_dir / user).mkdir(parents=True)
    server_dir.mkdir()
    nats_init(server_dir, users_dir)
    # the configuration compose runs; the command line moves only the ports and the store to this test's own
    server = NatsServer(
        store_dir=tmp_path / "store", extra_args=["-c", str(server_dir / "server.conf")]
    ).start()
    try:
        yield Deployment(server_dir, users_dir, server)
    finally:
        server.stop()


async def test_the_compose_nats_refuses_plaintext_anonymous_and_untrusting_clients(
    deployment: Deployment,
) -> None:
    password = (deployment.users_dir / "admin" / "password").read_text()
    answer, closed = await asyncio.to_thread(plaintext_answer, deployment.server.port, "admin", password)
    # TLS first: not even the server's INFO in clear, and no plaintext session at all
    assert closed and "INFO" not in answer and "PONG" not in answer and "+OK" not in answer, answer

    anonymous = connect_options(deployment.settings("campaign", nats_user=None, nats_password_file=None))
    assert "user" not in anonymous and "tls" in anonymous and anonymous["tls_handshake_first"]
    why = await refused(deployment.tls_url, tls=anonymous["tls"], tls_handshake_first=True)
    assert "authorization" in why.lower(), why

    # the system's CAs do not vouch for the development CA: the certificate is refused before any password
    why = await refused(
        deployment.tls_url, user="admin", password="unused", tls=ssl.create_default_context(),
        tls_handshake_first=True,
    )  # fmt: skip
    assert "certificate verify failed" in why.lower(), why


async def test_a_client_waiting_for_the_servers_info_to_start_tls_is_refused(deployment: Deployment) -> None:
    """The upgrade path (read INFO in clear, start TLS if it asks) is what a man in the middle strips: he drops
    ``tls_required`` from INFO and the client sends its password in clear. The server does TLS first, so such a
    client (the right CA and password, but ``tls_handshake_first`` off) never gets in; with it on, it does."""
    options = connect_options(deployment.settings("rewards"))
    assert options["tls_handshake_first"] is True
    upgrading = {**options, "tls_handshake_first": False}
    servers = upgrading.pop("servers")
    why = await refused(servers, **upgrading)
    assert "timeout" in why.lower() or "empty response" in why.lower(), why
    nc = await nats.connect(**options, connect_timeout=5, max_reconnect_attempts=0)
    try:
        await nc.flush(timeout=5)
        assert nc._transport._io_writer.get_extra_info("ssl_object") is not None  # type: ignore[union-attr]
    finally:
        await nc.close()


async def test_a_service_connects_over_tls_as_itself_with_the_settings_compose_gives_it(
    deployment: Deployment,
) -> None:
    admin_options = connect_options(deployment.settings("admin"))
    admin = await nats.connect(**admin_options, connect_timeout=5)
    campaign = await nats.connect(**connect_options(deployment.settings("campaign")), connect_timeout=5)
    try:
        # this server is the test's own, with compose's exact names: the stream of facts takes hoithi.>
        await admin.jetstream().add_stream(StreamConfig(name="HOITHI", subjects=["hoithi.>"]))
        assert campaign.connected_url is not None and campaign.connected_url.scheme == "tls"
        writer = campaign._transport._io_writer  # type: ignore[union-attr]  # the socket under the client
        assert writer.get_extra_info("ssl_object") is not None
        ack = await campaign.jetstream().publish("hoithi.t-1.edition.opened", b"{}", timeout=5)
        assert ack.stream == "HOITHI" and ack.seq == 1
        stream = "HOITHI"
        await admin.jetstream().delete_stream(stream)
    finally:
        await campaign.close()
        await admin.close()

    # the FastStream broker of a service gets the same user and TLS context, handshake first, and gets in
    options = broker_options(deployment.settings("rewards"))
    security = options["security"]
    assert security.username == "rewards" and security.ssl_context is not None and security.use_ssl
    assert security.tls_handshake_first is True
    broker = NatsBroker(**options, max_reconnect_attempts=0)
    await broker.connect()
    try:
        nc = broker.connection  # the nats-py client FastStream made (what a service uses as rt.nc)
        await nc.flush(timeout=5)
        assert nc._transport._io_writer.get_extra_info("ssl_object") is not None
        assert nc.options["tls_handshake_first"] is True
    finally:
        await broker.stop()


def test_nats_init_keeps_its_secrets_private_and_rotates_them_on_request(deployment: Deployment) -> None:
    server_dir, users_dir = deployment.server_dir, deployment.users_dir
    users = json.loads((server_dir / "nats" / "users.json").read_text())
    assert set(users) == set(USERS)
    for private in (
        server_dir / "server.conf",
        server_dir / "tls" / "server-key.pem",
        server_dir / "tls" / "ca-key.pem",
    ):
        assert stat.S_IMODE(private.stat().st_mode) == 0o600, private
    for user in USERS:  # each volume: only its own password, readable by its owner alone, and the CA
        assert sorted(p.name for p in (users_dir / user).iterdir()) == ["ca.pem", "password"]
        assert (users_dir / user / "password").read_text() == users[user]
        assert stat.S_IMODE((users_dir / user / "password").stat().st_mode) == 0o400
    ca = (server_dir / "tls" / "ca.pem").read_bytes()

    out = nats_init(server_dir, users_dir)  # the next `up`: nothing changes
    assert "nothing new" in out
    assert json.loads((server_dir / "nats" / "users.json").read_text()) == users
    assert (server_dir / "tls" / "ca.pem").read_bytes() == ca

    nats_init(server_dir, users_dir, HOITHI_NATS_ROTATE="all")
    rotated = json.loads((server_dir / "nats" / "users.json").read_text())
    assert all(rotated[u] != users[u] for u in USERS)
    assert (server_dir / "tls" / "ca.pem").read_bytes() != ca
    assert (users_dir / "notify" / "ca.pem").read_bytes() == (server_dir / "tls" / "ca.pem").read_bytes()
