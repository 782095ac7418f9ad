"""clock due times: each assignment's next reminder instant (indexed), so the deadline clock touches only what is due

Additive only (expand): two nullable columns on ``assignments`` that the clock alone writes (a row the previous
release inserts arrives with both NULL, which the clock reads as "not planned yet"), their indexes, an index on
``extended_to`` (extended deadlines by due time), one on ``misses`` by deadline, and ``reminder_plans`` (the
edition version the reminders were planned for).

Revision ID: b4d81e2f6a93
Revises: a7c3e9d1f402
Create Date: 2026-12-02 17:20:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import shared.db

revision: str = "b4d81e2f6a93"
down_revision: str | None = "a7c3e9d1f402"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("assignments", sa.Column("remind_at", shared.db.UtcDateTime(timezone=True), nullable=True))
    op.add_column("assignments", sa.Column("remind_for", shared.db.UtcDateTime(timezone=True), nullable=True))
    op.create_index("ix_assignments_remind_at", "assignments", ["remind_at"], unique=False)
    op.create_index("ix_assignments_remind_for", "assignments", ["remind_for"], unique=False)
    op.create_index("ix_assignments_extended_to", "assignments", ["extended_to"], unique=False)
    op.create_index("ix_misses_deadline", "misses", ["tenant", "edition", "part", "deadline"], unique=False)
    op.create_table(
        "reminder_plans",
        sa.Column("tenant", sa.String(length=100), nullable=False),
        sa.Column("edition", sa.String(length=32), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("tenant", "edition"),
    )


def downgrade() -> None:
    op.drop_table("reminder_plans")
    op.drop_index("ix_misses_deadline", table_name="misses")
    op.drop_index("ix_assignments_extended_to", table_name="assignments")
    op.drop_index("ix_assignments_remind_for", table_name="assignments")
    op.drop_index("ix_assignments_remind_at", table_name="assignments")
    with op.batch_alter_table("assignments", schema=None) as batch_op:
        batch_op.drop_column("remind_for")
        batch_op.drop_column("remind_at")
