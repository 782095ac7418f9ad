"""totals: the rank index holds only the participants on the list, so a rank is counted from the index alone

Issue 16. ``rank_of`` (one participant's rank, for ``reward.priority.changed``) filtered every participant of the
kind through the table to find who is on the list: a cost that grew with the contest, paid at every eligibility
change (measured: 0.5 ms at 2,600 participants, two per change). The index is rebuilt as a partial one over the
participants on the list, with the condition's columns; the previous release's statements read the same rows, only without it.

Revision ID: a7b8c9d0e1f2
Revises: f1c2d3e4a5b6
Create Date: 2026-12-05 01:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "a7b8c9d0e1f2"
down_revision: str | None = "f1c2d3e4a5b6"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ON_LIST = sa.text("entries > 0 OR eligibility_keys != '' OR misses > 0")
COLUMNS = [
    "generation",
    "tenant",
    "edition",
    "participant_kind",
    "points",
    "first_at",
    "misses",
    "participant_id",
]
COVERING = [*COLUMNS, "entries", "eligibility_keys"]  # the condition's own columns: no table row is read


def upgrade() -> None:
    op.drop_index("ix_totals_rank", table_name="totals")
    op.create_index(
        "ix_totals_rank", "totals", COVERING, unique=False, sqlite_where=ON_LIST, postgresql_where=ON_LIST
    )


def downgrade() -> None:
    op.drop_index("ix_totals_rank", table_name="totals")
    op.create_index("ix_totals_rank", "totals", COLUMNS, unique=False)
