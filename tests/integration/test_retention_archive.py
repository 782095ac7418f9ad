"""``hoithi retention archive``: a closed edition is exported (JSON Lines + SHA256SUMS that read back) and then
pruned from every service's database; refused — changing nothing — without the operator's confirmation of the
audit period, while a service has not seen the edition closed, and while notify has deliveries open."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.support.system import EDITION, ROOT, SEED, TENANT

CLOSERS = ("submissions", "rewards", "notify")  # the services that consume edition.closed


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """Four real SQLite databases, migrated, with the 2023 edition seeded in campaign's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOITHI_")}
    env.update({"HOITHI_ENV": "test", "HOITHI_DATA_DIR": str(tmp_path / "data")})
    for args in (("migrate",), ("seed", str(SEED))):
        subprocess.run([sys.executable, "-m", "shared.cli", *args], cwd=ROOT, env=env, check=True,
                       capture_output=True)  # fmt: skip
    return env


def _archive(env: dict[str, str], target: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "shared.cli", "retention", "archive", TENANT, EDITION, str(target), *extra],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def _db(env: dict[str, str], service: str) -> sqlite3.Connection:
    return sqlite3.connect(Path(env["HOITHI_DATA_DIR"]) / f"{service}.db")


def _count(env: dict[str, str], service: str, table: str) -> int:
    with _db(env, service) as con:
        return int(
            con.execute(
                f"SELECT count(*) FROM {table} WHERE tenant = ? AND edition = ?", (TENANT, EDITION)
            ).fetchone()[0]
        )


def _closed(env: dict[str, str], service: str) -> None:
    """``service`` has applied edition.closed (its inbox row, as the consumer writes it)."""
    now = datetime.now(UTC).isoformat()
    with _db(env, service) as con:
        con.execute(
            "INSERT INTO inbox (purpose, event_id, event_type, tenant, subject, sequence, time, envelope, applied_at)"
            " VALUES ('facts', ?, 'edition.closed', ?, ?, 2, ?, ?, ?)",
            (f"closed-{service}", TENANT, f"{TENANT}/{EDITION}", now, b"{}", now),
        )


def _delivery(env: dict[str, str], status: str) -> None:
    now = datetime.now(UTC).isoformat()
    with _db(env, "notify") as con:
        con.execute("DELETE FROM deliveries WHERE id = 'd-1'")
        con.execute(
            "INSERT INTO deliveries (id, tenant, edition, channel, template, recipient, to_address, subject, text,"
            " cause_event_id, status, attempts, next_attempt_at, created_at)"
            " VALUES ('d-1', ?, ?, 'email', 'submission.received', 'p-0002', 'minh.tv@example.vn', 'Biên nhận',"
            " 'Biên nhận hồ sơ', 'e-1', ?, 0, ?, ?)",
            (TENANT, EDITION, status, now, now),
        )


def test_a_closed_edition_is_archived_then_pruned_and_refused_while_anything_depends_on_it(
    env: dict[str, str], tmp_path: Path
) -> None:
    assignments = _count(env, "campaign", "assignments")
    assert assignments > 0

    unconfirmed = _archive(env, tmp_path / "a0")
    assert unconfirmed.returncode == 2 and "--audit-period-ended" in unconfirmed.stderr
    assert "thời hạn lưu trữ" in unconfirmed.stderr

    not_closed = _archive(env, tmp_path / "a1", "--audit-period-ended")
    assert not_closed.returncode == 2, not_closed.stdout
    assert "has not seen edition 2023 closed" in not_closed.stderr and "chưa ghi nhận" in not_closed.stderr

    for service in CLOSERS:
        _closed(env, service)
    _delivery(env, "pending")
    open_deliveries = _archive(env, tmp_path / "a2", "--audit-period-ended")
    assert open_deliveries.returncode == 2
    assert "1 deliveries still pending" in open_deliveries.stderr
    assert _count(env, "campaign", "assignments") == assignments  # refused: nothing pruned
    assert not (tmp_path / "a2" / "SHA256SUMS").exists()

    _delivery(env, "sent")
    done = _archive(env, tmp_path / "archive", "--audit-period-ended")
    assert done.returncode == 0, done.stderr
    archive = tmp_path / "archive"
    # The archive reads back: every file matches SHA256SUMS (what `sha256sum -c` checks).
    for line in (archive / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split("  ", 1)
        assert hashlib.sha256((archive / name).read_bytes()).hexdigest() == digest, name
    exported = [json.loads(x) for x in (archive / "campaign" / "assignments.jsonl").read_text().splitlines()]
    assert len(exported) == assignments and {r["edition"] for r in exported} == {EDITION}
    delivery = [json.loads(x) for x in (archive / "notify" / "deliveries.jsonl").read_text().splitlines()]
    assert [d["subject"] for d in delivery] == ["Biên nhận"]
    # …and the edition's rows are gone from every service.
    assert _count(env, "campaign", "assignments") == 0
    assert _count(env, "notify", "deliveries") == 0
    for service in ("campaign", "submissions", "rewards", "notify"):
        assert _count(env, service, "copy_editions") == 0, service
