"""h-house: campaign's unions move into the shared copy (directory_unions -> copy_unions).

Campaign applies its own directory facts to the shared copy tables; its unions now do too. Each union keeps its
document and the last sequence campaign numbered for it (0 if none is known: any later fact replaces it).
"""

import sqlalchemy as sa

from shared.migrate import move_into_shared_table, move_out_of_shared_table

revision = "ff1b60e82e77"
down_revision = "5d2f8b1c4e60"

LAST = "(SELECT s.last FROM event_sequences s WHERE s.subject = directory_unions.union_id)"


def upgrade() -> None:
    move_into_shared_table("copy_unions", "directory_unions", f"tenant, union_id, doc, COALESCE({LAST}, 0)")


def downgrade() -> None:
    ids = [sa.Column(name, sa.String(100), primary_key=True) for name in ("tenant", "union_id")]
    doc = sa.Column("doc", sa.Text, nullable=False)
    move_out_of_shared_table("copy_unions", sa.Table("directory_unions", sa.MetaData(), *ids, doc))
