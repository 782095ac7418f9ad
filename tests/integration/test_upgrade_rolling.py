"""A rolling update: the previous release's code and the new code run at the same time on one database migrated
to the new head (expand/contract, README "Upgrading without downtime").

The previous release is checked out of git (``PREVIOUS_RELEASE``, shared/upgrades.py) into a temporary directory
and its ``hoithi serve`` runs from there, beside the new code's processes, on the same databases, the same NATS
stream and the same durable consumers. A report accepted by the old process and one accepted by the new process
are both applied downstream, and each process reads what the other wrote."""

from __future__ import annotations

import secrets
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared.devserver import free_port
from shared.mailsink import MailSink
from shared.settings import SERVICES
from shared.upgrades import PREVIOUS_RELEASE, ROLLING_SERVICES
from tests.support.system import DEMO_START, EDITION, ROOT, TENANT, System, report_body
from tests.support.wait import eventually_sync

BASE = f"/tenants/{TENANT}/editions/{EDITION}"
READER = "p-0004"  # official and secretariat
BY_OLD, BY_NEW = "p-0002", "p-0008"


def _previous_release(target: Path) -> Path:
    """The previous release's tree (``git archive``), or a failure saying how to get the commit."""
    archive = target.with_suffix(".tar")
    with archive.open("wb") as out:
        res = subprocess.run(
            ["git", "archive", "--format=tar", PREVIOUS_RELEASE],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.PIPE,
            check=False,
            timeout=60,
        )
    if res.returncode != 0:
        pytest.fail(
            f"the previous release {PREVIOUS_RELEASE} is not in this clone (a shallow clone? "
            f"git fetch --unshallow): {res.stderr.decode(errors='replace')}"
        )
    with tarfile.open(archive) as tar:
        tar.extractall(target, filter="data")
    return target


class OldProcess:
    """``hoithi serve NAME`` of the previous release, with the System's environment, on a port of its own."""

    def __init__(self, system: System, tree: Path, name: str) -> None:
        self.name, self.port = name, free_port()
        self.log_path = system.workdir / "logs" / f"old-{name}.log"
        env = system.env(name, **{f"HOITHI_{name.upper()}_PORT": str(self.port)})
        env["PYTHONPATH"] = str(tree)  # the old tree's shared/ and services/, not the editable install
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "shared.cli", "serve", name],
                cwd=tree,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self) -> None:
        def ready() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"the previous release's {self.name} exited with {self.proc.returncode} on the new "
                    f"schema:\n{self.log_path.read_text(errors='replace')[-4000:]}"
                )
            try:
                return httpx.get(f"{self.url}/health/ready", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        eventually_sync(ready, timeout=60, message=f"old {self.name} ready", retry_on=())

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def _old_hoithi(system: System, tree: Path, *args: str) -> str:
    """``hoithi ARGS`` of the previous release, with the System's environment."""
    env = system.env()
    env["PYTHONPATH"] = str(tree)
    res = subprocess.run(
        [sys.executable, "-m", "shared.cli", *args],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert res.returncode == 0, f"previous release: hoithi {' '.join(args)}: {res.stdout}\n{res.stderr}"
    return res.stdout


@pytest.fixture(scope="module")
def rolling(
    test_servers: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[System, dict[str, OldProcess]]]:
    """A deployment made and run by the previous release, then upgraded in place as an operator does during a
    rolling update: the new ``hoithi migrate`` and ``hoithi streams`` while the old processes serve, then the
    new processes started beside them."""
    work: Path = tmp_path_factory.mktemp("rolling")
    tree = _previous_release(work / "previous-release")
    system = System(
        nats_url=test_servers.nats_url,
        prefix="u" + secrets.token_hex(4),
        workdir=work,
        database_urls={s: test_servers.create_database(f"roll_{s}") for s in SERVICES},
    )
    (work / "logs").mkdir(parents=True, exist_ok=True)
    system.set_clock(DEMO_START)
    system.mail = MailSink(work / "mail").start()
    old: dict[str, OldProcess] = {}
    try:
        _old_hoithi(system, tree, "migrate")
        _old_hoithi(
            system, tree, "seed", str(tree / system.seed_dir.relative_to(ROOT))
        )  # its own seed format
        _old_hoithi(system, tree, "streams")
        for name in ROLLING_SERVICES:
            old[name] = OldProcess(system, tree, name)
        for p in old.values():
            p.wait_ready()
        # The rolling update: expand the schema and declare the new consumers under the running old code.
        system.hoithi("migrate")
        system.hoithi("streams")
        for s in SERVICES:
            system.ports[s] = free_port()
            system.start_service(s)
        for s in SERVICES:
            system.wait_ready(s)
        system.wait_caught_up(system.catch_up_timeout)
        yield system, old
    finally:
        for p in old.values():
            p.stop()
        system.stop()


def _token(system: System, person: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {system.token(person)}"}


def _priority(system: System) -> set[str]:
    with system.client("rewards", READER) as c:
        r = c.get(f"{BASE}/priority-list")
        r.raise_for_status()
        return {p["person_id"] for p in r.json()["persons"] if p["points"]}


def test_old_and_new_code_serve_reads_and_writes_on_one_migrated_database(
    rolling: tuple[System, dict[str, OldProcess]],
) -> None:
    system, old = rolling
    old_submissions = old["submissions"]
    body = report_body()
    by_old = httpx.post(
        f"{old_submissions.url}{BASE}/experience-reports",
        json=body,
        headers=_token(system, BY_OLD),
        timeout=30,
    )
    assert by_old.status_code in (200, 201, 202), by_old.text
    by_new = system.submit_report(BY_NEW, body=body)
    assert by_new.status_code in (200, 201, 202), by_new.text

    # Both reports are applied downstream (rewards counts both officials' points)...
    eventually_sync(lambda: {BY_OLD, BY_NEW} <= _priority(system), timeout=60, message="both reports applied")
    # ...and each code reads what the other wrote.
    old_id, new_id = by_old.json()["submission_id"], by_new.json()["submission_id"]
    r = httpx.get(f"{old_submissions.url}{BASE}/experience-reports/{new_id}", headers=_token(system, BY_NEW))
    assert r.status_code == 200, r.text
    with system.client("submissions", BY_OLD) as c:
        r = c.get(f"{BASE}/experience-reports/{old_id}")
        assert r.status_code == 200, r.text
    for name, p in old.items():
        assert p.proc.poll() is None, f"old {name} died:\n{p.log_path.read_text(errors='replace')[-3000:]}"
