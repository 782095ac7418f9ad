"""deploy/compose.yaml end to end, on the images deploy/build-image.sh builds: everything healthy, an experience
report's effects in rewards and notify, and `docker-compose restart nats` during a burst of 200 submissions
loses nothing and applies each exactly once. Its NATS (issue 14, item 1) takes TLS clients with a user only:
plaintext and anonymous clients are refused, each service is connected as itself over TLS, and a fact forged by
an allowed-but-wrong service user is dead-lettered."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
import ssl
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest

from shared.devserver import free_port
from shared.settings import DEV_JWT_SECRET, SERVICES
from shared.streams import consumers_of
from tests.support.faults import FaultSystem
from tests.support.forgery import OTHER, assert_dead_lettered_and_nothing_changed, publish_forged_receipt
from tests.support.natsprobe import plaintext_answer, refused
from tests.support.servers import container_tier_skip_reason, register_nats_client
from tests.support.system import EDITION, TENANT, System, report_body, seed_with_officials
from tests.support.wait import eventually

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "deploy" / "compose.yaml"
IMAGE = os.environ.get("HOITHI_IMAGE", "hoithi:dev")
BURST = 200


def _why_not() -> str:
    why = container_tier_skip_reason()
    if why:
        return why
    if shutil.which("docker-compose") is None:
        return "no docker-compose (apt-get install docker-compose)"
    if subprocess.run(["docker", "image", "inspect", IMAGE], capture_output=True, check=False).returncode:
        return f"image {IMAGE} not built (deploy/build-image.sh)"
    return ""


class Deployed(FaultSystem):
    """The compose deployment seen through the fault-test helpers, with the durables ``hoithi streams`` declared
    from shared/streams.py (their versions move with the services), connected as the admin over TLS."""

    tls: ssl.SSLContext

    @property
    def deadletter_stream(self) -> str:
        return "HOITHI_DEADLETTER"  # compose runs the default names

    async def consumer_drained(self, service: str) -> bool:
        nc = await self.connect()
        try:
            for spec in consumers_of(service):
                info = await nc.jetstream().consumer_info(self.stream, spec.durable)
                if info.num_pending or info.num_ack_pending:
                    return False
            return True
        finally:
            await nc.close()


CORE = ("campaign", "submissions", "rewards")  # what a report needs caught up before it is posted


async def wait_settled(deployed: Deployed, timeout: float = 600) -> None:
    """Campaign's seed published and the core consumers caught up; on timeout, say which consumer lags."""
    try:
        await eventually(
            lambda: deployed.settled(CORE), timeout=timeout, interval=0.5, message="seed applied"
        )
    except AssertionError as error:
        nc = await deployed.connect()
        lag = {}
        for s in SERVICES:
            for spec in consumers_of(s):
                info = await nc.jetstream().consumer_info(deployed.stream, spec.durable)
                lag[spec.durable] = (info.num_pending, info.num_ack_pending, info.num_redelivered)
        await nc.close()
        raise AssertionError(f"{error}; (pending, ack pending, redelivered) per consumer: {lag}") from error


pytestmark = [
    pytest.mark.skipif(bool(_why_not()), reason=_why_not() or "-"),
    pytest.mark.serial,  # the whole stack in compose, nats restarted under a burst
]


class Compose:
    def __init__(self, seed: Path) -> None:
        self.project = "hoithi" + secrets.token_hex(3)
        self.ports = {s: free_port() for s in (*SERVICES, "nats", "nats_monitor", "postgres")}
        self.env = {
            **os.environ,
            "HOITHI_IMAGE": IMAGE,
            "HOITHI_SEED_DIR": str(seed),
            "HOITHI_JWT_SECRET": DEV_JWT_SECRET,
            "HOITHI_ACK_WAIT": "5",
            "POSTGRES_PASSWORD": "postgres",
            **{f"HOITHI_{k.upper()}_HOST_PORT": str(v) for k, v in self.ports.items()},
        }

    def __call__(self, *args: str, timeout: float = 300) -> str:
        out = subprocess.run(
            ["docker-compose", "-p", self.project, "-f", str(COMPOSE_FILE), *args],
            env=self.env, capture_output=True, text=True, timeout=timeout, check=False,
        )  # fmt: skip
        if out.returncode:
            raise AssertionError(f"docker-compose {' '.join(args)}: {out.returncode}\n{out.stderr[-3000:]}")
        return out.stdout

    def nats_secret(self, user: str, name: str) -> str:
        """A file nats-init left in ``user``'s volume (``password``, ``ca.pem``), read as the image's user."""
        out = subprocess.run(
            ["docker", "run", "--rm", "--entrypoint", "cat", "-v", f"{self.project}_nats-{user}:/run/nats:ro",
             IMAGE, f"/run/nats/{name}"],
            capture_output=True, text=True, timeout=60, check=True,
        )  # fmt: skip
        return out.stdout

    def health(self) -> dict[str, str]:
        ids = self("ps", "-q").split()
        out = subprocess.run(
            ["docker", "inspect", "--format", "{{json .}}", *ids], capture_output=True, text=True, check=True
        ).stdout
        states = {}
        for line in out.splitlines():
            c = json.loads(line)
            name = c["Config"]["Labels"]["com.docker.compose.service"]
            running = c["State"]["Status"] == "running"
            health = (c["State"].get("Health") or {}).get("Status")
            states[name] = health if running and health else c["State"]["Status"]
        return states


@pytest.fixture(scope="module")
def compose() -> Iterator[Compose]:
    seed = Path(tempfile.mkdtemp(prefix="hoithi-compose-seed-"))
    seed_with_officials(seed, BURST)
    for p in (seed, *seed.iterdir()):
        p.chmod(0o755 if p.is_dir() else 0o644)  # readable by the image's non-root user
    c = Compose(seed)
    try:
        c("up", "-d", timeout=600)
        yield c
    finally:
        try:
            if os.environ.get("HOITHI_KEEP_COMPOSE_LOGS"):
                print(c("logs", "--no-color", "--tail", "200"))
            c("down", "-v", "--remove-orphans", timeout=300)
        finally:
            shutil.rmtree(seed, ignore_errors=True)


@pytest.fixture(scope="module")
def deployed(compose: Compose) -> Deployed:
    # the stack's NATS: TLS with the development CA nats-init made, and the admin's password (from its volume)
    tls = ssl.create_default_context(cadata=compose.nats_secret("admin", "ca.pem"))
    password = compose.nats_secret("admin", "password")
    url = f"tls://admin:{password}@127.0.0.1:{compose.ports['nats']}"
    register_nats_client(url, tls=tls, tls_handshake_first=True)
    system = System(
        nats_url=url, prefix="hoithi", workdir=Path(tempfile.gettempdir()),
        database_urls={}, services=("campaign", "submissions", "rewards", "notify"),
    )  # fmt: skip
    system.ports = {s: compose.ports[s] for s in SERVICES}
    pg = compose.ports["postgres"]
    dbs = {s: f"postgresql://{s}:{s}@127.0.0.1:{pg}/{s}" for s in SERVICES}
    deployed = Deployed(system, dbs)
    deployed.tls = tls
    return deployed


async def test_all_healthy_and_a_report_reaches_rewards_and_notify(
    compose: Compose, deployed: Deployed
) -> None:
    want = {s: "healthy" for s in SERVICES}
    await eventually(
        lambda: {s: compose.health().get(s) for s in SERVICES} == want, timeout=480, interval=1,
        message=f"services healthy: {compose.health()}",
    )  # fmt: skip
    assert compose.health()["setup"] == "exited"
    await wait_settled(deployed)

    person = "p-0002"
    r = await asyncio.to_thread(deployed.post_report, person, "compose-first")
    assert r.status_code == 201, r.text

    async def in_priority_list() -> bool:
        async with httpx.AsyncClient(timeout=10, headers=deployed.headers(person)) as c:
            pl = await c.get(
                f"{deployed.system.url('rewards')}/tenants/{TENANT}/editions/{EDITION}/priority-list"
            )
        return any(p["person_id"] == person for p in pl.json().get("persons", []))

    await eventually(in_priority_list, timeout=60, message="the report's points on rewards' priority list")

    def mailed() -> bool:
        return "eml" in compose("exec", "-T", "mailsink", "ls", "/mail")

    await eventually(
        lambda: asyncio.to_thread(mailed), timeout=60, interval=1, message="notify's receipt mail"
    )
    assert report_body()["procedures"]


async def test_the_stacks_nats_refuses_plaintext_and_anonymous_clients_and_each_service_is_itself_over_tls(
    compose: Compose, deployed: Deployed
) -> None:
    port = compose.ports["nats"]
    admin_password = compose.nats_secret("admin", "password")
    answer, closed = await asyncio.to_thread(plaintext_answer, port, "admin", admin_password)
    # TLS first: not even the server's INFO in clear, and no plaintext session at all
    assert closed and "INFO" not in answer and "PONG" not in answer and "+OK" not in answer, answer
    why = await refused(  # anonymous, though trusting the CA
        f"tls://127.0.0.1:{port}", tls=deployed.tls, tls_handshake_first=True
    )
    assert "authorization" in why.lower(), why
    why = await refused(  # the right password, but not trusting the development CA
        f"tls://127.0.0.1:{port}", user="admin", password=admin_password, tls=ssl.create_default_context(),
        tls_handshake_first=True,
    )  # fmt: skip
    assert "certificate verify failed" in why.lower(), why
    why = await refused(  # the right password and CA, but waiting for INFO to start TLS (strippable)
        f"tls://127.0.0.1:{port}", user="admin", password=admin_password, tls=deployed.tls
    )
    assert "timeout" in why.lower() or "empty response" in why.lower(), why

    async def connections() -> dict[str, list[dict[str, Any]]] | None:
        async with httpx.AsyncClient(timeout=10) as c:
            r = await c.get(
                f"http://127.0.0.1:{compose.ports['nats_monitor']}/connz",
                params={"auth": "true", "limit": 1024},
            )
        by_user: dict[str, list[dict[str, Any]]] = {}
        for conn in r.json()["connections"]:
            by_user.setdefault(conn.get("authorized_user", ""), []).append(conn)
        return by_user if set(SERVICES) <= set(by_user) else None

    by_user = await eventually(connections, timeout=120, message="every service connected to NATS")
    assert "" not in by_user, by_user[""]  # nobody without a user
    for user, conns in by_user.items():
        assert all(c.get("tls_version") for c in conns), (user, conns)


async def test_a_fact_forged_by_an_allowed_but_wrong_service_user_is_dead_lettered(
    compose: Compose, deployed: Deployed
) -> None:
    await wait_settled(deployed)
    unit = (await deployed.assignments())[OTHER]["unit_id"]
    campaign = await nats.connect(
        f"tls://127.0.0.1:{compose.ports['nats']}", user="campaign",
        password=compose.nats_secret("campaign", "password"), tls=deployed.tls, tls_handshake_first=True,
        connect_timeout=5,
    )  # fmt: skip
    try:
        seq, sid = await publish_forged_receipt(deployed, campaign, unit)
    finally:
        await campaign.close()
    await assert_dead_lettered_and_nothing_changed(deployed, seq, sid)


async def test_nats_restart_during_a_burst_of_200_applies_each_once(
    compose: Compose, deployed: Deployed
) -> None:
    await wait_settled(deployed)
    people = [f"p-x{i:05d}" for i in range(BURST)]
    progress = {"accepted": 0}

    async def count(accepted: int) -> None:
        progress["accepted"] = accepted

    burst = asyncio.create_task(deployed.concurrent_reports(people, concurrency=8, on_answer=count))
    await eventually(
        lambda: progress["accepted"] >= BURST // 4, timeout=120, interval=0.05, message="a quarter"
    )
    await asyncio.to_thread(compose, "restart", "nats")
    results = await asyncio.wait_for(burst, timeout=300)
    refused = {p: r[:2] for p, r in results.items() if r[0] != 201}
    assert not refused, refused
    accepted: dict[str, Any] = {p: r[1]["submission_id"] for p, r in results.items()}  # type: ignore[index]
    # the same deployment holds the first test's report: its retry (same key) answers with that receipt
    first = await asyncio.to_thread(deployed.post_report, "p-0002", "compose-first")
    if first.status_code in (200, 201):
        accepted["p-0002"] = first.json()["submission_id"]
    await deployed.assert_applied_exactly_once(accepted, timeout=600)
