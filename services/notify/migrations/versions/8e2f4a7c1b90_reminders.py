"""reminders: one row per (person, part, Vietnamese date) a mobiliser asked notify to remind — the claim of
"at most one a day" and the audit record of who asked

Revision ID: 8e2f4a7c1b90
Revises: b84d2f0e6c17
Create Date: 2026-12-02 12:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from shared.db import UtcDateTime

revision: str = "8e2f4a7c1b90"
down_revision: str | None = "b84d2f0e6c17"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "notify_reminders",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("tenant", sa.String(100), nullable=False),
        sa.Column("edition", sa.String(32), nullable=False),
        sa.Column("part", sa.String(100), nullable=False),
        sa.Column("person_id", sa.String(100), nullable=False),
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("requested_by", sa.String(100), nullable=False),
        sa.Column("requested_at", UtcDateTime(), nullable=False),
    )
    op.create_index("ix_notify_reminders_person", "notify_reminders", ["tenant", "person_id", "day"])


def downgrade() -> None:
    op.drop_index("ix_notify_reminders_person", table_name="notify_reminders")
    op.drop_table("notify_reminders")
