"""The restore drill: the real System runs the 2023 edition, is backed up mid-way (notify behind the stream), keeps
running, is destroyed (processes stopped, databases dropped, the NATS store deleted) and restored into a fresh
deployment with ``hoithi restore``; once caught up, the priority list, the participation and the delivery log
answer byte for byte what the original answered at the moment of the backup. Then the same with rewards'
database taken from an older backup: it catches up from the stream. And a corrupted or incomplete backup is
refused before anything is written (on the drill's own backup, so CI starts one deployment, not two).

The clock is simulated and frozen (rate 0), so what a service applies after the restore is stamped with the
instant the original stamped it with."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from shared.devserver import NatsServer, free_port
from shared.mailsink import MailSink
from shared.settings import SERVICES
from tests.support.servers import TestServers
from tests.support.system import DEMO_START, EDITION, SEED, TENANT, System, seed_with_officials
from tests.support.wait import eventually_sync

pytestmark = pytest.mark.fault  # it stops and deletes NATS servers of its own

OFFICIALS_BEFORE = ("p-0002", "p-0008", "p-0011")  # applied everywhere before the backup
OFFICIALS_TAIL = ("p-0016", "p-0019")  # on the stream, not yet in notify's database, at the backup
OFFICIALS_AFTER = ("p-0025",)  # after the backup: lost with the original
READER = "p-0004"  # official and secretariat: reads the delivery log
PDF = b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n"
BASE = f"/tenants/{TENANT}/editions/{EDITION}"


def _attach(system: System) -> str:
    """A draft initiative of p-0001 with a PDF attached (the object store); its download path."""
    with system.client("submissions", "p-0001") as c:
        draft = c.post(
            f"{BASE}/initiatives",
            json={
                "title": "Số hoá sổ văn bản đến",
                "authors": [{"person_id": "p-0001", "share": 100}],
                "field_of_application": "Cải cách thủ tục hành chính",
                "first_applied_on": "2023-06-01",
                "existing_solution": "Sổ giấy.",
                "existing_weaknesses": "Khó tra cứu.",
                "new_solution": "Sổ điện tử.",
                "novelty": "Lần đầu áp dụng tại Sở.",
                "applicability": "Mọi phòng.",
                "benefits": "Tra cứu tức thì.",
                "benefits_kind": "actual",
                "submit": False,
            },
        )
        assert draft.status_code == 201, draft.text
        sid = draft.json()["submission_id"]
        up = c.post(
            f"{BASE}/initiatives/{sid}/attachments", params={"filename": "thuyet-minh.pdf"}, content=PDF
        )
        assert up.status_code == 201, up.text
        return f"{BASE}/initiatives/{sid}/attachments/{up.json()['attachment_id']}"


def _download(system: System, path: str) -> bytes:
    with system.client("submissions", "p-0001") as c:
        r = c.get(path)
        r.raise_for_status()
        return r.content


def _databases(test_servers: TestServers, tmp: Path) -> dict[str, str]:
    """rewards and notify on PostgreSQL (pg_dump), campaign and submissions on SQLite (VACUUM INTO)."""
    return {
        s: test_servers.create_database(s)
        if s in ("rewards", "notify")
        else f"sqlite+aiosqlite:///{tmp / f'{s}.db'}"
        for s in SERVICES
    }


def _answers(system: System) -> dict[str, bytes]:
    """What a user reads: the priority list, participation and the delivery log, as the bytes served."""
    out = {}
    with system.client("rewards", READER) as c:
        r = c.get(f"/tenants/{TENANT}/editions/{EDITION}/priority-list")
        r.raise_for_status()
        out["priority-list"] = r.content
    with system.client("campaign", READER) as c:
        r = c.get(f"/tenants/{TENANT}/editions/{EDITION}/participation")
        r.raise_for_status()
        out["participation"] = r.content
    with system.client("notify", READER) as c:
        r = c.get(f"/tenants/{TENANT}/deliveries", params={"limit": 1000})
        r.raise_for_status()
        out["deliveries"] = r.content
    return out


def _settled_answers(system: System, timeout: float = 90) -> dict[str, bytes]:
    """The answers once notify has sent what is due: an email is sent by the replica holding the delivery lease,
    which a restarted notify takes over only when the stopped one's lease expires — compared a moment earlier,
    one side would show a receipt ``pending`` that the other shows ``sent``."""
    seen: list[dict[str, bytes]] = []

    def settled() -> bool:
        seen.append(_answers(system))
        rows = json.loads(seen[-1]["deliveries"])
        return not [d for d in rows if d["status"] == "pending" and d.get("due_at") is None]

    eventually_sync(settled, timeout=timeout, message="every due delivery sent")
    return seen[-1]


def _persons_listed(system: System) -> set[str]:
    with system.client("rewards", READER) as c:
        r = c.get(f"/tenants/{TENANT}/editions/{EDITION}/priority-list")
        r.raise_for_status()
        return {p["person_id"] for p in r.json()["persons"] if p["points"]}


def _wait_caught_up(system: System, *, except_: tuple[str, ...] = ()) -> None:
    running = tuple(s for s in system.services if s not in except_)
    saved = system.services
    system.services = running
    try:
        system.wait_caught_up(timeout=300)
    finally:
        system.services = saved


def _destroy(system: System, nats: NatsServer, test_servers: TestServers) -> None:
    system.stop()
    nats.stop()
    shutil.rmtree(nats.store_dir, ignore_errors=True)
    for url in system.database_urls.values():
        if url.startswith("postgresql"):
            test_servers.drop_database(url)
        else:
            Path(url.split("///", 1)[1]).unlink(missing_ok=True)


def _restore(
    test_servers: TestServers, tmp: Path, name: str, prefix: str, backup: Path, *extra: str
) -> tuple[System, NatsServer]:
    """A fresh deployment (new NATS store, new databases) restored from ``backup``, services started."""
    work = tmp / name
    work.mkdir()
    nats = NatsServer(store_dir=work / "nats-store", log_file=work / "nats.log").start()
    system = System(
        nats_url=nats.url, prefix=prefix, workdir=work, database_urls=_databases(test_servers, work)
    )
    system.set_clock(DEMO_START, rate=0)
    (work / "logs").mkdir()
    system.mail = MailSink(work / "mail").start()
    for s in SERVICES:
        system.ports[s] = free_port()
    out = system.hoithi("restore", str(backup), *extra)
    assert "consumer" in out, out
    for s in SERVICES:
        system.start_service(s)
    for s in SERVICES:
        system.wait_ready(s)
    system.wait_caught_up(timeout=300)
    return system, nats


@contextmanager
def _running(
    test_servers: TestServers, prefix: str, tmp_path: Path, seed_dir: Path = SEED
) -> Iterator[tuple[System, NatsServer]]:
    work = tmp_path / "original"
    work.mkdir()
    nats = NatsServer(store_dir=work / "nats-store", log_file=work / "nats.log").start()
    system = System(
        nats_url=nats.url,
        prefix=prefix,
        workdir=work,
        database_urls=_databases(test_servers, work),
        seed_dir=seed_dir,
        catch_up_timeout=300,
    )
    system.set_clock(DEMO_START, rate=0)  # frozen: replays stamp what the original stamped
    try:
        system.start()
        yield system, nats
    finally:
        system.stop()
        nats.stop()


@pytest.fixture
def original(
    test_servers: TestServers, unique_prefix: str, tmp_path: Path
) -> Iterator[tuple[System, NatsServer]]:
    with _running(test_servers, unique_prefix, tmp_path) as running:
        yield running


def test_restore_drill_gives_back_every_answer_byte_for_byte(
    original: tuple[System, NatsServer], test_servers: TestServers, unique_prefix: str, tmp_path: Path
) -> None:
    _drill(original, test_servers, unique_prefix, tmp_path, OFFICIALS_BEFORE, OFFICIALS_TAIL, OFFICIALS_AFTER)


@pytest.mark.soak
def test_long_restore_drill(test_servers: TestServers, unique_prefix: str, tmp_path: Path) -> None:
    """The same drill with HOITHI_DRILL_REPORTS receipts instead of six (``make soak-drill N=...``)."""
    n = int(os.environ.get("HOITHI_DRILL_REPORTS", "0"))
    if n <= 0:
        pytest.skip("the long drill runs under make soak-drill (HOITHI_DRILL_REPORTS=N)")
    seed = seed_with_officials(tmp_path / "seed", n)
    officials = tuple(f"p-x{i:05d}" for i in range(n))
    before, tail, after = (
        officials[: n // 2],
        officials[n // 2 : n - n // 8 or n],
        officials[n - n // 8 or n :],
    )
    with _running(test_servers, unique_prefix, tmp_path, seed) as running:
        _drill(running, test_servers, unique_prefix, tmp_path, before, tail, after or officials[-1:])


def _drill(
    original: tuple[System, NatsServer],
    test_servers: TestServers,
    unique_prefix: str,
    tmp_path: Path,
    before_: tuple[str, ...],
    tail_: tuple[str, ...],
    after_: tuple[str, ...],
) -> None:
    # seconds to apply the reports, on a shared machine: a deadline, not a sleep
    wait = 30 + 0.5 * (len(before_) + len(tail_) + len(after_))
    system, nats = original
    attachment = _attach(system)
    for person in before_:
        assert system.submit_report(person, key=f"before-{person}").status_code == 201
    eventually_sync(lambda: set(before_) <= _persons_listed(system), timeout=wait, message="listed")
    system.wait_caught_up(timeout=wait)
    older = tmp_path / "backup-older"
    system.hoithi("backup", str(older))

    # notify falls behind: the backup holds these receipts on the stream but not in notify's database.
    system.stop_service("notify")
    for person in tail_:
        assert system.submit_report(person, key=f"tail-{person}").status_code == 201
    eventually_sync(lambda: set(tail_) <= _persons_listed(system), timeout=wait, message="tail listed")
    _wait_caught_up(system, except_=("notify",))
    backup = tmp_path / "backup"
    system.hoithi("backup", str(backup))
    manifest = json.loads((backup / "manifest.json").read_text())
    notify_floor = manifest["databases"]["notify"]["consumers"]["notify-facts-v3"]["ack_floor"]
    assert notify_floor < manifest["streams"][system.stream]["last_seq"]
    _refused(system, backup, tmp_path)

    # The original at the moment of the backup: notify catches up with what the stream held then.
    system.start_service("notify")
    system.wait_ready("notify")
    system.wait_caught_up(timeout=wait)
    at_backup = _settled_answers(system)
    assert json.loads(at_backup["deliveries"]), "the drill needs a delivery log to compare"

    # It keeps running: a receipt after the backup changes every answer (and is lost with the original).
    for person in after_:
        assert system.submit_report(person, key=f"after-{person}").status_code == 201
    eventually_sync(lambda: set(after_) <= _persons_listed(system), timeout=wait, message="after")
    system.wait_caught_up(timeout=wait)
    assert _answers(system)["priority-list"] != at_backup["priority-list"]

    _destroy(system, nats, test_servers)

    restored, restored_nats = _restore(test_servers, tmp_path, "restored", unique_prefix, backup)
    try:
        again = _settled_answers(restored)
        for what in at_backup:
            assert again[what] == at_backup[what], what
        assert _download(restored, attachment) == PDF  # the object store came back with the database
        # notify replayed its tail: the receipts of the tail were mailed by the restored deployment.
        assert restored.mail is not None
        eventually_sync(lambda: len(restored.mail.messages()) >= len(tail_), timeout=30, message="mail")
    finally:
        _destroy(restored, restored_nats, test_servers)

    # rewards' database from the older backup (before the tail): it catches up from the stream.
    mixed, mixed_nats = _restore(
        test_servers, tmp_path, "mixed", unique_prefix, backup, "--database", f"rewards={older}"
    )
    try:
        again = _settled_answers(mixed)
        assert again["priority-list"] == at_backup["priority-list"]
        assert again["participation"] == at_backup["participation"]
        # Every delivery of the original is there, unchanged. rewards re-derives its standings from the facts
        # it replays, in passes that need not cut the history where the original's did: a standings change
        # may be told once more (reward.priority.changed ids are per (old, new) standing), never anything else.
        before = {d["id"]: d for d in json.loads(at_backup["deliveries"])}
        after = {d["id"]: d for d in json.loads(again["deliveries"])}
        assert {i: after.get(i) for i in before} == before
        assert {d["template"] for i, d in after.items() if i not in before} <= {"reward.priority.changed"}
    finally:
        mixed.stop()
        mixed_nats.stop()


def _refused(system: System, backup: Path, tmp_path: Path) -> None:
    """A corrupted or incomplete copy of ``backup`` is refused, and so is a restore onto a running deployment,
    each before anything is written (checked on the drill's own backup: no second deployment to start)."""
    assert "every piece is present" in system.hoithi("restore", "--check", str(backup))

    corrupted = tmp_path / "corrupted"
    shutil.copytree(backup, corrupted)
    db = corrupted / json.loads((backup / "manifest.json").read_text())["databases"]["campaign"]["file"]
    db.write_bytes(db.read_bytes()[:-1] + b"\0")
    with pytest.raises(RuntimeError) as refused:
        system.hoithi("restore", str(corrupted))
    assert "does not match its SHA-256" in str(refused.value)
    assert "bị hỏng" in str(refused.value)

    incomplete = tmp_path / "incomplete"
    shutil.copytree(backup, incomplete)
    (incomplete / "manifest.json").unlink()
    with pytest.raises(RuntimeError) as refused:
        system.hoithi("restore", str(incomplete))
    assert "incomplete" in str(refused.value) and "không đầy đủ" in str(refused.value)

    # And never on top of a running deployment: this one is not empty.
    with pytest.raises(RuntimeError) as refused:
        system.hoithi("restore", str(backup))
    assert "not empty" in str(refused.value) and "không trống" in str(refused.value)
