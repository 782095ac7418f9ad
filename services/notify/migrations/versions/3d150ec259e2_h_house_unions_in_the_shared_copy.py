"""h-house: notify's unions move into the shared copy (notify_unions -> copy_unions), rows as they are."""

import sqlalchemy as sa

from shared.migrate import move_into_shared_table, move_out_of_shared_table

revision = "3d150ec259e2"
down_revision = "159f552de70c"


def upgrade() -> None:
    move_into_shared_table("copy_unions", "notify_unions")


def downgrade() -> None:
    old = sa.Table(
        "notify_unions",
        sa.MetaData(),
        *(sa.Column(name, sa.String(100), primary_key=True) for name in ("tenant", "union_id")),
        sa.Column("doc", sa.Text, nullable=False),
        sa.Column("sequence", sa.Integer, nullable=False),
    )
    move_out_of_shared_table("copy_unions", old)
