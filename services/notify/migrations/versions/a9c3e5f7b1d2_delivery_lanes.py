"""delivery lanes: deliveries.lane (0 a receipt, 1 everything else) and ix_deliveries_lane, the order due rows
are sent in

Issue 16. The delivery pass sent due rows in the order they fell due, so at 20,000 officials the rush's receipts
waited 97 s behind the 40,000 deadline reminders the clock had just fanned out. Rows already kept, and rows the
previous release writes during a rolling update, are lane 1 (the server default): they are sent as before.

Revision ID: a9c3e5f7b1d2
Revises: 4f6b9e2d81a3
Create Date: 2026-12-05 12:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "a9c3e5f7b1d2"
down_revision: str | None = "4f6b9e2d81a3"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("deliveries", sa.Column("lane", sa.SmallInteger, nullable=False, server_default="1"))
    op.create_index("ix_deliveries_lane", "deliveries", ["status", "lane", "next_attempt_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_deliveries_lane", table_name="deliveries")
    with op.batch_alter_table("deliveries") as batch_op:
        batch_op.drop_column("lane")
