"""Where the integration and e2e tiers get NATS JetStream and PostgreSQL from: one setting, ``HOITHI_TEST_SERVERS``.

- ``own`` (default): a ``nats-server`` from the wheel on a free port with a temporary store, and fresh
  databases on the PostgreSQL at ``DATABASE_URL`` (default: the local one). Fault tests may kill and restart
  servers they start themselves.
- ``given``: ``NATS_URL`` / ``DATABASE_URL`` as they are; fault tests are skipped (we must not kill a server
  someone else runs). Databases are still created fresh per use on the given PostgreSQL.
- ``containers``: NATS (``-js``) and PostgreSQL from testcontainers (images ``HOITHI_TEST_NATS_IMAGE``, default
  ``nats:2.15``, and ``HOITHI_TEST_POSTGRES_IMAGE``, default ``postgres:15``). Fault tests get containers of their
  own on a fixed free host port (``ContainerNats``: kill/restart the container; a restarted container would
  otherwise come back on a new port). Needs a Docker engine; ``docker_available()`` says why not.

Every name a test creates (databases here, streams and subject prefixes through ``unique_prefix``) is unique,
so parallel runs against one server never collide.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import secrets
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
from sqlalchemy.engine import URL, make_url

from shared.devserver import NatsServer, find_nats_server
from shared.nats_auth import ADMIN, read_credentials, with_userinfo, without_userinfo, write_server_config
from shared.settings import Settings

from .tcpproxy import TcpProxy

__all__ = [
    "DEFAULT_DATABASE_URL",
    "DEFAULT_NATS_URL",
    "MODES",
    "AuthenticatedNatsServer",
    "TestServers",
    "create_database",
    "drop_database",
    "mode_from_env",
    "nats_client_options",
    "own_servers_allowed",
    "postgres_address",
    "register_nats_client",
    "service_credentials",
    "start_test_servers",
    "via_proxy",
]

log = logging.getLogger("tests.servers")

MODES = ("own", "given", "containers")
DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_NATS_URL = "nats://127.0.0.1:4222"
DEFAULT_NATS_IMAGE = "nats:2.15"
DEFAULT_POSTGRES_IMAGE = "postgres:15"
# These machines have no image registry and a /.dockerenv: no reaper (its image cannot be pulled; fixtures clean
# up), and talk to containers over loopback rather than the bridge gateway.
TESTCONTAINERS_ENV = {
    "TESTCONTAINERS_RYUK_DISABLED": "true",
    "TESTCONTAINERS_CONNECTION_MODE": "docker_host",
    "TC_HOST": "127.0.0.1",
}

T = TypeVar("T")

# The users of each authenticated server this session started, by the admin URL tests connect with: a service
# process started on that server connects as its own user (``System.env``).
_USERS_BY_URL: dict[str, dict[str, str]] = {}


# What else a client of a server needs beyond its URL (a CA for TLS, a creds file in ``given`` mode), by URL.
_CLIENT_OPTIONS: dict[str, dict[str, Any]] = {}


def register_nats_client(url: str, **options: Any) -> None:
    """Say how tests connect to the server at ``url`` (``tls=``, ``user_credentials=`` …: ``nats.connect`` kwargs)."""
    _CLIENT_OPTIONS[url] = options


def nats_client_options(url: str) -> dict[str, Any]:
    """The ``nats.connect`` keyword arguments, beyond the URL, that the server at ``url`` needs from a client."""
    return dict(_CLIENT_OPTIONS.get(url, {}))


def service_credentials(nats_url: str, service: str) -> tuple[str, str] | None:
    """(user, password) of ``service`` on the test server behind ``nats_url``, or None (a given server)."""
    users = _USERS_BY_URL.get(nats_url, {})
    return (service, users[service]) if service in users else None


def _authenticated(url: str, credentials_dir: Path) -> str:
    """The admin URL of a server whose users were written under ``credentials_dir``; remember the others."""
    users = read_credentials(credentials_dir)
    if ADMIN not in users:  # removed when the session closed
        return url
    admin_url = with_userinfo(url, ADMIN, users[ADMIN])
    _USERS_BY_URL[admin_url] = users
    return admin_url


class AuthenticatedNatsServer(NatsServer):
    """A ``NatsServer`` refusing anonymous clients, with the generated users (``own`` mode and ``own_nats_server``):
    ``url`` carries the admin's credentials, and a service started on it connects as its own user."""

    def __init__(self, *, store_dir: Path, credentials_dir: Path, **kwargs: Any) -> None:
        self.credentials_dir = credentials_dir
        config = _auth_config(credentials_dir)
        super().__init__(store_dir=store_dir, extra_args=["-c", str(config)], **kwargs)

    @property
    def anonymous_url(self) -> str:
        return f"nats://{self.host}:{self.port}"

    @property
    def url(self) -> str:  # the port is final only after the first start: register the users then
        return _authenticated(self.anonymous_url, self.credentials_dir)

    def __repr__(self) -> str:
        return f"AuthenticatedNatsServer({self.anonymous_url}, store={self.store_dir})"


def _auth_config(directory: Path) -> Path:
    """A nats-server configuration with the generated users: one session serves tests with their own prefixes
    and stream names, so those tokens are wildcards; event types and durable names stay exact."""
    return write_server_config(directory, Settings(), any_names=True)


def mode_from_env() -> str:
    """The configured mode; an unknown value is an error rather than a silent fallback."""
    mode = os.environ.get("HOITHI_TEST_SERVERS", "own").strip().lower() or "own"
    if mode not in MODES:
        raise ValueError(f"HOITHI_TEST_SERVERS={mode!r}: expected one of {', '.join(MODES)}")
    return mode


def own_servers_allowed(mode: str) -> tuple[bool, str]:
    """Whether tests may kill/pause/restart servers in this mode, and if not, why (the skip reason)."""
    if mode == "given":
        return False, (
            "HOITHI_TEST_SERVERS=given: the servers belong to someone else, and a test that kills, pauses or "
            "restarts a server must own it; run with HOITHI_TEST_SERVERS=own to include fault tests"
        )
    if mode == "containers":
        ok, why = docker_available()
        return ok, why
    return True, ""


def database_server_url() -> str:
    return os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL


def _asyncpg_dsn(url: URL) -> str:
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def _run_async(factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to completion on a loop of its own in a worker thread.

    So these helpers can be called from sync fixtures and from inside a running test loop alike.
    """
    result: list[T] = []
    errors: list[BaseException] = []

    def target() -> None:
        try:
            result.append(asyncio.run(factory()))
        except BaseException as error:  # noqa: BLE001 - re-raised in the caller's thread
            errors.append(error)

    thread = threading.Thread(target=target, name="test-servers-db")
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
    return result[0]


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def create_database(prefix: str = "test", server_url: str | None = None) -> str:
    """Create an empty database with a unique name on the server; return its ``postgresql+asyncpg://`` URL."""
    server = make_url(server_url or database_server_url())
    clean = re.sub(r"[^a-z0-9_]+", "_", prefix.lower()).strip("_") or "test"
    name = f"hoithi_t_{clean}"[:50] + "_" + secrets.token_hex(5)

    async def create() -> None:
        conn = await asyncpg.connect(_asyncpg_dsn(server), timeout=10)
        try:
            await conn.execute(f"CREATE DATABASE {_quote_ident(name)}")
        finally:
            await conn.close()

    _run_async(create)
    log.info("created database %s on %s:%s", name, server.host, server.port or 5432)
    return server.set(drivername="postgresql+asyncpg", database=name).render_as_string(hide_password=False)


def drop_database(url: str, server_url: str | None = None) -> None:
    """Drop the database ``url`` names, terminating its connections first; a missing database is fine."""
    target = make_url(url)
    name = target.database
    if not name:
        raise ValueError(f"no database name in {url!r}")
    server = (
        make_url(server_url) if server_url else target.set(database=make_url(database_server_url()).database)
    )
    if server.database == name:
        raise ValueError(f"refusing to drop {name!r}: it is the database used to administer the server")

    async def drop() -> None:
        conn = await asyncpg.connect(_asyncpg_dsn(server), timeout=10)
        try:
            await conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
                name,
            )
            force = " WITH (FORCE)" if conn.get_server_version().major >= 13 else ""
            await conn.execute(f"DROP DATABASE IF EXISTS {_quote_ident(name)}{force}")
        finally:
            await conn.close()

    _run_async(drop)
    log.info("dropped database %s", name)


def postgres_address(url: str | None = None) -> tuple[str, int]:
    """(host, port) of the PostgreSQL a URL points to (default: ``DATABASE_URL``)."""
    parsed = make_url(url or database_server_url())
    return parsed.host or "127.0.0.1", parsed.port or 5432


def via_proxy(url: str, proxy: TcpProxy) -> str:
    """The same database URL, routed through ``proxy`` (so ``proxy.cut()`` is an outage for that URL only)."""
    return make_url(url).set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)


def _safe(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


@dataclass
class TestServers:
    """The servers of one test session (the ``test_servers`` fixture)."""

    __test__ = False  # not a test class, despite the name

    mode: str
    nats_url: str
    database_server_url: str
    nats: NatsServer | None = None
    can_own_servers: bool = True
    why_not_own: str = ""
    created_databases: list[str] = field(default_factory=list)
    created_databases_total: int = 0
    _store_dir: Path | None = None
    containers: list[Any] = field(default_factory=list)  # testcontainers of this session, stopped on close

    def create_database(self, prefix: str = "test") -> str:
        """A fresh, empty database (``postgresql+asyncpg://`` URL), dropped when the session ends."""
        url = create_database(prefix, self.database_server_url)
        self.created_databases.append(url)
        self.created_databases_total += 1
        return url

    def drop_database(self, url: str) -> None:
        drop_database(url, self.database_server_url)
        if url in self.created_databases:
            self.created_databases.remove(url)

    def describe(self) -> list[str]:
        """Where the servers are, for the terminal and the log."""
        if self.mode == "own" and self.nats is not None:
            nats = f"own nats-server {without_userinfo(self.nats.url)} (store {self.nats.store_dir}, log {self.nats.log_file})"
        elif self.mode == "containers":
            nats = f"{container_image('nats')} -js started through testcontainers at {self.nats_url}"
        else:
            nats = f"given NATS {self.nats_url}"
        if self.nats_url and "@" in self.nats_url:
            nats = (
                nats.replace(self.nats_url, without_userinfo(self.nats_url))
                + ", users and permissions generated"
            )
        lines = [
            f"test servers: {self.mode}",
            f"  NATS: {nats}",
            f"  PostgreSQL: {_safe(self.database_server_url)} (fresh database per use)"
            + (
                f", {container_image('postgres')} started through testcontainers"
                if self.mode == "containers"
                else ""
            ),
        ]
        if not self.can_own_servers:
            lines.append(f"  fault tests skipped: {self.why_not_own}")
        return lines

    def close(self) -> None:
        keep = os.environ.get("HOITHI_KEEP_TEST_DATABASES", "") not in ("", "0")
        for url in list(self.created_databases):
            if keep:
                log.info("keeping database %s (HOITHI_KEEP_TEST_DATABASES)", _safe(url))
                continue
            try:
                self.drop_database(url)
            except Exception:  # cleanup must go on; the log says what was left behind
                log.exception("could not drop %s", _safe(url))
        if self.nats is not None:
            self.nats.stop()
        for container in reversed(self.containers):
            try:
                container.stop()
            except Exception:
                log.exception("could not stop container %s", container)
        if self._store_dir is not None:
            shutil.rmtree(self._store_dir, ignore_errors=True)


def start_test_servers(mode: str | None = None) -> TestServers:
    """Bring up (``own``) or point at (``given``) the servers for a session."""
    mode = mode or mode_from_env()
    allowed, why = own_servers_allowed(mode)
    server_url = database_server_url()
    if mode == "containers":
        ok, why = docker_available()
        if not ok:
            raise RuntimeError(why)
        servers = TestServers(mode=mode, nats_url="", database_server_url="", can_own_servers=True)
        try:
            auth_dir = Path(tempfile.mkdtemp(prefix="hoithi-test-nats-auth-"))
            servers._store_dir = auth_dir
            nats = ContainerNats(credentials_dir=auth_dir).start()
            servers.containers.append(nats)
            servers.nats_url = nats.url
            postgres = start_postgres_container()
            servers.containers.append(postgres)
            servers.database_server_url = postgres_container_url(postgres)
        except BaseException:
            servers.close()
            raise
    elif mode == "given":
        servers = TestServers(
            mode=mode,
            nats_url=os.environ.get("NATS_URL") or DEFAULT_NATS_URL,
            database_server_url=server_url,
            can_own_servers=allowed,
            why_not_own=why,
        )
        creds = os.environ.get("NATS_CREDS") or os.environ.get("HOITHI_NATS_CREDS")
        if creds:  # an authenticated given server: the tests' clients use the same creds file as the services
            register_nats_client(servers.nats_url, user_credentials=creds)
    else:
        store = Path(tempfile.mkdtemp(prefix="hoithi-test-nats-"))
        nats = AuthenticatedNatsServer(store_dir=store, credentials_dir=store).start()
        servers = TestServers(
            mode=mode,
            nats_url=nats.url,
            database_server_url=server_url,
            nats=nats,
            can_own_servers=allowed,
            why_not_own=why,
            _store_dir=store,
        )
    for line in servers.describe():
        log.info(line)
    return servers


def nats_server_version() -> str:
    """``nats-server: vX.Y.Z`` of the binary ``own`` mode runs (for the report header)."""
    try:
        binary = find_nats_server()
        out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10, check=False)
        return f"{out.stdout.strip() or out.stderr.strip()} ({binary})"
    except Exception as error:  # noqa: BLE001 - only informational
        return f"unknown ({error})"


# -- containers (testcontainers on a local Docker engine) ------------------------------------------------------


def container_image(kind: str) -> str:
    """The image the ``containers`` mode runs for ``nats`` or ``postgres`` (configurable by environment)."""
    if kind == "nats":
        return os.environ.get("HOITHI_TEST_NATS_IMAGE") or DEFAULT_NATS_IMAGE
    return os.environ.get("HOITHI_TEST_POSTGRES_IMAGE") or DEFAULT_POSTGRES_IMAGE


def _testcontainers_env() -> None:
    for key, value in TESTCONTAINERS_ENV.items():
        os.environ.setdefault(key, value)


def docker_available() -> tuple[bool, str]:
    """Whether a Docker engine answers here (and has the test images); if not, the reason, for skips and headers."""
    if shutil.which("docker") is None:
        return False, "no docker command on this machine (install docker.io and start dockerd)"
    try:
        out = subprocess.run(
            ["docker", "info", "--format", "{{.ServerVersion}}"],
            capture_output=True, text=True, timeout=20, check=False,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired) as error:
        return False, f"docker info did not answer: {error}"
    if out.returncode != 0:
        return False, f"the Docker engine does not answer: {(out.stderr or out.stdout).strip()[:200]}"
    return True, f"Docker engine {out.stdout.strip()}"


def _http_ok(url: str) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=2) as answer:
            return bool(answer.status == 200)
    except OSError:
        return False


class ContainerNats:
    """A ``nats-server -js`` container on fixed host ports, with the ``NatsServer`` interface fault tests use.

    ``kill()`` is ``docker kill`` (SIGKILL), ``restart()`` a graceful stop and start; the store lives in the
    container's own filesystem (``/data``), so it survives both, and the host ports stay the same.
    """

    def __init__(
        self, image: str | None = None, *, port: int | None = None, credentials_dir: Path | None = None
    ) -> None:
        from shared.devserver import free_port

        _testcontainers_env()
        from testcontainers.core.container import DockerContainer

        self.image = image or container_image("nats")
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self.monitor_port = free_port()
        self.store_dir = Path("/data")  # inside the container
        self.credentials_dir = credentials_dir  # the generated users (None: anonymous clients let in)
        config = _auth_config(credentials_dir) if credentials_dir is not None else None
        auth = f"-c /etc/nats/{config.name} " if config is not None else ""
        self.container = DockerContainer(self.image).with_command(f"{auth}-js -sd /data -m 8222")
        _bind_loopback(self.container, 4222, self.port)
        _bind_loopback(self.container, 8222, self.monitor_port)
        if config is not None:
            self.container.with_volume_mapping(str(config.parent), "/etc/nats", "ro")

    @property
    def anonymous_url(self) -> str:
        return f"nats://{self.host}:{self.port}"

    @property
    def url(self) -> str:
        """The admin's URL when the server has the generated users, like ``AuthenticatedNatsServer.url``."""
        if self.credentials_dir is None:
            return self.anonymous_url
        return _authenticated(self.anonymous_url, self.credentials_dir)

    @property
    def monitor_url(self) -> str:
        return f"http://{self.host}:{self.monitor_port}"

    def _wrapped(self) -> Any:
        """The Docker SDK container, or None before the first start."""
        return getattr(self.container, "_container", None)

    @property
    def running(self) -> bool:
        wrapped = self._wrapped()
        if wrapped is None:
            return False
        wrapped.reload()
        return bool(wrapped.status == "running")

    def _wait_ready(self, timeout: float) -> None:
        import time

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if _http_ok(f"{self.monitor_url}/healthz?js-enabled-only=true"):
                return
            time.sleep(0.1)  # polling a container's readiness, bounded by the deadline
        logs = self._wrapped().logs(tail=30).decode("utf-8", "replace")
        raise RuntimeError(f"NATS container {self.image} not healthy within {timeout:.0f}s:\n{logs}")

    def start(self, timeout: float = 60) -> ContainerNats:
        wrapped = self._wrapped()
        if wrapped is None:
            self.container.start()
            log.info("started NATS container %s (%s) at %s", self.image, self._wrapped().short_id, self.url)
        elif not self.running:
            wrapped.start()
        self._wait_ready(timeout)
        return self

    def kill(self) -> None:
        if self.running:
            self._wrapped().kill()

    def restart(self, timeout: float = 60) -> ContainerNats:
        wrapped = self._wrapped()
        if self.running:
            wrapped.stop(timeout=10)
        return self.start(timeout)

    def pause(self) -> None:
        self._wrapped().pause()

    def unpause(self) -> None:
        self._wrapped().unpause()

    def stop(self) -> None:
        if self._wrapped() is not None:
            self.container.stop()
            self.container._container = None

    def log_tail(self, lines: int = 40, *, since_start: bool = False) -> str:
        wrapped = self._wrapped()
        return (
            wrapped.logs(tail=lines).decode("utf-8", "replace") if wrapped is not None else "(no container)"
        )

    def __repr__(self) -> str:
        return f"ContainerNats({self.image}, {self.anonymous_url})"


def start_postgres_container(image: str | None = None, *, port: int | None = None) -> Any:
    """A PostgreSQL container (superuser ``postgres``), on a fixed host port when ``port`` is given."""
    _testcontainers_env()
    from testcontainers.community.postgres import PostgresContainer

    container = PostgresContainer(
        image or container_image("postgres"), username="postgres", password="hoithi-test", dbname="postgres",
        driver=None,
    )  # fmt: skip
    if port is not None:
        _bind_loopback(container, 5432, port)
    container.start()
    log.info("started PostgreSQL container %s at %s", container.image, postgres_container_url(container))
    return container


def _bind_loopback(container: Any, inner: int, host_port: int) -> None:
    """Publish ``inner`` on the host's loopback only (testcontainers' ``with_bind_ports`` publishes on every
    interface): another user of the host must not reach a test broker's monitor (connz, subsz), its client port or
    the test database. docker-py takes an (address, port) pair."""
    container.ports[str(inner)] = ("127.0.0.1", host_port)


def postgres_container_url(container: Any) -> str:
    return str(container.get_connection_url(host="127.0.0.1"))


def container_tier_skip_reason() -> str:
    """Why the container tier (tests named test_containers_* / test_compose_*) does not run here, or "".

    It runs with ``HOITHI_TEST_SERVERS=containers`` (what ``make test`` sets when a Docker engine answers): a plain
    ``pytest`` in the default ``own`` mode skips it, so the engineers' quick runs never start a compose project.
    """
    mode = os.environ.get("HOITHI_TEST_SERVERS", "own").strip().lower() or "own"
    if mode != "containers":
        return (
            f"container tier runs with HOITHI_TEST_SERVERS=containers (what `make test` picks when a Docker engine answers with the images: `make images`); "
            f"this run is {mode!r}"
        )
    ok, why = docker_available()
    return "" if ok else f"container tier: {why}"
