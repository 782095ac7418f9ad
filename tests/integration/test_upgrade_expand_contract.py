"""Every migration of this release expands the schema and never contracts it (README "Upgrading without
downtime"): its SQL, rendered offline for PostgreSQL revision by revision from each service's head in the
previous release, drops, renames, retypes or tightens nothing — unless the revision is listed in
shared/upgrades.CONTRACT_REVISIONS with its reason. No server needed."""

from __future__ import annotations

import io

import pytest
from alembic import command
from alembic.script import ScriptDirectory

from shared import migrate
from shared.settings import SERVICES
from shared.upgrades import CONTRACT_REVISIONS, RELEASED_HEADS, contracting_statements

_OFFLINE_URL = "postgresql+asyncpg://offline@127.0.0.1/offline"  # never connected to: SQL is only rendered


def _this_release(name: str) -> list[tuple[str, str]]:
    """(down_revision, revision) for each revision after the previous release's head, oldest first."""
    script = ScriptDirectory.from_config(migrate.alembic_config(name, _OFFLINE_URL))
    released = RELEASED_HEADS[name]
    assert script.get_revision(released) is not None, f"{name}: released head {released} is gone"
    steps = []
    for rev in script.walk_revisions("base", "heads"):  # newest first
        if rev.revision == released:
            break
        steps.append((str(rev.down_revision), rev.revision))
    else:
        raise AssertionError(f"{name}: released head {released} is not an ancestor of the head")
    return steps[::-1]


def _sql(name: str, down: str, rev: str) -> str:
    cfg = migrate.alembic_config(name, _OFFLINE_URL)
    cfg.output_buffer = io.StringIO()
    command.upgrade(cfg, f"{down}:{rev}", sql=True)
    return cfg.output_buffer.getvalue()


@pytest.mark.parametrize("name", SERVICES)
def test_this_release_only_expands_the_schema(name: str) -> None:
    contracting = {
        rev: found
        for down, rev in _this_release(name)
        if rev not in CONTRACT_REVISIONS and (found := contracting_statements(_sql(name, down, rev)))
    }
    assert contracting == {}, (
        f"{name}: these revisions would break the previous release's code on the migrated database; "
        "split them (expand now, contract in the next release) or list them in CONTRACT_REVISIONS"
    )


def test_every_allowed_contraction_exists_and_contracts() -> None:
    """An allow-list entry names a revision of this release that does contract (no stale or idle entry)."""
    seen = {}
    for name in SERVICES:
        for down, rev in _this_release(name):
            if rev in CONTRACT_REVISIONS:
                seen[rev] = contracting_statements(_sql(name, down, rev))
    assert set(seen) == set(CONTRACT_REVISIONS)
    assert all(seen.values()), seen


@pytest.mark.parametrize(
    ("sql", "breaks"),
    [
        ("ALTER TABLE t DROP COLUMN c;", True),
        ("DROP TABLE t;", True),
        ("ALTER TABLE t RENAME TO u;", True),
        ("ALTER TABLE t RENAME COLUMN c TO d;", True),
        ("ALTER TABLE t ALTER COLUMN c TYPE BIGINT;", True),
        ("ALTER TABLE t ALTER COLUMN c SET NOT NULL;", True),
        ("ALTER TABLE t ADD COLUMN c INTEGER NOT NULL;", True),
        ("ALTER TABLE t ADD COLUMN c BOOLEAN DEFAULT false NOT NULL;", False),
        ("ALTER TABLE t ADD COLUMN c INTEGER NOT NULL DEFAULT 0;", False),
        ("ALTER TABLE t ADD COLUMN c TIMESTAMP WITH TIME ZONE;", False),
        ("ALTER TABLE t ALTER COLUMN c DROP NOT NULL;", False),
        ("CREATE TABLE t (id INTEGER NOT NULL, PRIMARY KEY (id));", False),
        ("-- Running upgrade a -> b\nCREATE INDEX ix ON t (c);", False),
    ],
)
def test_what_counts_as_contracting(sql: str, breaks: bool) -> None:
    assert bool(contracting_statements(sql)) is breaks
