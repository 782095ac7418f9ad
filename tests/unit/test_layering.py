"""domain.py of every service is pure: importing it pulls in no web framework, database or broker."""

from __future__ import annotations

import subprocess
import sys

import pytest

from shared.settings import SERVICES


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
