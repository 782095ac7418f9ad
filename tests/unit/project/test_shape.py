"""One shape for every service, so reading one teaches all four (issue 11, item 3): ``app.py`` composes,
``api/`` holds thin routers (no SQL, no facts emitted, no transaction begun: they call a use case), ``usecases/``
is the application layer, ``domain/`` the pure rules; and the unit test tree mirrors the code."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from shared.settings import SERVICES

ROOT = Path(__file__).resolve().parents[3]

# What every service's folder holds, and the few things one service has besides.
SHAPE = {
    "__init__.py",
    "app.py",
    "api",
    "usecases",
    "domain",
    "handlers.py",
    "models.py",
    "migrations",
    "cli.py",
    "README.md",
}
BESIDES = {
    "campaign": {"seed.py"},  # the demo loader its `hoithi seed` command runs
    "notify": {"settings.py", "templates"},  # its own settings (the registry names them) and email templates
}


@pytest.mark.parametrize("service", SERVICES)
def test_every_service_has_the_one_shape(service: str) -> None:
    folder = ROOT / "services" / service
    held = {p.name for p in folder.iterdir() if p.name != "__pycache__"}
    assert held - SHAPE - BESIDES.get(service, set()) == set(), f"{service} holds more than the shape"
    assert SHAPE - held == set(), f"{service} lacks part of the shape"
    for package in ("api", "usecases", "domain"):
        assert (folder / package / "__init__.py").is_file(), f"services/{service}/{package} is not a package"


def _offences(path: Path) -> list[str]:
    """What a router must not do: import SQLAlchemy, run a statement, emit a fact or begin a transaction."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = [a.name for a in node.names] + ([node.module] if isinstance(node, ast.ImportFrom) else [])
            if any(n and n.split(".")[0] == "sqlalchemy" for n in names):
                found.append(f"{node.lineno} imports sqlalchemy")
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in ("execute", "emit", "begin", "scalar", "scalars")
        ):
            found.append(f"{node.lineno} calls .{node.func.attr}()")
    return found


@pytest.mark.parametrize("service", SERVICES)
def test_routers_hold_no_sql_emit_nothing_and_begin_no_transaction(service: str) -> None:
    api = ROOT / "services" / service / "api"
    offences = [
        f"{path.relative_to(ROOT)}:{line}" for path in sorted(api.rglob("*.py")) for line in _offences(path)
    ]
    assert offences == [], f"{service}'s routers do a use case's work:\n" + "\n".join(offences)


def test_the_unit_test_tree_mirrors_the_code() -> None:
    """tests/unit/<service>/ for each service, shared/ for the backbone, project/ for checks over the whole tree
    — and no test module at the top, where nobody would look for it."""
    unit = ROOT / "tests" / "unit"
    folders = {p.name for p in unit.iterdir() if p.is_dir() and p.name != "__pycache__"}
    assert folders == {*SERVICES, "portal", "shared", "project"}
    assert sorted(p.name for p in unit.glob("test_*.py")) == []
