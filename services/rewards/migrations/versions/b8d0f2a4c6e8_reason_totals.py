"""totals, participant_versions: each standing keeps what each rule earned (reason_totals), so a page of the
list names a unit's reasons in brief instead of its every entry

Issue 16. A page of the priority list read every ledger entry of the units on it (their reasons): a unit's entries
grow with its members, so a page grew with the contest (1,100 entries a page at 11,000 participants, 66 ms).
Rows written before this revision keep NULL: their sums are taken from their entries when read, until the
participant's standing next changes.

Revision ID: b8d0f2a4c6e8
Revises: a7b8c9d0e1f2
Create Date: 2026-12-05 14:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "b8d0f2a4c6e8"
down_revision: str | None = "a7b8c9d0e1f2"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    for table in ("totals", "participant_versions"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("reason_totals", sa.Text, nullable=True))


def downgrade() -> None:
    for table in ("totals", "participant_versions"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("reason_totals")
