"""schemathesis against the four running services (uvicorn, PostgreSQL, NATS, the 2023 seed) with a real
secretariat and a real official token: every operation of each live ``/openapi.json``, every check
(server errors and conformance: status codes, content types, schemas, schema-valid bodies accepted and
schema-violating ones refused, Allow headers, authentication), 20 deterministic examples per operation and
phase, tenant and edition pinned to real values so requests get past the tenant check.

schemathesis runs as its own process (the ``st`` command of the installed schemathesis 4), so its Hypothesis
state stays out of pytest's process, and its JUnit report is parsed so a failure names each failing operation
and check. (The INTERNALERROR "AST constructor recursion depth mismatch" that took this test out of CI was seen
again with schemathesis out of process: pytest's ``ast.parse`` while formatting a traceback after an interrupt,
on CPython 3.11.7 — an interpreter bug in its AST recursion-depth bookkeeping, not this test's; ``--tb=native``
formats without ``ast``.) ``tests/integration/schemathesis.toml`` holds the pinned values and
the narrow exclusions, each with its reason.

``HOITHI_FUZZ=full`` (``make fuzz``, outside CI) adds the stateful phase (links between operations) and more
examples."""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from shared.settings import SERVICES
from tests.support.system import EDITION, TENANT, System

CONFIG = Path(__file__).with_name("schemathesis.toml")
SECRETARIAT, OFFICIAL = "p-0004", "p-0002"
FULL = os.environ.get("HOITHI_FUZZ") == "full"
# Each service x token is one `st` process; two at a time keep a 2-core machine inside the budget.
PARALLEL = int(os.environ.get("HOITHI_FUZZ_PARALLEL", "2"))
BUDGET_S = 6 * 60
# One `st` process is stopped after this long (a loaded developer machine may give it more).
RUN_TIMEOUT_S = 3600.0 if FULL else float(os.environ.get("HOITHI_FUZZ_RUN_TIMEOUT", BUDGET_S))


def _st() -> str:
    found = shutil.which("st", path=str(Path(sys.executable).parent)) or shutil.which("st")
    if found is None:
        pytest.skip("schemathesis is not installed (pip install -e '.[test]')")
    return found


@pytest.fixture(scope="module")
def system(test_servers: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    s = System(
        nats_url=test_servers.nats_url,
        prefix="z" + secrets.token_hex(4),
        workdir=tmp_path_factory.mktemp("fuzz"),
        database_urls={name: test_servers.create_database(name) for name in SERVICES},
    )
    try:
        yield s.start()
    finally:
        s.stop()


def _config(tmp: Path) -> Path:
    """The checked-in configuration with the tenant and edition of this system pinned."""
    text = CONFIG.read_text(encoding="utf-8")
    pinned = f'[parameters]\n"path.tenant" = "{TENANT}"\n"path.edition" = "{EDITION}"\n\n'
    out = tmp / "schemathesis.toml"
    out.write_text(pinned + text, encoding="utf-8")
    return out


def run_schemathesis(
    base: str, token: str, config: Path, report: Path, *, coverage: bool = True
) -> subprocess.CompletedProcess[str]:
    """Every check (schemathesis 4's default: no ``--checks``, which would also override the configuration's
    per-operation exclusions). ``coverage``: the phase drawing each schema's boundary values, deterministic
    and the longest; run with one token in CI (the other token's run would mostly meet the same 403s)."""
    phases = "examples," + ("coverage," if coverage or FULL else "") + "fuzzing" + (",stateful" if FULL else "")
    return subprocess.run(
        [
            _st(),
            "--config-file",
            str(config),
            "run",
            f"{base}/openapi.json",
            "--max-examples",
            "100" if FULL else "20",
            "--generation-deterministic",
            *([] if FULL else ["--no-shrink"]),  # a failure is reported as found: shrinking it costs minutes
            "--phases",
            phases,
            "--header",
            f"Authorization: Bearer {token}",
            "--request-timeout",
            "30",
            "--no-color",
            "--report",
            "junit",
            "--report-junit-path",
            str(report),
        ],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        cwd=report.parent,  # its crash cache (.schemathesis/) goes there, not into the checkout
        check=False,
    )


def failures_in(report: Path) -> list[str]:
    """One line per failing operation: its checks (code and title) and the first reproduction."""
    out = []
    for case in ET.parse(report).getroot().iter("testcase"):
        for failure in [*case.findall("failure"), *case.findall("error")]:
            text = failure.text or failure.get("message") or ""
            checks = sorted(set(re.findall(r"^- (ST\d+ [^\n]+)$", text, re.MULTILINE))) or [failure.get("message", "?")]
            curl = re.search(r"^\s+(curl [^\n]+)$", text, re.MULTILINE)
            out.append(
                f"{case.get('name')}: {'; '.join(checks)}" + (f"\n    {curl.group(1)[:600]}" if curl else "")
            )
    return out


def test_every_operation_conforms_and_never_answers_a_server_error(system: System, tmp_path: Path) -> None:
    config = _config(tmp_path)
    runs = [(name, person) for name in SERVICES for person in (SECRETARIAT, OFFICIAL)]

    def one(run: tuple[str, str]) -> tuple[str, list[str], str]:
        name, person = run
        report = tmp_path / f"{name}-{person}.xml"
        try:
            res = run_schemathesis(
                system.url(name), system.token(person), config, report, coverage=person == SECRETARIAT
            )
        except subprocess.TimeoutExpired:
            return f"{name} as {person}", [f"stopped after {RUN_TIMEOUT_S:.0f} s"], ""
        if not report.exists():  # schemathesis itself failed (schema not loadable, bad option…)
            return f"{name} as {person}", [f"no report, exit {res.returncode}"], res.stdout[-3000:] + res.stderr
        return f"{name} as {person}", failures_in(report), res.stdout[-1500:]

    started = time.monotonic()
    with ThreadPoolExecutor(PARALLEL) as pool:
        results = list(pool.map(one, runs))
    took = time.monotonic() - started
    print(f"schemathesis: {len(runs)} runs in {took:.0f} s")
    failed = [(who, f, tail) for who, f, tail in results if f]
    assert not failed, "\n\n".join(f"{who}:\n  " + "\n  ".join(f) + f"\n{tail}" for who, f, tail in failed)
    if not FULL:
        assert took < BUDGET_S, f"the fuzz run took {took:.0f} s, over its {BUDGET_S} s budget in CI"
