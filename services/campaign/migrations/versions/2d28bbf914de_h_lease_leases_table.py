"""h-lease: the leases table, so periodic jobs run once per deployment (fenced by generation)

Revision ID: 2d28bbf914de
Revises: 6e4a9c2b7f31
Create Date: 2026-12-02 04:50:00.000000
"""

from collections.abc import Sequence

from shared.migrate import create_shared_tables, drop_shared_tables

revision: str = "2d28bbf914de"
down_revision: str | None = "6e4a9c2b7f31"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    create_shared_tables("leases")


def downgrade() -> None:
    drop_shared_tables("leases")
