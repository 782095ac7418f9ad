"""Fixtures every tier shares; the servers themselves are described in ``tests/support/servers.py``.

- ``test_servers`` (session): ``.nats_url``, ``.nats`` (our ``NatsServer`` or None), ``.create_database(prefix)``,
  ``.can_own_servers``. Only integration/e2e tests ask for it, so unit tests never start a server.
- ``unique_prefix`` (function): a short random token for event prefixes, stream and consumer names.
- ``own_nats_server`` (function): a fresh ``NatsServer`` on its own store, with the generated users (its ``url``
  is the admin's), for tests that kill or restart it
  (in ``containers`` mode a ``ContainerNats`` of its own on fixed host ports, with the same interface).
- ``postgres_proxy`` (function): a ``TcpProxy`` to the test PostgreSQL; route a service through it with
  ``via_proxy(url, proxy)`` and ``proxy.cut()`` is an outage for that service alone.
- ``system`` (module, per database): the four services on the test NATS, loaded with the 2023 seed, on
  PostgreSQL and on SQLite (the e2e tier; a module with another system defines its own ``system``).
- ``harness`` (function, unit tier): rewards' ``submission.withdrawn`` consumer over a fresh SQLite backbone,
  recording what it applied, with a switch to make its handler fail.
- marker ``fault``: a test that kills, pauses or restarts a server; skipped, with the reason, when the mode
  does not let tests own servers.
"""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import settings as hypothesis_settings
from sqlalchemy.engine import make_url

from shared.devserver import NatsServer
from shared.events.envelope import Envelope
from shared.settings import SERVICES, Settings
from tests.support.consumers import FakeNC, sqlite_consumer
from tests.support.notify import WebhookReceiver
from tests.support.servers import (
    AuthenticatedNatsServer,
    ContainerNats,
    TestServers,
    container_image,
    container_tier_skip_reason,
    database_server_url,
    docker_available,
    mode_from_env,
    nats_server_version,
    own_servers_allowed,
    postgres_address,
    start_test_servers,
)
from tests.support.system import System
from tests.support.tcpproxy import TcpProxy

# Property tests: derandomized in CI (the same examples every run, no example database), random elsewhere so a
# developer's runs keep exploring. A test's own @settings (max_examples…) still applies on top.
hypothesis_settings.register_profile("ci", derandomize=True, database=None, deadline=None, print_blob=True)
hypothesis_settings.register_profile("dev", deadline=None)
hypothesis_settings.load_profile(
    "ci" if os.environ.get("CI") else os.environ.get("HYPOTHESIS_PROFILE", "dev")
)

log = logging.getLogger("tests.servers")

SERVERS_KEY = pytest.StashKey[TestServers]()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "fault: kills, pauses or restarts a server the test owns")
    config.addinivalue_line("markers", "serial: runs alone in make test's second phase")
    # Tests never follow the checkout's own demo (its .hoithi/clock.json, its SQLite files): a data directory
    # of their own unless one is given.
    # Each pytest-xdist worker gets a directory of its own (the workers inherit the controller's environment).
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if "HOITHI_DATA_DIR" not in os.environ or (worker and os.environ.get("HOITHI_TEST_DATA_DIR_OWN")):
        import tempfile

        os.environ["HOITHI_DATA_DIR"] = tempfile.mkdtemp(prefix=f"hoithi-test-data-{worker or ''}")
        os.environ["HOITHI_TEST_DATA_DIR_OWN"] = "1"


def pytest_report_header(config: pytest.Config) -> list[str]:
    try:
        mode = mode_from_env()
    except ValueError as error:
        return [f"test servers: {error}"]
    if mode == "own":
        where = f"own nats-server on a free port: {nats_server_version()}"
    elif mode == "given":
        where = f"NATS_URL={os.environ.get('NATS_URL') or 'nats://127.0.0.1:4222'}"
    else:
        ok, why_docker = docker_available()
        where = (
            f"NATS {container_image('nats')} and PostgreSQL {container_image('postgres')} through testcontainers "
            f"({why_docker})"
            if ok
            else f"no Docker engine, integration/e2e tests will be skipped: {why_docker}"
        )
    allowed, why = own_servers_allowed(mode)
    lines = [f"test servers (HOITHI_TEST_SERVERS): {mode}; {where}"]
    if mode != "containers":
        lines.append(f"PostgreSQL server (DATABASE_URL): {_hide_password(database_server_url())}")
    why_not = container_tier_skip_reason()
    lines.append(
        "container tier (tests/*/test_containers_*, test_compose_*): "
        + ("runs, " + docker_available()[1] if not why_not else "skipped: " + why_not)
    )
    if not allowed:
        lines.append(f"fault tests skipped: {why}")
    return lines


def _hide_password(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    try:
        allowed, why = own_servers_allowed(mode_from_env())
    except ValueError as error:
        raise pytest.UsageError(str(error)) from error
    if allowed:
        return
    skip = pytest.mark.skip(reason=why)
    for item in items:
        if item.get_closest_marker("fault") is not None:
            item.add_marker(skip)


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, exitstatus: int, config: pytest.Config
) -> None:
    servers = config.stash.get(SERVERS_KEY, None)
    if servers is None:
        return
    terminalreporter.section("test servers")
    for line in servers.describe():
        terminalreporter.write_line(line)
    terminalreporter.write_line(f"  databases created this run: {servers.created_databases_total}")


@pytest.fixture(scope="session")
def test_servers(request: pytest.FixtureRequest) -> Iterator[TestServers]:
    mode = mode_from_env()
    if mode == "containers":
        ok, why = docker_available()
        if not ok:
            pytest.skip(f"HOITHI_TEST_SERVERS=containers: {why}")
    servers = start_test_servers(mode)
    request.config.stash[SERVERS_KEY] = servers
    try:
        yield servers
    finally:
        servers.close()


@pytest.fixture
def unique_prefix() -> str:
    """E.g. ``t3f9a0c1b``: lowercase letters and digits only, valid in NATS subjects, stream names and SQL."""
    return "t" + secrets.token_hex(4)


@pytest.fixture
def own_nats_server(tmp_path: Path, test_servers: TestServers) -> Iterator[NatsServer]:
    """A NATS server this test alone owns (kill it, restart it); stopped afterwards."""
    if not test_servers.can_own_servers:
        pytest.skip(test_servers.why_not_own)
    # the generated users, as on the session's server: no anonymous client; ``url`` is the admin's
    if test_servers.mode == "containers":
        container = ContainerNats(credentials_dir=tmp_path / "nats-auth").start()
        log.info("own NATS container for this test: %s", container)
        try:
            yield container  # type: ignore[misc]  # the NatsServer interface fault tests use
        finally:
            container.stop()
        return
    server = AuthenticatedNatsServer(
        store_dir=tmp_path / "nats-store", credentials_dir=tmp_path / "nats-auth",
        log_file=tmp_path / "nats-server.log",
    ).start()  # fmt: skip
    log.info("own nats-server for this test: %s", server)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def postgres_proxy(test_servers: TestServers) -> Iterator[TcpProxy]:
    """A TCP proxy in front of the test PostgreSQL; cutting it never touches the shared server."""
    host, port = postgres_address(test_servers.database_server_url)
    with TcpProxy(host, port) as proxy:
        yield proxy


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    """A local webhook receiver (a real HTTP server on loopback), stopped after the test."""
    r = WebhookReceiver().start()
    try:
        yield r
    finally:
        r.stop()


@pytest.fixture(scope="module", params=["postgresql", "sqlite"])
def system(request, test_servers, tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:  # type: ignore[no-untyped-def]
    """The four services on the test NATS, loaded with the 2023 seed: on PostgreSQL (as deployed) and on
    SQLite (the embedded default of ``make run``), the same code paths."""

    prefix = "e" + secrets.token_hex(4)
    work: Path = tmp_path_factory.mktemp("system")
    if request.param == "sqlite":
        dbs = {s: f"sqlite+aiosqlite:///{work / f'{s}.db'}" for s in SERVICES}
    else:
        dbs = {s: test_servers.create_database(s) for s in SERVICES}
    sys_ = System(nats_url=test_servers.nats_url, prefix=prefix, workdir=work, database_urls=dbs)
    try:
        sys_.start()
        yield sys_
    finally:
        sys_.stop()


@pytest.fixture
async def harness(tmp_path: Path) -> Any:
    applied: list[str] = []
    fail = {"on": False}

    async def handler(conn: Any, env: Envelope) -> None:
        if fail["on"]:
            raise RuntimeError("boom")
        applied.append(env.id)

    settings = Settings(env="test", max_deliver=3, nak_base_delay=0.5)
    consumer, engine, bb = await sqlite_consumer(tmp_path, settings, handler)
    consumer.nc = FakeNC()  # type: ignore[assignment]
    yield SimpleNamespace(consumer=consumer, applied=applied, fail=fail, engine=engine, bb=bb)
    await engine.dispose()
