"""incremental standings (issue 16): marks and totals per participant, ranked by the database

Expand only: two new tables and an index. Existing ledgers get their marks and totals from the standings job,
which folds every subject the next revision (e5b3c8f1a2d7) finds unfolded.

Revision ID: d4e1a7c2b916
Revises: c79cdbaf77d3
Create Date: 2026-12-02 17:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import shared.db

revision: str = "d4e1a7c2b916"
down_revision: str | None = "c79cdbaf77d3"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "marks",
        sa.Column("generation", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("subject", sa.String(length=100), nullable=False),
        sa.Column("participant_kind", sa.String(length=10), nullable=False),
        sa.Column("participant_id", sa.String(length=100), nullable=False),
        sa.Column("mark", sa.String(length=40), nullable=False),
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("tenant", sa.String(length=100), nullable=False),
        sa.Column("edition", sa.String(length=32), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("label", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("generation", "subject", "participant_kind", "participant_id", "mark", "seq"),
    )
    op.create_index(
        "ix_marks_participant",
        "marks",
        ["generation", "tenant", "edition", "participant_kind", "participant_id"],
        unique=False,
    )
    op.create_table(
        "totals",
        sa.Column("generation", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("tenant", sa.String(length=100), nullable=False),
        sa.Column("edition", sa.String(length=32), nullable=False),
        sa.Column("participant_kind", sa.String(length=10), nullable=False),
        sa.Column("participant_id", sa.String(length=100), nullable=False),
        sa.Column("points", sa.Float(), nullable=False),
        sa.Column("first_at", shared.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("misses", sa.Integer(), nullable=False),
        sa.Column("entries", sa.Integer(), nullable=False),
        sa.Column("eligibility", sa.Text(), nullable=False),
        sa.Column("eligibility_keys", sa.Text(), nullable=False),
        sa.Column("changes", sa.Integer(), server_default="0", nullable=False),
        sa.Column("updated_at", shared.db.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("generation", "tenant", "edition", "participant_kind", "participant_id"),
    )
    op.create_index(
        "ix_totals_rank",
        "totals",
        [
            "generation",
            "tenant",
            "edition",
            "participant_kind",
            "points",
            "first_at",
            "misses",
            "participant_id",
        ],
        unique=False,
    )
    op.create_index(
        "ix_ledger_participant",
        "ledger",
        ["generation", "tenant", "edition", "participant_kind", "participant_id"],
        unique=False,
    )
    # Existing ledgers get their marks and totals from the standings job: revision e5b3c8f1a2d7 marks every
    # subject unfolded.


def downgrade() -> None:
    op.drop_index("ix_ledger_participant", table_name="ledger")
    op.drop_index("ix_totals_rank", table_name="totals")
    op.drop_table("totals")
    op.drop_index("ix_marks_participant", table_name="marks")
    op.drop_table("marks")
