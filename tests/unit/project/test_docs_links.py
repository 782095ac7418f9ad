"""A clone has everything the README points to: every linked or quoted document is inside the repository."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), *sorted(ROOT.glob("services/*/README.md"))]
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")  # [text](target)
QUOTED_DOC = re.compile(r"`([^`\s]+\.md)`")  # a document named in backticks


def _targets(doc: Path) -> list[str]:
    text = doc.read_text(encoding="utf-8")
    found = LINK.findall(text) + QUOTED_DOC.findall(text)
    return [t for t in found if not re.match(r"^[a-z]+://|^mailto:", t)]


def test_every_document_the_readmes_point_to_is_in_the_repository() -> None:
    missing = []
    for doc in DOCS:
        for target in _targets(doc):
            path = (doc.parent / target).resolve()
            alt = (ROOT / target).resolve()  # a path quoted from the repository root
            inside = any(p.is_relative_to(ROOT) and p.exists() for p in (path, alt))
            if not inside:
                missing.append(f"{doc.relative_to(ROOT)} -> {target}")
    assert missing == []


def test_the_domain_page_covers_the_rules_the_code_relies_on() -> None:
    text = (ROOT / "docs" / "domain.md").read_text(encoding="utf-8")
    for topic in (
        "## Parts",
        "## Deadlines are exclusive ends",
        "## Administrative procedures",
        "## Rewards",
        "## Reorganisations",
        "26/10/2023 00:00:00 +07:00",
        "hết ngày 25/10/2023",
    ):
        assert topic in text
    assert "docs/domain.md" in (ROOT / "README.md").read_text(encoding="utf-8")
