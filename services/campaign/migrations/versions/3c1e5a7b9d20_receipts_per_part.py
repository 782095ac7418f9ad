"""receipts keyed by (submission, part): a selected initiative is also the council's selection receipt

Revision ID: 3c1e5a7b9d20
Revises: 8291f10f1753
Create Date: 2026-11-30 02:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import shared.db

revision: str = "3c1e5a7b9d20"
down_revision: str | None = "8291f10f1753"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _receipts(pk: tuple[str, ...]) -> sa.Table:
    return sa.Table(
        "receipts",
        sa.MetaData(),
        sa.Column("submission_id", sa.String(36), nullable=False),
        sa.Column("tenant", sa.String(100), nullable=False),
        sa.Column("edition", sa.String(32), nullable=False),
        sa.Column("part", sa.String(100), nullable=False),
        sa.Column("assignee_id", sa.String(100), nullable=False),
        sa.Column("received_at", shared.db.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint(*pk),
        sa.Index("ix_receipts_part", "tenant", "edition", "part", "received_at"),
    )


def _set_pk(pk: tuple[str, ...]) -> None:
    if op.get_bind().dialect.name == "sqlite":
        # SQLite cannot alter a primary key: copy into a table of the new shape (same rows, same index)
        with op.batch_alter_table("receipts", recreate="always", copy_from=_receipts(pk)):
            pass
    else:
        op.drop_constraint("receipts_pkey", "receipts", type_="primary")
        op.create_primary_key("receipts_pkey", "receipts", list(pk))


def upgrade() -> None:
    _set_pk(("submission_id", "part"))


def downgrade() -> None:
    # the old key holds one receipt per submission: drop the selection receipts (their part is not the
    # submission's own), then restore it
    op.execute(
        sa.text(
            "DELETE FROM receipts WHERE EXISTS (SELECT 1 FROM receipts r2 WHERE r2.submission_id = "
            "receipts.submission_id AND r2.received_at < receipts.received_at)"
        )
    )
    _set_pk(("submission_id",))
