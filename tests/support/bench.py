"""Running a ``bench/`` script's ``--smoke`` run from a test: its output, and its machine-readable lines."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run_smoke(script: str, *args: str, minutes: int) -> str:
    """The output of ``bench/<script> --smoke …``; the test fails when it does not exit 0 within ``minutes`` (then
    SIGINT lets the bench's ``finally`` stop what it started and drop its databases)."""
    cmd = [sys.executable, f"bench/{script}", "--smoke", *args]
    with subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as proc:
        try:
            out, _ = proc.communicate(timeout=minutes * 60)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGINT)
            out, _ = proc.communicate(timeout=60)
            pytest.fail(f"{script} --smoke did not finish in {minutes} minutes:\n{out[-4000:]}")
    assert proc.returncode == 0, out[-4000:]
    return out


def result_lines(out: str, prefix: str) -> dict[str, dict[str, str]]:
    """``db`` -> the fields of each ``<prefix>: db=… k=v …`` line, in order."""
    lines = re.findall(rf"^{prefix}: .*$", out, re.MULTILINE)
    fields = [dict(kv.split("=", 1) for kv in line.split()[1:]) for line in lines]
    return {f["db"]: f for f in fields}
