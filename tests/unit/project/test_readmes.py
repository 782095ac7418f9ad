"""The READMEs say what the code says: the main README's diagram and event table, and each service README's
events, routes, settings and commands, are what ``shared/readme.py`` generates from the streams, the catalogue,
the apps, the settings classes and the commands — and every service README has the same outline."""

from __future__ import annotations

import re

import pytest

from shared import readme
from shared.settings import SERVICES, Settings


def test_the_main_readme_diagram_and_event_table_are_current() -> None:
    text = readme.MAIN_README.read_text(encoding="utf-8")
    assert readme.blocks(text) == ["settings", "event-diagram", "event-table"]
    assert readme.render(text, readme.main_sections()) == text, "stale: run python -m shared.readme"


def test_the_main_readme_lists_exactly_the_settings_fields() -> None:
    """README's list of the shared settings names every field of ``Settings`` by its variable, and nothing
    else (it once named service settings and missed a dozen of the shared ones)."""
    text = readme.MAIN_README.read_text(encoding="utf-8")
    start = text.index("\nSettings ", text.index("## Running one service alone"))
    listed = [
        name
        for line in text[start : text.index("## HTTP", start)].splitlines()
        # a table row names its variable in the first cell (a default may look like one: `HOITHI_REPLAY`)
        for name in re.findall(r"`(HOITHI_[A-Z_]*[A-Z])`", line.split(" | ")[0])
    ]
    assert set(listed) == {f"HOITHI_{field.upper()}" for field in Settings.model_fields}


def test_the_diagram_shows_every_flow_of_the_streams() -> None:
    """Each (producer, consumer) pair the durable consumers' filters imply is one arrow of the diagram, and the
    table names each catalogue type once."""
    text = readme.MAIN_README.read_text(encoding="utf-8")
    arrows = set(re.findall(r"^  (\w+) -\.?->\|\"[^\"]*\"\| (\w+)$", text, re.MULTILINE))
    assert arrows == set(readme.flows())
    assert ("submissions", "campaign") in arrows and ("campaign", "submissions") in arrows
    rows = re.findall(r"^\| `([\w.]+)` v\d+ \|", text, re.MULTILINE)
    assert sorted(rows) == sorted(readme.consumers_of_type())


@pytest.mark.parametrize("service", SERVICES)
def test_every_service_readme_follows_one_outline_and_is_current(service: str) -> None:
    path = readme.service_readme(service)
    assert path.exists(), f"{service} has no README"
    text = path.read_text(encoding="utf-8")
    headings = re.findall(r"^## .+$", text, re.MULTILINE)
    assert tuple(headings[: len(readme.SERVICE_OUTLINE)]) == readme.SERVICE_OUTLINE
    assert readme.blocks(text) == ["events", "routes", "settings", "cli"]
    assert readme.render(text, readme.service_sections(service)) == text, "stale: run python -m shared.readme"
