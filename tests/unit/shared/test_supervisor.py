"""The supervisor of ``hoithi up``: a program that exits is started again with a doubling, bounded back-off while
the others keep running; stop() ends them all (a shell's children included)."""

from __future__ import annotations

import asyncio
import io
import os
from pathlib import Path

from shared.supervisor import Backoff, Program, Supervisor
from tests.support.wait import eventually


def test_back_off_doubles_up_to_its_cap() -> None:
    b = Backoff(base=0.5, cap=4.0, healthy=30.0)
    assert [b.delay(n) for n in range(1, 7)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split(") ")[1][0] != "Z"


async def test_a_crashing_program_is_restarted_with_back_off_and_the_others_keep_running(
    tmp_path: Path,
) -> None:
    crashing = Program("crashing", "echo starting; exit 3")
    steady = Program("steady", "sleep 60 & wait")  # a shell with a child: stop() must reach the child too
    out = io.StringIO()
    sup = Supervisor([crashing, steady], run_dir=tmp_path, backoff=Backoff(base=0.05, cap=0.2), out=out)
    task = asyncio.create_task(sup.run())
    await eventually(lambda: crashing.starts >= 4, timeout=20, message="restarted again and again")
    assert steady.starts == 1, "the others keep running"
    steady_pid = int((tmp_path / "steady.pid").read_text())
    assert _alive(steady_pid)
    log = out.getvalue()
    assert "crashing (pid" in log and "(exit code 3); restarting in 0.1s" in log
    assert "restarting in 0.2s" in log, "the delay doubles up to its cap"
    sup.stop()
    assert await asyncio.wait_for(task, 20) == 0
    assert not _alive(steady_pid)
    assert not list(tmp_path.glob("*.pid"))
    assert "every program stopped" in out.getvalue()
