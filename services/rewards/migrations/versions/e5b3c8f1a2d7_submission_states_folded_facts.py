"""submission_states.folded_facts: which subjects' standings lag their facts (issue 12, rolling updates)

Expand only: a nullable column and a partial index. The previous release keeps the ledger, not the marks and
totals; every subject it folds — before the upgrade (all rows start NULL here) or beside this release during a
rolling update (it never writes the column) — is found by the index, and the standings job folds it again.

Revision ID: e5b3c8f1a2d7
Revises: d4e1a7c2b916
Create Date: 2026-12-03 01:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "e5b3c8f1a2d7"
down_revision: str | None = "d4e1a7c2b916"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_UNFOLDED = sa.text("folded_facts IS NULL OR folded_facts <> facts")


def upgrade() -> None:
    op.add_column("submission_states", sa.Column("folded_facts", sa.Integer(), nullable=True))
    op.create_index(
        "ix_submission_states_unfolded",
        "submission_states",
        ["submission_id"],
        unique=False,
        postgresql_where=_UNFOLDED,
        sqlite_where=_UNFOLDED,
    )


def downgrade() -> None:
    op.drop_index("ix_submission_states_unfolded", table_name="submission_states")
    op.drop_column("submission_states", "folded_facts")
