"""receipts by assignee: settling an assignment reads its assignee's receipts of the part by index

Issue 16. Additive only (expand): one index. ``ix_receipts_part`` leads with (tenant, edition, part) and then the
time of receipt, so reading one assignee's receipts ranged over every receipt of the part — paid at every
receipt, and growing with the contest.

Revision ID: c5e7a9b1d3f4
Revises: b4d81e2f6a93
Create Date: 2026-12-05 01:10:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "c5e7a9b1d3f4"
down_revision: str | None = "b4d81e2f6a93"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_receipts_assignee",
        "receipts",
        ["tenant", "edition", "part", "assignee_id", "submission_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_receipts_assignee", table_name="receipts")
