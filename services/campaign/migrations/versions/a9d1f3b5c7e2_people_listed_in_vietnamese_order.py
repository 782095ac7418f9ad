"""people listed in Vietnamese order: copy_people.name_key, name_folded, effective_to and listed_sequence,
indexed for a page of the directory, filled for the rows already there; a trigger clears a key the previous
release leaves stale

Issue 16. ``GET …/people`` parsed every person's document and answered the whole directory, in id order, on
every call (the portal asked it on every page): tens of MB at 100,000 people. It now answers a page, in the
Vietnamese order of names, with accent-insensitive search, as a range of ``ix_copy_people_listed``
(``shared.collation``, ``shared.copies._listing_columns``). During a rolling update the previous release writes
rows without these columns: the trigger clears ``name_key`` of a row whose ``sequence`` changed without them, and
the listing fills every row without a key before it reads.

The keys are computed by ``shared.copies.listing_values_of_doc`` (``shared.collation`` at its ``VERSION``, 1);
a new version of the algorithm is a new migration writing every key again.

Revision ID: a9d1f3b5c7e2
Revises: d4f6a8c0e2b3
Create Date: 2026-12-05 22:05:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from shared.copies import listing_values_of_doc

revision: str = "a9d1f3b5c7e2"
down_revision: str | None = "d4f6a8c0e2b3"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The order's columns, then what a search and the day in force filter on, so a search reads the index alone.
LISTED = ["tenant", "name_key", "person_id", "name_folded", "effective_from", "effective_to"]
TRIGGERS = {
    "postgresql": [
        (
            "CREATE OR REPLACE FUNCTION copy_people_listing_stale() RETURNS trigger LANGUAGE plpgsql AS $$\n"
            "BEGIN\n  IF NEW.listed_sequence IS DISTINCT FROM NEW.sequence THEN NEW.name_key := NULL; END IF;\n"
            "  RETURN NEW;\nEND $$"
        ),
        (
            "CREATE TRIGGER copy_people_listing_stale BEFORE UPDATE ON copy_people "
            "FOR EACH ROW EXECUTE FUNCTION copy_people_listing_stale()"
        ),
    ],
    "sqlite": [
        (
            "CREATE TRIGGER copy_people_listing_stale AFTER UPDATE OF sequence ON copy_people FOR EACH ROW "
            "WHEN NEW.listed_sequence IS NOT NEW.sequence AND NEW.name_key IS NOT NULL BEGIN "
            "UPDATE copy_people SET name_key = NULL WHERE tenant = NEW.tenant AND person_id = NEW.person_id "
            "AND effective_from = NEW.effective_from; END"
        )
    ],
}


def upgrade() -> None:
    op.add_column("copy_people", sa.Column("name_key", sa.LargeBinary, nullable=True))
    op.add_column("copy_people", sa.Column("name_folded", sa.String(300), nullable=True))
    op.add_column("copy_people", sa.Column("effective_to", sa.Date, nullable=True))
    op.add_column("copy_people", sa.Column("listed_sequence", sa.Integer, nullable=True))
    op.create_index("ix_copy_people_listed", "copy_people", LISTED)
    op.create_index(
        "ix_copy_people_unit_listed", "copy_people", ["tenant", "unit_id", "name_key", "person_id"]
    )
    people = sa.table(
        "copy_people",
        sa.column("tenant", sa.String),
        sa.column("person_id", sa.String),
        sa.column("effective_from", sa.Date),
        sa.column("doc", sa.Text),
        sa.column("sequence", sa.Integer),
        sa.column("name_key", sa.LargeBinary),
        sa.column("name_folded", sa.String),
        sa.column("effective_to", sa.Date),
        sa.column("listed_sequence", sa.Integer),
    )
    if not op.get_context().as_sql:  # SQL rendered offline: the listing fills the rows on its first read
        _fill(people)
    for sql in TRIGGERS[op.get_context().dialect.name]:
        op.execute(sql)


def _fill(people: sa.TableClause) -> None:
    """Every row's listing columns, from its document."""
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(
            people.c.tenant, people.c.person_id, people.c.effective_from, people.c.doc, people.c.sequence
        )
    ).all()
    values = [
        {"k_tenant": tenant, "k_person": person_id, "k_since": since, **listing_values_of_doc(doc, sequence)}
        for tenant, person_id, since, doc, sequence in rows
    ]
    # Filling derived columns changes no one's directory: the version triggers count it as a change, so each
    # tenant's version is put back. The rows are locked from this read to the commit (PostgreSQL: FOR UPDATE;
    # SQLite: a writer committing meanwhile makes this transaction's first write fail), so no writer's change
    # can fall in between and be hidden.
    lock = " FOR UPDATE" if bind.dialect.name == "postgresql" else ""
    versions = bind.execute(
        sa.text(f"SELECT tenant, version, stamp FROM campaign_directory_versions{lock}")
    ).all()
    if values:
        bind.execute(
            sa.update(people)
            .where(
                people.c.tenant == sa.bindparam("k_tenant"),
                people.c.person_id == sa.bindparam("k_person"),
                people.c.effective_from == sa.bindparam("k_since"),
            )
            .values(
                name_key=sa.bindparam("name_key"),
                name_folded=sa.bindparam("name_folded"),
                effective_to=sa.bindparam("effective_to"),
                listed_sequence=sa.bindparam("listed_sequence"),
            ),
            values,
        )
    if values and versions:
        bind.execute(
            sa.text(
                "UPDATE campaign_directory_versions SET version = :version, stamp = :stamp WHERE tenant = :tenant"
            ),
            [row._asdict() for row in versions],
        )


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS copy_people_listing_stale ON copy_people")
        op.execute("DROP FUNCTION IF EXISTS copy_people_listing_stale()")
    else:
        op.execute("DROP TRIGGER IF EXISTS copy_people_listing_stale")
    op.drop_index("ix_copy_people_unit_listed", table_name="copy_people")
    op.drop_index("ix_copy_people_listed", table_name="copy_people")
    for column in ("listed_sequence", "effective_to", "name_folded", "name_key"):
        op.drop_column("copy_people", column)
