"""no ix_deliveries_due: the delivery loop reads each lane's due rows from ix_deliveries_lane

Issue 16. ``ix_deliveries_due`` (status, next_attempt_at) was the loop's index before lanes; since, it only
competed with ``ix_deliveries_lane`` (status, lane, next_attempt_at): a planner without statistics took it for
one lane's due rows and walked every pending row of the other lanes (SQLite sorted them all), so each pass of
100 e-mails cost the whole backlog. The previous release, during a rolling update, reads its due rows in lane
order from ``ix_deliveries_lane`` too.

Revision ID: c4e6a8b0d2f1
Revises: a9c3e5f7b1d2
Create Date: 2026-12-05 20:10:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "c4e6a8b0d2f1"
down_revision: str | None = "a9c3e5f7b1d2"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_deliveries_due", table_name="deliveries")


def downgrade() -> None:
    op.create_index("ix_deliveries_due", "deliveries", ["status", "next_attempt_at"], unique=False)
