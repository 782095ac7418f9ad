"""subject_versions, participant_versions: standings through business time, so "as of" is read, not folded

Issue 16. Expand only: four tables, a nullable column and a partial index. Every subject starts unversioned (NULL): until the
standings job has folded it again (it finds it by the index), "as of" reads of its edition fold the facts as
before, so they stay exact through the upgrade and beside the previous release in a rolling update (which
never writes the column).

Revision ID: f1c2d3e4a5b6
Revises: e5b3c8f1a2d7
Create Date: 2026-12-04 16:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import shared.db

revision: str = "f1c2d3e4a5b6"
down_revision: str | None = "e5b3c8f1a2d7"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_UNVERSIONED = sa.text("versioned_facts IS NULL OR versioned_facts <> facts")


def upgrade() -> None:
    op.create_table(
        "subject_versions",
        sa.Column("generation", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("subject", sa.String(length=100), nullable=False),
        sa.Column("valid_from", shared.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("valid_to", shared.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("tenant", sa.String(length=100), nullable=False),
        sa.Column("edition", sa.String(length=32), nullable=False),
        sa.Column("entries", sa.Text(), nullable=False),
        sa.Column("marks", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("generation", "subject", "valid_from"),
    )
    op.create_index(
        "ix_subject_versions_in_force",
        "subject_versions",
        ["generation", "tenant", "edition", "valid_to", "valid_from"],
        unique=False,
    )

    def key() -> list[sa.Column[object]]:
        return [
            sa.Column("generation", sa.Integer(), autoincrement=False, nullable=False),
            sa.Column("tenant", sa.String(length=100), nullable=False),
            sa.Column("edition", sa.String(length=32), nullable=False),
            sa.Column("participant_kind", sa.String(length=10), nullable=False),
            sa.Column("participant_id", sa.String(length=100), nullable=False),
        ]

    names = ["generation", "tenant", "edition", "participant_kind", "participant_id"]
    op.create_table(
        "participant_versions",
        *key(),
        sa.Column("valid_from", shared.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("valid_to", shared.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("points", sa.Float(), nullable=False),
        sa.Column("first_at", shared.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("misses", sa.Integer(), nullable=False),
        sa.Column("eligibility", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint(*names, "valid_from"),
    )
    op.create_index(
        "ix_participant_versions_in_force",
        "participant_versions",
        ["generation", "tenant", "edition", "participant_kind", "valid_to", "valid_from"],
        unique=False,
    )
    op.create_table(
        "timelines",
        *key(),
        sa.Column("horizon", shared.db.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint(*names),
    )
    op.create_table(
        "timeline_subjects",
        *key(),
        sa.Column("subject", sa.String(length=100), nullable=False),
        sa.PrimaryKeyConstraint(*names, "subject"),
    )
    op.add_column("submission_states", sa.Column("versioned_facts", sa.Integer(), nullable=True))
    op.create_index(
        "ix_submission_states_unversioned",
        "submission_states",
        ["tenant", "edition"],
        unique=False,
        postgresql_where=_UNVERSIONED,
        sqlite_where=_UNVERSIONED,
    )


def downgrade() -> None:
    op.drop_index("ix_submission_states_unversioned", table_name="submission_states")
    op.drop_column("submission_states", "versioned_facts")
    op.drop_table("timeline_subjects")
    op.drop_table("timelines")
    op.drop_index("ix_participant_versions_in_force", table_name="participant_versions")
    op.drop_table("participant_versions")
    op.drop_index("ix_subject_versions_in_force", table_name="subject_versions")
    op.drop_table("subject_versions")
