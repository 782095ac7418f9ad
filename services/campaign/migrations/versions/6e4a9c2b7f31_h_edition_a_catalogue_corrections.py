"""h-edition-a: procedure catalogue versions record whether they correct a past period, and when they were sent

Revision ID: 6e4a9c2b7f31
Revises: ff1b60e82e77
Create Date: 2026-12-02 04:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import shared.db

revision: str = "6e4a9c2b7f31"
down_revision: str | None = "ff1b60e82e77"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("procedure_catalogues") as batch:
        batch.add_column(sa.Column("correction", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("recorded_at", shared.db.UtcDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("procedure_catalogues") as batch:
        batch.drop_column("recorded_at")
        batch.drop_column("correction")
