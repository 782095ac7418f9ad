"""``hoithi up`` runs the nats-server of the wheel, not whatever comes first on PATH."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from shared.cli import local_nats_command
from shared.devserver import find_nats_server


def test_the_demo_runs_the_wheels_nats_server_even_when_an_older_one_is_first_on_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = tmp_path / "bin" / "nats-server"
    old.parent.mkdir()
    old.write_text("#!/bin/sh\necho 'nats-server: v2.9.10'\n")
    old.chmod(0o755)
    monkeypatch.setenv("PATH", f"{old.parent}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.delenv("HOITHI_NATS_SERVER", raising=False)
    binary = local_nats_command(tmp_path / "store").split()[0]
    assert binary == find_nats_server() and binary != str(old)
    assert Path(binary).name == "nats-server" and os.access(binary, os.X_OK)


def test_up_offers_the_portal_the_edition_the_seed_loaded() -> None:
    from shared.cli import seeded_edition

    out = (
        "directory cantho-snnmt: 42 units/people published\n"
        "edition cantho-snnmt/2025: version 3 published\n"
        "assignments cantho-snnmt/2025: 40 created, 0 existing\n"
    )
    assert seeded_edition(out) == ("cantho-snnmt", "2025")
    assert seeded_edition("edition t-1/2024: version 1 unchanged\n") == ("t-1", "2024")
    assert seeded_edition("directory x: 1 units/people published\n") is None


def test_the_demo_commands_the_registry_names_are_hoithi_commands() -> None:
    """``hoithi up`` loads the demo by running the command each registry entry names (shared/ knows none): each
    is a command of ``hoithi``, and its options are options of that command."""
    import typer.main

    from shared.cli import app
    from shared.settings import registry

    group = typer.main.get_command(app)
    demos = {name: entry.demo for name, entry in registry().items() if entry.demo}
    assert demos, "nothing would load the demo"
    for name, (command, *options) in demos.items():
        found = group.commands.get(command)  # type: ignore[attr-defined]
        assert found is not None, f"{name}'s demo command {command!r} is no hoithi command"
        known = {opt for param in found.params for opt in param.opts}
        assert set(options) <= known, f"{name}: {command} has no {set(options) - known}"
