"""A rolling update: the previous release's code and the new code run at the same time on one database migrated
to the new head (expand/contract, README "Upgrading without downtime").

The previous release is checked out of git (``PREVIOUS_RELEASE``, shared/upgrades.py) into a temporary directory
and its ``hoithi serve`` runs from there, beside the new code's processes, on the same databases, the same NATS
stream and the same durable consumers (the previous version of a consumer the new code versioned anew), each
process connected to NATS as its own service's user, allowed only its own work (shared/nats_auth.py: the
previous release's durables too). A report accepted by the old process and one accepted by the new process are
both applied downstream, and each process reads what the other wrote; so are union changes, which the new code
keeps in copy_unions and the old code in directory_unions / notify_unions (mirrored while both run)."""

from __future__ import annotations

import asyncio
import json
import secrets
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from shared.devserver import free_port
from shared.mailsink import MailSink
from shared.nats_auth import with_userinfo, without_userinfo
from shared.settings import SERVICES
from shared.upgrades import PREVIOUS_RELEASE, ROLLING_SERVICES
from tests.support.servers import service_credentials
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
        # The previous release reads no HOITHI_NATS_USER: its own user goes in the URL, so it gets only that
        # user's permissions (the session's server refuses anonymous clients; the admin's URL is the tests').
        self.user = service_credentials(system.nats_url, name)
        if self.user is not None:
            env["HOITHI_NATS_URL"] = with_userinfo(without_userinfo(system.nats_url), *self.user)
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


UNIONS_DOC = ROOT / "deploy" / "seed" / "soctrang-stnmt-2023" / "directory.yaml"
UNION_NAMES = {
    "cd": "Chi đoàn Sở Tài nguyên và Môi trường",
    "cdcs": "Công đoàn cơ sở Sở Tài nguyên và Môi trường",
}


def _renamed(**names: str) -> bytes:
    """The seed's directory document with unions renamed (union id -> name; the others as seeded)."""
    text = UNIONS_DOC.read_text(encoding="utf-8")
    for union, name in names.items():
        assert text.count(f"name: {UNION_NAMES[union]},") == 1
        text = text.replace(f"name: {UNION_NAMES[union]},", f"name: {name},")
    return text.encode()


NEW_CD = "Chi đoàn Sở đổi tên bản mới"  # renamed through the new campaign
OLD_CDCS = "Công đoàn cơ sở đổi tên bản cũ"  # through the old one


def _import(url: str, system: System, doc: bytes) -> str:
    r = httpx.post(
        f"{url}/tenants/{TENANT}/directory/import",
        content=doc,
        headers={**_token(system, READER), "Content-Type": "application/yaml"},
        timeout=60,
    )
    assert r.status_code == 200, r.text
    return r.text


def _union_names(url: str, system: System) -> dict[str, str]:
    r = httpx.get(f"{url}/tenants/{TENANT}/directory", headers=_token(system, READER), timeout=30)
    assert r.status_code == 200, r.text
    return {u["id"]: u["name"] for u in r.json()["unions"]}


def _union_tables(system: System, service: str, old: str) -> dict[str, dict[str, tuple[str, int]]]:
    """A service's two union tables (the previous release's ``old`` and copy_unions): union -> (name, sequence)."""

    async def go() -> dict[str, dict[str, tuple[str, int]]]:
        engine = create_async_engine(system.database_urls[service], poolclass=NullPool)
        try:
            async with engine.connect() as conn:
                out = {}
                for table in (old, "copy_unions"):
                    seq = "sequence" if table != "directory_unions" else "0 AS sequence"
                    rows = await conn.execute(sa.text(f"SELECT union_id, doc, {seq} FROM {table}"))
                    out[table] = {r.union_id: (json.loads(r.doc)["name"], r.sequence) for r in rows}
                return out
        finally:
            await engine.dispose()

    return asyncio.run(go())


def test_a_union_changed_through_either_code_is_read_by_the_other(
    rolling: tuple[System, dict[str, OldProcess]],
) -> None:
    system, old = rolling
    new_campaign = f"http://127.0.0.1:{system.ports['campaign']}"
    # through the new campaign (copy_unions): the old campaign reads it (directory_unions)
    _import(new_campaign, system, _renamed(cd=NEW_CD))
    assert _union_names(old["campaign"].url, system)["cd"] == NEW_CD
    # through the old campaign (directory_unions): the new campaign reads it (copy_unions)
    _import(old["campaign"].url, system, _renamed(cd=NEW_CD, cdcs=OLD_CDCS))
    names = _union_names(new_campaign, system)
    assert names["cdcs"] == OLD_CDCS
    assert names["cd"] == NEW_CD
    campaign = _union_tables(system, "campaign", "directory_unions")
    assert {u: n for u, (n, _) in campaign["directory_unions"].items()} == {
        u: n for u, (n, _) in campaign["copy_unions"].items()
    }

    # notify: the old process (notify_unions) and the new one (copy_unions) hold both changes, same sequence
    def both_in_notify() -> bool:
        tables = _union_tables(system, "notify", "notify_unions")
        return all(
            tables[t].get(u, ("", 0))[0] == n
            for t in tables
            for u, n in (
                ("cd", NEW_CD),
                ("cdcs", OLD_CDCS),
            )
        )

    eventually_sync(both_in_notify, timeout=60, message="both union changes in notify's two tables")
    tables = _union_tables(system, "notify", "notify_unions")
    assert tables["notify_unions"] == tables["copy_unions"]
    for name, p in old.items():
        assert p.proc.poll() is None, f"old {name} died:\n{p.log_path.read_text(errors='replace')[-3000:]}"


def test_each_old_process_runs_as_its_own_nats_user(rolling: tuple[System, dict[str, OldProcess]]) -> None:
    """The session's server refuses anonymous clients; each old process got only its service's user, so the
    previous release's durables (notify-facts-v2 beside v3) are bound under authentication."""
    _, old = rolling
    for name, p in old.items():
        assert p.user is not None and p.user[0] == name, f"old {name} is not connected as its own user"
        log = p.log_path.read_text(errors="replace")
        assert "Permissions Violation" not in log and "permissions violation" not in log.lower(), log[-3000:]
