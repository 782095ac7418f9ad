"""receipts: one index for a part's receipts, by assignee and time of receipt

Issue 16. Two indexes led with (tenant, edition, part): ``ix_receipts_part`` then by time of receipt,
``ix_receipts_assignee`` then by assignee. For one assignee's receipts, PostgreSQL before its first VACUUM or
ANALYZE estimates both at one row and the same cost, and the tie went either way — to the part's index it
ranged over every receipt of the part, at every receipt applied. One index (tenant, edition, part, assignee,
time of receipt, submission) serves every read of the table with no choice left to the planner: an assignee's
receipts and their deadline count as an exact range, a council's and the part's deadline count as the part's
range, each from the index alone; and a receipt writes one index fewer. Dropping indexes breaks no code.

Revision ID: e2a4c6b8d0f1
Revises: c5e7a9b1d3f4
Create Date: 2026-12-05 03:10:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "e2a4c6b8d0f1"
down_revision: str | None = "c5e7a9b1d3f4"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = ["tenant", "edition", "part", "assignee_id", "received_at", "submission_id"]


def upgrade() -> None:
    op.create_index("ix_receipts_part_assignee", "receipts", COLUMNS, unique=False)
    op.drop_index("ix_receipts_assignee", table_name="receipts")
    op.drop_index("ix_receipts_part", table_name="receipts")


def downgrade() -> None:
    op.create_index(
        "ix_receipts_part", "receipts", ["tenant", "edition", "part", "received_at"], unique=False
    )
    op.create_index(
        "ix_receipts_assignee",
        "receipts",
        ["tenant", "edition", "part", "assignee_id", "submission_id"],
        unique=False,
    )
    op.drop_index("ix_receipts_part_assignee", table_name="receipts")
