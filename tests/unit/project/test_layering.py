"""The layers hold: domain.py of every service is pure (importing it pulls in no web framework, database or
broker); shared/ names no service (it reads the registry); no service imports another."""

from __future__ import annotations

import ast
import importlib
import re
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from shared.settings import FRONTENDS, SERVICES


@pytest.mark.parametrize("service", SERVICES)
def test_domain_imports_no_framework_database_or_broker(service: str) -> None:
    code = (
        f"import sys, services.{service}.domain\n"
        "print(','.join(m for m in ('fastapi', 'starlette', 'sqlalchemy', 'nats', 'faststream') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == "", f"services.{service}.domain imports {out}"


# ---------------------------------------------------------------- who may import whom
ROOT = Path(__file__).resolve().parents[3]
REGISTRY = "services.registry"


def _imports_and_import_strings(path: Path) -> list[tuple[int, str]]:
    """(line, dotted name) for every import in ``path`` and every string that reads as an import string
    (``services.x``, ``services.x.app:create_app``, also the literal part of an f-string such as
    ``f"services.{name}.app"``) or as a path into the services folder (``ROOT / "services" / name``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[tuple[int, str]] = []
    # A bare "services" counts where it builds a path (an operand of ``/``, an argument of a call): a dict key
    # or a JSON field of that name names no folder.
    path_parts = {
        id(side)
        for n in ast.walk(tree)
        if isinstance(n, ast.BinOp) and isinstance(n.op, ast.Div)
        for side in (n.left, n.right)
    } | {id(a) for n in ast.walk(tree) if isinstance(n, ast.Call) for a in n.args}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
            found += [(node.lineno, f"{node.module}.{a.name}") for a in node.names]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            if node.value == "services" and id(node) in path_parts:
                found.append((node.lineno, "services."))
            found += [(node.lineno, m) for m in re.findall(r"\bservices\.[\w.{}:]*", node.value)]
    return found


def _service_named(dotted: str) -> str | None:
    """The service a dotted name or import string points into (``services.<name>…``), else None."""
    parts = re.split(r"[.:]", dotted)
    if parts[0] != "services" or len(parts) < 2 or parts[1] == REGISTRY.split(".")[1]:
        return None
    return parts[1] or "?"


def _python_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*.py") if "__pycache__" not in p.parts)


def test_shared_names_no_service() -> None:
    """shared/ imports no service and builds no import string into one: it reads the registry."""
    offences = [
        f"{path.relative_to(ROOT)}:{line} {name}"
        for path in _python_files(ROOT / "shared")
        for line, name in _imports_and_import_strings(path)
        if _service_named(name) is not None
    ]
    assert offences == [], "shared/ names a service:\n" + "\n".join(offences)


@pytest.mark.parametrize("service", SERVICES)
def test_a_service_imports_no_other_service(service: str) -> None:
    offences = [
        f"{path.relative_to(ROOT)}:{line} {name}"
        for path in _python_files(ROOT / "services" / service)
        for line, name in _imports_and_import_strings(path)
        if _service_named(name) not in (None, service)
    ]
    assert offences == [], f"{service} reaches into another service:\n" + "\n".join(offences)


def test_the_registry_names_every_service_folder() -> None:
    """Every folder under services/ with an app is in the registry, so the CLI, migrations and settings see it."""
    folders = {p.parent.name for p in (ROOT / "services").glob("*/app.py")}
    assert folders == set(SERVICES) | set(FRONTENDS)


# ---------------------------------------------------------------- one concept, one place
ENTITY_KEYS = {"unit_id": "unit", "person_id": "person", "union_id": "union"}


def _calls(node: ast.AST, name: str) -> bool:
    """``node`` is a call of ``name`` or ``x.name`` (``sa.Table``, ``Column``)."""
    return isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) == name


def _directory_copy_tables(path: Path) -> list[tuple[str, str, int]]:
    """(entity, table name, line) for every ``Table(...)`` in ``path`` that keeps a directory entity's document:
    a ``doc`` column and ``unit_id`` / ``person_id`` / ``union_id`` in the primary key."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not _calls(node, "Table"):
            continue
        assert isinstance(node, ast.Call)
        columns = {
            str(arg.args[0].value): any(
                k.arg == "primary_key" and isinstance(k.value, ast.Constant) and k.value.value is True
                for k in arg.keywords
            )
            for arg in node.args
            if _calls(arg, "Column") and arg.args and isinstance(arg.args[0], ast.Constant)  # type: ignore[attr-defined]
        }
        name = node.args[0].value if node.args and isinstance(node.args[0], ast.Constant) else "?"
        if "doc" in columns:
            found += [
                (entity, str(name), node.lineno) for key, entity in ENTITY_KEYS.items() if columns.get(key)
            ]
    return found


def test_every_copied_directory_entity_table_is_defined_once_in_shared_copies() -> None:
    """Units, unions and people are kept in one table definition each (shared/copies.py), which every service's
    models reuse: no service keeps its own table of unions (or units, or people) beside it."""
    from shared.copies import PREVIOUS_RELEASE_UNIONS, copy_tables

    shared = copy_tables(sa.MetaData())
    kept = {
        entity
        for table in (shared.units, shared.people, shared.unions)
        for key, entity in ENTITY_KEYS.items()
        if key in table.primary_key.columns and "doc" in table.c
    }
    assert kept == set(ENTITY_KEYS.values())
    elsewhere = [
        f"{path.relative_to(ROOT)}:{line} {table} ({entity})"
        for folder in ("shared", "services")
        for path in _python_files(ROOT / folder)
        if "migrations" not in path.parts  # history: revisions created and moved these tables
        and path != ROOT / "shared" / "copies.py"
        for entity, table, line in _directory_copy_tables(path)
    ]
    assert elsewhere == [], "a directory entity copied outside shared/copies.py:\n" + "\n".join(elsewhere)
    for service in SERVICES:  # and every service's models hold exactly those tables
        metadata = importlib.import_module(f"services.{service}.models").metadata
        assert {"copy_units", "copy_people", "copy_unions"} <= set(metadata.tables)
        kept_a_release = (
            PREVIOUS_RELEASE_UNIONS  # the previous release's, mirrored until the next one drops them
        )
        assert not any(
            "union" in name
            for name in metadata.tables
            if name != "copy_unions" and name not in kept_a_release
        ), service


# ---------------------------------------------------------------- domain errors carry no HTTP status
@pytest.mark.parametrize("service", SERVICES)
def test_domain_rules_refuse_without_an_http_status(service: str) -> None:
    """A domain rule says *why* it refuses (``DomainError`` with a ``Refusal``); only the API layer knows the
    status. So no domain module builds a ``Problem`` (the HTTP answer) or passes a status code."""
    folder = ROOT / "services" / service
    paths = [folder / "domain.py"] if (folder / "domain.py").exists() else _python_files(folder / "domain")
    offences = []
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            named = (
                node.id if isinstance(node, ast.Name) else node.name if isinstance(node, ast.alias) else ""
            )
            if named == "Problem":
                offences.append(f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', '?')} Problem")
            elif _calls(node, "DomainError") and _is_http_status(node.args[0] if node.args else None):  # type: ignore[attr-defined]
                offences.append(f"{path.relative_to(ROOT)}:{node.lineno} DomainError with a status")  # type: ignore[attr-defined]
    assert offences == [], f"{service}'s domain speaks HTTP:\n" + "\n".join(offences)


def _is_http_status(node: ast.AST | None) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, int) and 400 <= node.value < 600


def test_no_service_history_copies_the_backbone_ddl() -> None:
    """The outbox, inbox, sequences, idempotency keys and copies are created by shared.migrate's helper from
    their one definition; no revision spells their DDL again."""
    from shared.migrate import shared_tables

    names = set(shared_tables().tables)
    offences = [
        f"{path.relative_to(ROOT)}:{node.lineno} {node.args[0].value}"  # type: ignore[attr-defined]
        for path in sorted((ROOT / "services").glob("*/migrations/versions/*.py"))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if _calls(node, "create_table")
        and node.args  # type: ignore[attr-defined]
        and isinstance(node.args[0], ast.Constant)  # type: ignore[attr-defined]
        and node.args[0].value in names  # type: ignore[attr-defined]
    ]
    assert offences == [], "shared tables spelled out in a revision:\n" + "\n".join(offences)
