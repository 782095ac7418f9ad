"""h-house: unions live with units and people in the shared copy (directory_unions -> copy_unions)

Campaign applies its own directory facts to the shared copy tables; its unions now do too. Each union keeps its
document, with the last sequence campaign numbered for it (0 if none is known: any later fact replaces it).

Revision ID: ff1b60e82e77
Revises: 5d2f8b1c4e60
Create Date: 2026-12-02 04:35:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from shared.migrate import create_shared_tables, drop_shared_tables

revision: str = "ff1b60e82e77"
down_revision: str | None = "5d2f8b1c4e60"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    create_shared_tables("copy_unions")
    op.execute(
        "INSERT INTO copy_unions (tenant, union_id, doc, sequence) "
        "SELECT u.tenant, u.union_id, u.doc, "
        "COALESCE((SELECT s.last FROM event_sequences s WHERE s.subject = u.union_id), 0) "
        "FROM directory_unions u"
    )
    op.drop_table("directory_unions")


def downgrade() -> None:
    op.create_table(
        "directory_unions",
        sa.Column("tenant", sa.String(length=100), nullable=False),
        sa.Column("union_id", sa.String(length=100), nullable=False),
        sa.Column("doc", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("tenant", "union_id"),
    )
    op.execute(
        "INSERT INTO directory_unions (tenant, union_id, doc) SELECT tenant, union_id, doc FROM copy_unions"
    )
    drop_shared_tables("copy_unions")
