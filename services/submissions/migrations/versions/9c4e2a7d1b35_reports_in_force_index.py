"""reports in force by author: intake's batch reads its callers' reports in force by (tenant, edition, author)

Additive only (expand): one partial index. ``uq_report_author`` leads with the part, so without it the read scans
every report of the edition — a cost that grows with the contest, paid by every batch of a rush.

Revision ID: 9c4e2a7d1b35
Revises: 7d65b692497a
Create Date: 2026-12-04 19:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "9c4e2a7d1b35"
down_revision: str | None = "7d65b692497a"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

IN_FORCE = sa.text("kind = 'experience_report' AND status != 'withdrawn'")


def upgrade() -> None:
    op.create_index(
        "ix_reports_in_force",
        "submissions",
        ["tenant", "edition", "author_id"],
        unique=False,
        sqlite_where=IN_FORCE,
        postgresql_where=IN_FORCE,
    )


def downgrade() -> None:
    op.drop_index("ix_reports_in_force", table_name="submissions")
