"""h-lease: the leases table, so periodic jobs run once per deployment (fenced by generation); refolds, so
a rules change re-prices in chunks

Revision ID: c79cdbaf77d3
Revises: 127cf88119fb
Create Date: 2026-12-02 04:50:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import shared.db
from shared.migrate import create_shared_tables, drop_shared_tables

revision: str = "c79cdbaf77d3"
down_revision: str | None = "127cf88119fb"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    create_shared_tables("leases")
    op.create_table(
        "refolds",
        sa.Column("generation", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("tenant", sa.String(length=100), nullable=False),
        sa.Column("edition", sa.String(length=32), nullable=False),
        sa.Column("cause_event_id", sa.String(length=36), nullable=True),
        sa.Column("cursor", sa.String(length=200), server_default="", nullable=False),
        sa.Column("touched_at", shared.db.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("generation", "tenant", "edition"),
    )


def downgrade() -> None:
    op.drop_table("refolds")
    drop_shared_tables("leases")
