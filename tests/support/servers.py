"""Where the integration and e2e tiers get NATS JetStream and PostgreSQL from: one setting, ``HOITHI_TEST_SERVERS``.

- ``own`` (default): a ``nats-server`` from the wheel on a free port with a temporary store, and fresh
  databases on the PostgreSQL at ``DATABASE_URL`` (default: the local one). Fault tests may kill and restart
  servers they start themselves.
- ``given``: ``NATS_URL`` / ``DATABASE_URL`` as they are; fault tests are skipped (we must not kill a server
  someone else runs). Databases are still created fresh per use on the given PostgreSQL.
- ``containers``: NATS and PostgreSQL from testcontainers — not available yet, so its tests are skipped.

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

from .tcpproxy import TcpProxy

__all__ = [
    "DEFAULT_DATABASE_URL",
    "DEFAULT_NATS_URL",
    "MODES",
    "TestServers",
    "create_database",
    "drop_database",
    "mode_from_env",
    "own_servers_allowed",
    "postgres_address",
    "start_test_servers",
    "via_proxy",
]

log = logging.getLogger("tests.servers")

MODES = ("own", "given", "containers")
DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_NATS_URL = "nats://127.0.0.1:4222"
CONTAINERS_NOT_YET = (
    "HOITHI_TEST_SERVERS=containers is not implemented yet (testcontainers support comes with its own issue); "
    "use HOITHI_TEST_SERVERS=own (default) or given"
)

T = TypeVar("T")


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
        return False, CONTAINERS_NOT_YET
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
            nats = f"own nats-server {self.nats.url} (store {self.nats.store_dir}, log {self.nats.log_file})"
        else:
            nats = f"given NATS {self.nats_url}"
        lines = [
            f"test servers: {self.mode}",
            f"  NATS: {nats}",
            f"  PostgreSQL: {_safe(self.database_server_url)} (fresh database per use)",
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
        if self._store_dir is not None:
            shutil.rmtree(self._store_dir, ignore_errors=True)


def start_test_servers(mode: str | None = None) -> TestServers:
    """Bring up (``own``) or point at (``given``) the servers for a session."""
    mode = mode or mode_from_env()
    allowed, why = own_servers_allowed(mode)
    server_url = database_server_url()
    if mode == "containers":
        raise RuntimeError(CONTAINERS_NOT_YET)
    if mode == "given":
        servers = TestServers(
            mode=mode,
            nats_url=os.environ.get("NATS_URL") or DEFAULT_NATS_URL,
            database_server_url=server_url,
            can_own_servers=allowed,
            why_not_own=why,
        )
    else:
        store = Path(tempfile.mkdtemp(prefix="hoithi-test-nats-"))
        nats = NatsServer(store_dir=store).start()
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
