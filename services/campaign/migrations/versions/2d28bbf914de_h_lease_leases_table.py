"""h-lease: the leases table, so periodic jobs run once per deployment (fenced by generation)

Revision ID: 2d28bbf914de
Revises: 5d2f8b1c4e60
Create Date: 2026-12-02 04:50:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import shared.db

revision: str = "2d28bbf914de"
down_revision: str | None = "5d2f8b1c4e60"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "leases",
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("holder", sa.String(length=200), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("expires_at", shared.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("acquired_at", shared.db.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )


def downgrade() -> None:
    op.drop_table("leases")
