"""``hoithi up`` keeps the stack up: its nats-server killed with SIGKILL in the middle of a burst of reports comes
back (same store, same config), the services keep answering meanwhile, and every accepted report (201) is
applied exactly once downstream; a killed service comes back too; SIGTERM still stops everything.

The real command, as an operator runs it, on free ports and in a temporary data directory (SQLite databases,
the wheel's nats-server with its users): nothing of the test's own servers is used, so it runs the same in every
mode. Every wait polls with a deadline.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared.auth import issue_token
from shared.devserver import free_port
from shared.settings import SERVICES, Settings
from tests.support.system import EDITION, ROOT, TENANT, report_body, seed_with_officials
from tests.support.wait import eventually

pytestmark = pytest.mark.fault

OFFICIALS = 40  # extra officials of the seed: one report each in the burst
KILL_AFTER = 8  # answers of the burst before nats-server is killed
READER = "p-0001"


@dataclass
class Up:
    proc: subprocess.Popen[bytes]
    data: Path
    ports: dict[str, int]
    log_path: Path

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}"

    def pid(self, program: str) -> int | None:
        path = self.data / "run" / f"{program}.pid"
        try:
            return int(path.read_text())
        except (FileNotFoundError, ValueError):
            return None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def headers(self, person: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {issue_token(Settings(env='test'), person, TENANT)}"}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (exited, not yet reaped) is not running
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


@pytest.fixture
def up(tmp_path: Path) -> Iterator[Up]:
    data = tmp_path / "data"
    seed = seed_with_officials(tmp_path / "seed", OFFICIALS)
    ports = {s: free_port() for s in SERVICES} | {
        "nats": free_port(),
        "monitor": free_port(),
        "mail": free_port(),
    }
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HOITHI_", "NATS_"))}
    env |= {"HOITHI_DATA_DIR": str(data), "HOITHI_ENV": "development", "HOITHI_LOG_JSON": "false"}
    env |= {f"HOITHI_{s.upper()}_PORT": str(ports[s]) for s in SERVICES}
    log_path = tmp_path / "up.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [
                sys.executable, "-m", "shared.cli", "up", "--seed", str(seed),
                "--nats-port", str(ports["nats"]), "--nats-monitor-port", str(ports["monitor"]),
                "--mail-port", str(ports["mail"]),
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    u = Up(proc, data, ports, log_path)
    try:
        yield u
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)
        for pid_file in (data / "run").glob("*.pid") if (data / "run").exists() else ():
            try:  # never leave a program behind, even when the supervisor failed
                os.killpg(int(pid_file.read_text()), signal.SIGKILL)
            except (ProcessLookupError, ValueError, PermissionError):
                pass


async def _ready(u: Up, service: str) -> bool:
    try:
        async with httpx.AsyncClient(timeout=2) as c:
            return (await c.get(f"{u.url(service)}/health/ready")).status_code == 200
    except httpx.HTTPError:
        return False


async def _answers(u: Up, service: str) -> bool:
    try:
        async with httpx.AsyncClient(timeout=2) as c:
            return (await c.get(f"{u.url(service)}/health/live")).status_code == 200
    except httpx.HTTPError:
        return False


async def _nats_answers(u: Up) -> bool:
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", u.ports["nats"]), 1)
    except (OSError, TimeoutError):
        return False
    writer.close()
    return True


async def _post_report(c: httpx.AsyncClient, u: Up, person: str) -> httpx.Response:
    return await c.post(
        f"{u.url('submissions')}/tenants/{TENANT}/editions/{EDITION}/experience-reports",
        json=report_body(),
        headers={**u.headers(person), "Idempotency-Key": f"up-{person}"},
    )


async def _applied(u: Up) -> tuple[dict[str, list[str]], dict[str, str]]:
    """(person -> submission ids of their rewards ledger entries, assignee -> submission fulfilling their
    experience assignment), both over HTTP."""
    async with httpx.AsyncClient(timeout=10, headers=u.headers(READER)) as c:
        pl = await c.get(
            f"{u.url('rewards')}/tenants/{TENANT}/editions/{EDITION}/priority-list", params={"ledger": "true"}
        )
        pl.raise_for_status()
        asg = await c.get(
            f"{u.url('campaign')}/tenants/{TENANT}/editions/{EDITION}/assignments",
            params={"part": "experience"},
        )
        asg.raise_for_status()
    ledger: dict[str, list[str]] = {}
    for entry in pl.json()["ledger"]:
        if entry.get("participant_kind", "person") == "person":
            ledger.setdefault(entry["participant_id"], []).append(entry["subject"])
    fulfilled = {a["assignee_id"]: a["submission_id"] for a in asg.json() if a["status"] == "fulfilled"}
    return ledger, fulfilled


def _ledger_rows(u: Up) -> dict[str, list[str]]:
    """rewards' own ledger table (the priority list caps points, so a second entry must be read here)."""
    with sqlite3.connect(u.data / "rewards.db") as db:
        rows = db.execute(
            "SELECT participant_id, submission_id FROM ledger WHERE participant_kind = 'person'"
        ).fetchall()
    out: dict[str, list[str]] = {}
    for person, sid in rows:
        out.setdefault(person, []).append(sid)
    return out


async def _assert_applied_once(u: Up, accepted: dict[str, str], timeout: float = 90) -> None:
    async def converged() -> bool:
        ledger, fulfilled = await _applied(u)
        return set(ledger) == set(accepted) and fulfilled == accepted

    try:
        await eventually(converged, timeout=timeout, interval=0.5, message="accepted reports applied")
    except AssertionError as error:
        raise AssertionError(f"{error}\nhoithi up's log:\n{u.log()[-6000:]}") from error
    ledger, fulfilled = await _applied(u)
    assert {p: len(ids) for p, ids in ledger.items()} == {p: 1 for p in accepted}, "rewards: ledger over HTTP"
    assert fulfilled == accepted, "campaign: each accepted author's assignment fulfilled by their report"
    assert _ledger_rows(u) == {p: [sid] for p, sid in accepted.items()}, "rewards: one ledger row per report"


async def test_hoithi_up_restarts_a_killed_nats_server_and_service_and_applies_every_report_once(
    up: Up,
) -> None:
    await _all_ready(up, timeout=180)
    accepted: dict[str, str] = {}
    async with httpx.AsyncClient(timeout=30) as c:
        # The seed has reached submissions' directory copy once a report of a seed official is accepted.
        first = await eventually(
            lambda: _created(c, up, "p-0002"), timeout=120, interval=0.5, message="first report accepted"
        )
        accepted["p-0002"] = first["submission_id"]

    nats_pid = up.pid("nats")
    assert nats_pid is not None and _alive(nats_pid)
    people = [f"p-x{i:05d}" for i in range(OFFICIALS)]
    answers: dict[str, int] = {}
    killed = asyncio.Event()

    async with httpx.AsyncClient(timeout=30) as c:
        gate = asyncio.Semaphore(4)

        async def one(person: str) -> None:
            async with gate:
                try:
                    r = await _post_report(c, up, person)
                except httpx.HTTPError:
                    answers[person] = -1
                    return
                answers[person] = r.status_code
                if r.status_code == 201:
                    accepted[person] = r.json()["submission_id"]
            if len(answers) >= KILL_AFTER and not killed.is_set():
                killed.set()
                os.kill(nats_pid, signal.SIGKILL)  # mid-burst: the rest of the burst meets the outage

        await asyncio.gather(*(one(p) for p in people))
    assert killed.is_set()

    # The stack stays up: every service still answers, and nats-server is back as a new process.
    for s in SERVICES:
        assert await _answers(up, s), f"{s} stopped answering after nats-server was killed"
    new_nats = await eventually(
        lambda: (p := up.pid("nats")) is not None and p != nats_pid and _alive(p) and p,
        timeout=60,
        message="nats-server started again",
    )
    await eventually(lambda: _nats_answers(up), timeout=60, message="the restarted nats-server answers")
    assert up.proc.poll() is None, "hoithi up itself exited"
    assert len(accepted) > KILL_AFTER // 2, f"too few reports accepted to prove anything: {answers}"
    await _assert_applied_once(up, accepted)
    assert f"nats (pid {nats_pid}) stopped" in up.log() and "killed by SIGKILL" in up.log()
    print(f"burst answers: {sorted(Counter(answers.values()).items())}; accepted {len(accepted)}")

    # A killed service comes back too, and what is accepted afterwards is applied once as well.
    rewards_pid = up.pid("rewards")
    assert rewards_pid is not None
    os.kill(rewards_pid, signal.SIGKILL)
    await eventually(
        lambda: (p := up.pid("rewards")) is not None and p != rewards_pid and _alive(p),
        timeout=60,
        message="rewards started again",
    )
    await eventually(lambda: _ready(up, "rewards"), timeout=90, message="the restarted rewards is ready")
    assert up.pid("nats") == new_nats, "killing a service must not restart the others"
    later = [p for p in people if p not in accepted][:3] or ["p-0005"]
    async with httpx.AsyncClient(timeout=30) as c:
        for person in later:
            got = await eventually(
                lambda who=person: _created(c, up, who), timeout=60, message=f"report of {person}"
            )
            accepted[person] = got["submission_id"]
    await _assert_applied_once(up, accepted)

    # SIGTERM stops everything: the supervisor and every program it ran.
    pids = [p for p in (up.pid(n) for n in ("nats", "mail", *SERVICES)) if p is not None]
    up.proc.send_signal(signal.SIGTERM)
    assert up.proc.wait(30) == 0
    assert not [p for p in pids if _alive(p)], "programs left running after SIGTERM"


async def _readiness(u: Up, service: str) -> str | None:
    """None when ``service`` is ready, else what it answered (or why it did not)."""
    try:
        async with httpx.AsyncClient(timeout=2) as c:
            r = await c.get(f"{u.url(service)}/health/ready")
    except httpx.HTTPError as error:
        return f"{type(error).__name__}: {error}"
    return None if r.status_code == 200 else f"{r.status_code} {r.text[:300]}"


async def _all_ready(u: Up, timeout: float) -> None:
    """Wait for the four services' readiness; on failure say which were not ready, what they answered, and
    what ``hoithi up`` logged."""

    async def not_ready() -> dict[str, str]:
        answers = await asyncio.gather(*(_readiness(u, s) for s in SERVICES))
        return {s: a for s, a in zip(SERVICES, answers, strict=True) if a is not None}

    try:
        await eventually(
            lambda: _none(not_ready()),
            timeout=timeout,
            interval=0.5,
            message="hoithi up: the four services ready",
        )
    except AssertionError as error:
        raise AssertionError(
            f"{error}\nnot ready: {await not_ready()}\nhoithi up's log:\n{u.log()[-8000:]}"
        ) from error


async def _none(pending: Any) -> bool:
    return not await pending


async def _created(c: httpx.AsyncClient, u: Up, person: str) -> dict[str, Any] | None:
    r = await _post_report(c, u, person)
    return r.json() if r.status_code in (200, 201) else None
