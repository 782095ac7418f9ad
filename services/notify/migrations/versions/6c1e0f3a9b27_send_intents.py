"""send intents: an email's stable Message-ID recorded before SMTP, settled with the mark (exactly once but for
the documented window)

Revision ID: 6c1e0f3a9b27
Revises: d5ba8bed94ed
Create Date: 2026-12-02 08:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from shared.db import UtcDateTime

revision: str = "6c1e0f3a9b27"
down_revision: str | None = "d5ba8bed94ed"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "notify_send_intents",
        sa.Column("delivery_id", sa.String(36), primary_key=True),
        sa.Column("tenant", sa.String(100), nullable=False),
        sa.Column("message_id", sa.String(300), nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("generation", sa.Integer, nullable=True),
        sa.Column("recorded_at", UtcDateTime(), nullable=False),
        sa.Column("settled_at", UtcDateTime(), nullable=True),
    )
    op.create_index("ix_notify_send_intents_open", "notify_send_intents", ["settled_at"])


def downgrade() -> None:
    op.drop_index("ix_notify_send_intents_open", table_name="notify_send_intents")
    op.drop_table("notify_send_intents")
