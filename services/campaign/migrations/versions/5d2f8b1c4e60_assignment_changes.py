"""assignment_changes: each status change of an assignment at its business time, for participation as of

Revision ID: 5d2f8b1c4e60
Revises: 3c1e5a7b9d20
Create Date: 2026-11-30 03:05:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import shared.db

revision: str = "5d2f8b1c4e60"
down_revision: str | None = "3c1e5a7b9d20"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "assignment_changes",
        sa.Column("assignment_id", sa.String(length=36), nullable=False),
        sa.Column("cause_id", sa.String(length=36), nullable=False),
        sa.Column("at", shared.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("fulfilled_at", shared.db.UtcDateTime(timezone=True), nullable=True),
        sa.Column("on_time", sa.Boolean(), nullable=True),
        sa.Column("tenant", sa.String(length=100), nullable=False),
        sa.Column("recorded", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.PrimaryKeyConstraint("assignment_id", "cause_id"),
    )
    op.create_index("ix_assignment_changes_tenant", "assignment_changes", ["tenant"], unique=False)
    # What is fulfilled now was fulfilled at its fulfilment time; earlier withdrawals were not kept before.
    op.execute(
        sa.text(
            "INSERT INTO assignment_changes (assignment_id, cause_id, at, status, fulfilled_at, on_time, tenant, "
            "recorded) SELECT id, coalesce(submission_id, id), fulfilled_at, 'fulfilled', fulfilled_at, on_time, "
            "tenant, 1 FROM assignments WHERE status = 'fulfilled' AND fulfilled_at IS NOT NULL"
        )
    )


def downgrade() -> None:
    op.drop_index("ix_assignment_changes_tenant", table_name="assignment_changes")
    op.drop_table("assignment_changes")
