"""h-house: unions live with units and people in the shared copy (notify_unions -> copy_unions)

Revision ID: 3d150ec259e2
Revises: 159f552de70c
Create Date: 2026-12-02 04:35:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from shared.migrate import create_shared_tables, drop_shared_tables

revision: str = "3d150ec259e2"
down_revision: str | None = "159f552de70c"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    create_shared_tables("copy_unions")
    op.execute(
        "INSERT INTO copy_unions (tenant, union_id, doc, sequence) "
        "SELECT tenant, union_id, doc, sequence FROM notify_unions"
    )
    op.drop_table("notify_unions")


def downgrade() -> None:
    op.create_table(
        "notify_unions",
        sa.Column("tenant", sa.String(length=100), nullable=False),
        sa.Column("union_id", sa.String(length=100), nullable=False),
        sa.Column("doc", sa.Text(), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("tenant", "union_id"),
    )
    op.execute(
        "INSERT INTO notify_unions (tenant, union_id, doc, sequence) "
        "SELECT tenant, union_id, doc, sequence FROM copy_unions"
    )
    drop_shared_tables("copy_unions")
